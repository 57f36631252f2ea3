"""An outsider's check of the user contract (DESIGN §5, §3) through the ``admf-dask`` CLI and
the run folder: exit codes and one-line errors, the output files' columns / dims / dtypes, the
run.json fields, the grid's portfolio order, the disk cache and the no-look-ahead rule, on the
real bokeh-sampledata prices."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from _cli import main, one_line_error

import admf_dask as ad

ROOT = Path(__file__).resolve().parents[2]

GRID = {"stop_loss": [None, 0.05], "allow_short": [False, True], "commission_fixed": [0.0, 2.0]}


def cli(*args: str, cwd: Path = ROOT, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if cache is not None:
        env["ADMF_DASK_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "admf_dask.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env=env,
    )


def pipeline(out: Path) -> dict:
    return {
        "name": "contract-cli",
        "data": {
            "source": "bokeh_stocks",
            "start": "2012-01-01",
            "end": "2013-03-01",
            "chunks": {"time": 64},
        },
        "features": {
            "sma_5": {"kind": "sma", "window": 5},
            "sma_20": {"kind": "sma", "window": 20},
        },
        "strategies": {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}},
        "portfolios": {"capital": 50000, "batch_size": 3, "grid": dict(GRID)},
        "execution": {"commission": 0.0005, "commission_fixed": 0.0, "slippage_bps": 2},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(out), "report": True},
    }


def write(tmp: Path, cfg: dict, name: str = "p.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, client):
    tmp = tmp_path_factory.mktemp("contract_cli")
    out = tmp / "run"
    path = write(tmp, pipeline(out))
    cache = tmp / "cache"  # both runs share one disk cache
    first = cli("run", str(path), "--set", "execution.slippage_bps=3", "--quiet", cache=cache)
    old = os.environ.get("ADMF_DASK_CACHE")
    os.environ["ADMF_DASK_CACHE"] = str(cache)
    try:  # the second run in this process, on the session's cluster
        second = main(
            "run",
            str(path),
            "--out",
            str(tmp / "again"),
            "--set",
            "portfolios.capital=60000",
            "--quiet",
            "--address",
            client.scheduler.address,
        )
    finally:
        os.environ["ADMF_DASK_CACHE"] = old
    return {"tmp": tmp, "out": out, "first": first, "second": second, "pipeline": path}


def test_run_exit_0_and_outputs(cli_run):
    proc = cli_run["first"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = cli_run["out"]
    for name in ("run.json", "results.zarr", "orders.parquet", "signals.zarr", "report.html"):
        assert (out / name).exists(), name
    assert (out / "report.html").stat().st_size > 0


def test_run_json_fields(cli_run):
    m = json.loads((cli_run["out"] / "run.json").read_text())
    for k in (
        "run_id",
        "config",
        "config_hash",
        "versions",
        "cluster",
        "timings",
        "trace",
        "cache",
    ):
        assert k in m, k
    assert m["data"]["fingerprint"]
    assert m["config"]["execution"]["slippage_bps"] == 3  # the resolved config, --set applied
    assert set(m["timings"]) >= {"data", "features", "signals", "portfolio", "write", "total"}
    assert all(isinstance(v, int | float) and v >= 0 for v in m["timings"].values())
    workers = m["cluster"]["workers"]
    assert len(workers) >= 1
    for w in workers:
        assert set(w) >= {"address", "nthreads", "memory_limit", "resources"}
    assert m["trace"] == []  # no ML strategy: no ML task
    assert m["cache"] == {"features": "miss", "signals": "miss"}
    assert m["versions"].get("admf-dask") or m["versions"].get("admf_dask")


def test_second_run_hits_the_cache(cli_run):
    proc = cli_run["second"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((cli_run["tmp"] / "again" / "run.json").read_text())
    assert m["cache"] == {"features": "hit", "signals": "hit"}
    first = json.loads((cli_run["out"] / "run.json").read_text())
    assert m["config_hash"] != first["config_hash"] and m["run_id"] != first["run_id"]
    assert m["data"]["fingerprint"] == first["data"]["fingerprint"]


def test_results_zarr_layout_and_grid_order(cli_run):
    ds = xr.open_zarr(cli_run["out"] / "results.zarr")
    assert ds["equity"].dims == ("time", "portfolio") and ds["equity"].dtype == np.float64
    assert ds["cash"].dims == ("time", "portfolio")
    n = len(list(itertools.product(*GRID.values())))
    np.testing.assert_array_equal(ds["portfolio"].values, np.arange(n))
    for i, combo in enumerate(itertools.product(*GRID.values())):
        for key, v in zip(GRID, combo, strict=True):
            got = ds[key].values[i]
            if v is None:
                assert got is None or (isinstance(got, float) and np.isnan(got)), (i, key, got)
            else:
                assert got == v, (i, key, got, v)
    for metric in (
        "total_return",
        "annual_return",
        "annual_volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "n_orders",
        "turnover",
        "exposure",
    ):
        assert ds[metric].dims == ("portfolio",), metric
    # the capital of the first run; max_drawdown is negative (or 0)
    assert (ds["max_drawdown"].values <= 0).all()
    sig = xr.open_zarr(cli_run["out"] / "signals.zarr")
    var = next(iter(sig.data_vars))
    assert sig[var].dims == ("time", "symbol", "strategy")
    assert list(sig["symbol"].values) == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]


def test_orders_parquet_columns(cli_run):
    o = pd.read_parquet(cli_run["out"] / "orders.parquet")
    assert list(o.columns)[:7] == [
        "portfolio",
        "time",
        "symbol",
        "qty",
        "price",
        "commission",
        "reason",
    ]
    assert str(o["time"].dtype).startswith("datetime64")
    for c in ("qty", "price", "commission"):
        assert o[c].dtype == np.float64, c
    assert set(o["reason"].astype(str)) <= {
        "signal",
        "stop",
        "trailing",
        "take_profit",
        "time",
        "halt",
    }
    ds = xr.open_zarr(cli_run["out"] / "results.zarr")
    counts = o.groupby("portfolio").size().reindex(ds["portfolio"].values, fill_value=0)
    np.testing.assert_array_equal(counts.to_numpy(), ds["n_orders"].values)
    # commission = rate * |qty| * price + fixed (2.0 in the odd portfolios), slippage 3 bps
    fixed = np.where(o["portfolio"].to_numpy() % 2 == 1, 2.0, 0.0)
    want = 0.0005 * o["qty"].abs() * o["price"] + fixed
    np.testing.assert_allclose(o["commission"].to_numpy(), want.to_numpy(), rtol=1e-12)


def test_validate_ok_and_report_rebuilds(cli_run, tmp_path):
    proc = main("validate", str(cli_run["pipeline"]))
    assert proc.returncode == 0, proc.stderr
    out = cli_run["tmp"] / "again"
    (out / "report.html").unlink()
    proc = main("report", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "report.html").stat().st_size > 0


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"portfolios": {"capitol": 5}}, ["capitol"]),
        ({"data": {"source": "nowhere"}}, ["data.source"]),
        (
            {"strategies": {"trend": {"kind": "ma_crossover", "fast": "nope", "slow": "sma_20"}}},
            ["nope"],
        ),
        (
            {
                "features": {
                    "a": {"kind": "sma", "input": "b", "window": 3},
                    "b": {"kind": "sma", "input": "a", "window": 3},
                }
            },
            [],
        ),
        ({"portfolios": {"grid": {"stop_loss": [-0.1]}}}, ["stop_loss"]),
        ({"portfolios": {"grid": {"trailing_stop": [1.0]}}}, ["trailing_stop"]),
        ({"portfolios": {"grid": {"take_profit": [0.0]}}}, ["take_profit"]),
        ({"portfolios": {"max_holding": 0}}, ["max_holding"]),
        ({"portfolios": {"max_positions": 0}}, ["max_positions"]),
        ({"portfolios": {"exit_on": "open"}}, ["exit_on"]),
        ({"portfolios": {"sizing": "kelly"}}, ["sizing"]),
        ({"research": {"cscv_blocks": 7}}, ["cscv_blocks"]),
        ({"research": {"walk_forward": {"train": 5000, "test": 10}}}, ["walk_forward"]),
        ({"features": {"r": {"kind": "rank", "input": "nothing"}}}, ["nothing"]),
        ({"features": {"s": {"kind": "sma", "windw": 5}}}, ["windw"]),
    ],
)
def test_bad_pipeline_exit_2_one_line_nothing_written(tmp_path, client, change, needles):
    cfg = pipeline(tmp_path / "out")
    for k, v in change.items():
        cfg[k] = {**cfg.get(k, {}), **v} if k != "strategies" else v
    path = write(tmp_path, cfg)
    one_line_error(main("validate", str(path)), *needles)
    one_line_error(main("run", str(path), "--address", client.scheduler.address), *needles)
    assert not (tmp_path / "out").exists()


def test_bad_arguments_exit_2(tmp_path, client):
    addr = ("--address", client.scheduler.address)  # no session cluster started in this process
    one_line_error(main("run", str(tmp_path / "missing.yaml"), *addr), "missing.yaml")
    path = write(tmp_path, pipeline(tmp_path / "out"))
    one_line_error(main("run", str(path), "--set", "portfolios.nope=1", *addr), "nope")
    one_line_error(main("report", str(tmp_path)))
    assert not (tmp_path / "out").exists()


def test_failing_run_leaves_no_folder(tmp_path, client):
    # a CSV with a bad price row: found when the data is read, after the run has started
    d = ad.load_market_data({"source": "bokeh_stocks", "start": "2012-06-01", "end": "2012-09-01"})
    df = d.to_dataframe().reset_index()[
        ["time", "symbol", "open", "high", "low", "close", "volume"]
    ]
    df = df.dropna()
    df["close"] = df["close"].astype(object)
    df.loc[df.index[10], "close"] = "n/a?"
    df.to_csv(tmp_path / "prices.csv", index=False)
    cfg = pipeline(tmp_path / "out")
    cfg["data"] = {"source": "csv", "path": str(tmp_path / "prices.csv")}
    proc = main("run", str(write(tmp_path, cfg)), "--address", client.scheduler.address)
    one_line_error(proc, "prices.csv")
    assert not (tmp_path / "out").exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]
    assert leftovers == []


def test_no_look_ahead_on_real_data(client, tmp_path):
    """§3: changing any data after bar T changes nothing in signals, orders or equity up to T."""
    d = ad.load_market_data({"source": "bokeh_stocks", "start": "2011-06-01", "end": "2013-03-01"})
    df = d.to_dataframe().reset_index()[
        ["time", "symbol", "open", "high", "low", "close", "volume"]
    ]
    df = df.dropna().rename(columns={"time": "Date", "symbol": "TICKER", "close": "Close"})
    df.to_csv(tmp_path / "a.csv", index=False)
    T = pd.Timestamp("2012-08-15")
    later = df["Date"] > T
    rng = np.random.default_rng(0)
    bumped = df.copy()
    f = np.exp(rng.normal(0, 0.05, later.sum()))
    for c in ("open", "high", "low", "Close"):
        bumped.loc[later, c] = bumped.loc[later, c] * f
    bumped.to_csv(tmp_path / "b.csv", index=False)
    outs = []
    for name in ("a", "b"):
        cfg = pipeline(tmp_path / name)
        cfg["data"] = {"source": "csv", "path": str(tmp_path / f"{name}.csv")}
        cfg["output"]["report"] = False
        cfg["portfolios"]["grid"]["stop_loss"] = [0.03]
        outs.append(ad.run(cfg, client, out=tmp_path / name))
    a, b = outs
    ea = a.equity.sel(time=slice(None, T)).values
    eb = b.equity.sel(time=slice(None, T)).values
    np.testing.assert_array_equal(ea, eb)
    oa = a.orders[a.orders["time"] <= T].reset_index(drop=True)
    ob = b.orders[b.orders["time"] <= T].reset_index(drop=True)
    pd.testing.assert_frame_equal(oa, ob)
    sa = ad.open_run(tmp_path / "a").signals.sel(time=slice(None, T)).values
    sb = ad.open_run(tmp_path / "b").signals.sel(time=slice(None, T)).values
    np.testing.assert_array_equal(sa, sb)
    assert not np.array_equal(a.equity.values, b.equity.values)  # the change did reach the run


def _replay_pipeline(tmp: Path, values: dict) -> Path:
    d = ad.load_market_data({"source": "bokeh_stocks", "start": "2012-06-01", "end": "2012-09-01"})
    times, symbols = d.time.values, [str(s) for s in d.symbol.values]
    sig = pd.DataFrame(
        {
            "time": np.repeat(times, len(symbols)),
            "symbol": np.tile(np.asarray(symbols, dtype=object), len(times)),
            "signal": 0.5,
        }
    )
    for row, v in values.items():
        sig.loc[row, "signal"] = v
    sig.to_parquet(tmp / "sig.parquet")
    cfg = pipeline(tmp / "out")
    cfg["data"] = {"source": "bokeh_stocks", "start": "2012-06-01", "end": "2012-09-01"}
    cfg["features"] = {}
    cfg["strategies"] = {"mine": {"kind": "signals", "path": str(tmp / "sig.parquet")}}
    cfg["output"]["report"] = False
    return write(tmp, cfg)


def test_replayed_signal_out_of_range_is_bad_input(tmp_path, client):
    path = _replay_pipeline(tmp_path, {17: 1.5})
    one_line_error(main("run", str(path), "--address", client.scheduler.address), "sig.parquet")
    assert not (tmp_path / "out").exists()


def test_existing_run_folder_is_not_replaced(tmp_path, client):
    path = _replay_pipeline(tmp_path, {})
    addr = client.scheduler.address
    assert main("run", str(path), "--address", addr, "--quiet").returncode == 0
    before = json.loads((tmp_path / "out" / "run.json").read_text())["run_id"]
    one_line_error(main("run", str(path), "--address", addr, "--quiet"), "overwrite")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["run_id"] == before
    proc = main("run", str(path), "--address", addr, "--quiet", "--set", "output.overwrite=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "run.json").read_text())["run_id"] != before


def test_ml_trace_records_and_routing(client, tmp_path):
    """§5 run.json ``trace``: one record per ML task (train / inference) with its worker, which
    is an ML-tagged one (§4 resource tags really route); §3: training rows end before the
    predicted bars (purge = horizon)."""
    cfg = pipeline(tmp_path / "out")
    cfg["data"] = {
        "source": "bokeh_stocks",
        "start": "2012-03-01",
        "end": "2013-03-01",
        "chunks": {"time": 128},
    }
    cfg["features"] = {"r1": {"kind": "returns"}, "r10": {"kind": "roc", "window": 10}}
    cfg["strategies"] = {
        "xgb": {
            "kind": "xgboost",
            "features": ["r1", "r10"],
            "horizon": 3,
            "train_window": 100,
            "retrain_every": 150,
            "params": {"n_estimators": 10, "max_depth": 2},
            "seed": 1,
        }
    }
    cfg["portfolios"]["grid"] = {"allow_short": [False, True]}
    cfg["output"]["report"] = False
    res = ad.run(cfg, client, out=tmp_path / "out")
    m = json.loads((tmp_path / "out" / "run.json").read_text())
    trace = m["trace"]
    assert trace, "no ML trace records"
    ml_workers = {w["address"] for w in m["cluster"]["workers"] if w["resources"].get("ML")}
    assert ml_workers
    for r in trace:
        assert set(r) >= {"stage", "key", "worker", "model_id", "feature_hash", "start", "stop"}
        assert r["stage"] in ("train", "inference")
        assert r["worker"] in ml_workers, r
        assert r["start"] <= r["stop"]
    stages = [r["stage"] for r in trace]
    assert "train" in stages and "inference" in stages
    sig = ad.open_run(tmp_path / "out").signals.sel(strategy="xgb").values
    assert np.nanmax(np.abs(sig)) <= 1
    assert len(res.orders) > 0
