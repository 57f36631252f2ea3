"""The README as a user follows it: the 5-minute tour's commands and Python session, the research
and cache commands, and the pipeline file reference's stated behaviours (replay-only pipelines,
warnings and ``--strict``, the universe table's errors, did-you-mean), run as written from a
folder holding a copy of ``pipelines/`` (the run commands get ``--address`` of the test
session's cluster, the one change: the tour's commands otherwise start a LocalCluster each)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from _cli import main, one_line_error

import admf_dask as ad

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def tour(client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme_tour")
    shutil.copytree(ROOT / "pipelines", tmp / "pipelines")
    addr = ("--address", client.scheduler.address)
    with cwd(tmp):
        validate = main("validate", "pipelines/quickstart.yaml")
        run = main(
            "run",
            "pipelines/quickstart.yaml",
            "--out",
            "runs/qs",
            "--set",
            "portfolios.grid.stop_loss=[null, 0.03, 0.08]",
            *addr,
        )
    return {"tmp": tmp, "validate": validate, "run": run, "client": client}


def test_tour_validate(tour):
    proc = tour["validate"]
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout + proc.stderr


def test_tour_run_prints_link_then_one_line_per_stage(tour):
    proc = tour["run"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    assert lines[0].startswith("admf-dask run "), lines[:3]
    assert "dashboard: http://127.0.0.1:" in lines[0] + lines[1], lines[:3]
    stages = [ln.split()[1] for ln in lines if ln.startswith("✓")]
    assert stages[:4] == ["data", "features", "signals", "portfolio"], stages
    assert stages[-1] == "write", stages
    line = {ln.split()[1]: ln for ln in lines if ln.startswith("✓")}
    assert "20 symbols × 2520 bars" in line["data"]
    assert "4 variables" in line["features"] and "cache miss" in line["features"]
    assert "2 strategies" in line["signals"]
    assert "36 portfolios" in line["portfolio"]  # 3 strategies × 3 stops × 2 sizings × 2 shorts
    run = tour["tmp"] / "runs" / "qs"
    for name in ("run.json", "results.zarr", "orders.parquet", "trades.parquet", "signals.zarr"):
        assert (run / name).exists(), name
    assert (run / "report.html").stat().st_size > 0
    # the run ends with a table of the best portfolios by Sharpe
    assert "sharpe" in proc.stdout.lower()


def test_tour_report_rebuilds(tour):
    run = tour["tmp"] / "runs" / "qs"
    (run / "report.html").unlink()
    with cwd(tour["tmp"]):
        proc = main("report", "runs/qs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "report.html").stat().st_size > 1000


def test_tour_research_command(tour):
    with cwd(tour["tmp"]):
        proc = main(
            "research",
            "runs/qs",
            "--set",
            "research.cscv_blocks=8",
            "--set",
            "research.walk_forward={train: 504, test: 63}",
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = ad.open_run(tour["tmp"] / "runs" / "qs").research
    assert r["pbo"]["combinations"] == 70
    assert len(r["walk_forward"]["windows"]) == (2520 - 504) // 63


def test_tour_python_session(tour):
    client = tour["client"]
    with cwd(tour["tmp"]):
        pipe = ad.load_pipeline("pipelines/quickstart.yaml")
        res = ad.run(pipe, client)
        assert (tour["tmp"] / "runs" / "quickstart" / "run.json").is_file()
        top = res.metrics.sort_values("sharpe").tail()
        assert len(top) == 5 and {"strategy", "stop_loss", "sizing", "allow_short"} <= set(
            top.columns
        )
        assert res.equity.sel(portfolio=0).dims == ("time",)
        assert list(res.orders.head().columns[:7]) == [
            "portfolio",
            "time",
            "symbol",
            "qty",
            "price",
            "commission",
            "reason",
        ]
        assert set(res.manifest["timings"]) >= {"data", "features", "signals", "portfolio"}
        res2 = ad.run(
            ad.load_pipeline(pipe, ["portfolios.grid.stop_loss=[0.02]", "output.path=runs/qs2"]),
            client,
        )
        assert res2.manifest["cache"] == {"features": "hit", "signals": "hit"}
        assert res2.equity.sizes["portfolio"] == 12
        data = ad.load_market_data({"source": "bokeh_stocks"})
        assert sorted(str(s) for s in data.symbol.values) == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
        feats = ad.compute_features(data, {"rsi": {"kind": "rsi", "window": 14}})
        rsi = feats["rsi"].sel(symbol="IBM").values
        assert np.nanmin(rsi) >= 0 and np.nanmax(rsi) <= 100 and np.isfinite(rsi[20:]).all()
        old = ad.open_run("runs/qs")
        assert old.equity.sizes["portfolio"] == 36


def test_tour_python_research_call(tour):
    assert (tour["tmp"] / "runs" / "qs" / "run.json").is_file()  # a run happened in this process
    with cwd(tour["tmp"]):
        ad.research("runs/qs", ["research.cscv_blocks=8"])
        assert ad.open_run("runs/qs").research["pbo"]["combinations"] == 70


def test_cache_commands_as_documented(tour, tmp_path, monkeypatch):
    monkeypatch.setenv("ADMF_DASK_CACHE", str(tmp_path / "c"))
    with cwd(tour["tmp"]):
        proc = main(
            "run",
            "pipelines/quickstart.yaml",
            "--out",
            str(tmp_path / "r"),
            "--set",
            "portfolios.grid.strategy=[trend]",
            "--quiet",
            "--address",
            tour["client"].scheduler.address,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        info = main("cache", "info")
    assert info.returncode == 0
    assert str(tmp_path / "c") in info.stdout + info.stderr
    for kind in ("features", "signals", "models", "market"):
        assert kind in info.stdout + info.stderr, kind
    clear = main("cache", "clear")
    assert clear.returncode == 0, clear.stderr
    after = main("cache", "info")
    text = after.stdout + after.stderr
    assert "entries: 0" in text or "0 B" in text, text


# ----------------------------------------------------------------------------- reference claims


def _replay_only(tmp: Path, rows: pd.DataFrame | None = None) -> dict:
    d = ad.load_market_data({"source": "bokeh_stocks", "start": "2012-06-01", "end": "2012-12-31"})
    if rows is None:
        rows = d["close"].to_dataframe().reset_index()[["time", "symbol"]]
        rows["signal"] = np.where(rows.index % 7 < 3, 1.0, -0.5)
    rows.to_parquet(tmp / "sig.parquet")
    return {
        "name": "replay-only",
        "data": {"source": "bokeh_stocks", "start": "2012-06-01", "end": "2012-12-31"},
        "features": {},
        "strategies": {"mine": {"kind": "signals", "path": str(tmp / "sig.parquet")}},
        "portfolios": {"capital": 100000, "allow_short": True},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(tmp / "out"), "report": False},
    }


def _write(tmp: Path, cfg: dict, name: str = "p.yaml") -> Path:
    (tmp / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return tmp / name


def test_features_empty_is_valid_for_replay(tmp_path, client):
    path = _write(tmp_path, _replay_only(tmp_path))
    proc = main("run", str(path), "--quiet", "--address", client.scheduler.address)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(ad.open_run(tmp_path / "out").orders) > 0


def test_vol_target_without_a_feature_is_an_error(tmp_path):
    cfg = _replay_only(tmp_path)
    cfg["portfolios"]["sizing"] = "vol_target"
    one_line_error(main("validate", str(_write(tmp_path, cfg))))


def test_warning_for_replayed_rows_matching_no_bar_and_strict(tmp_path, client):
    d = ad.load_market_data({"source": "bokeh_stocks", "start": "2012-06-01", "end": "2012-12-31"})
    rows = d["close"].to_dataframe().reset_index()[["time", "symbol"]]
    rows["time"] = rows["time"] + pd.Timedelta(hours=16)  # stamped 16:00 on daily bars
    rows["signal"] = 1.0
    path = _write(tmp_path, _replay_only(tmp_path, rows))
    addr = ("--address", client.scheduler.address)
    proc = main("run", str(path), "--quiet", *addr)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = json.loads((tmp_path / "out" / "run.json").read_text())["warnings"]
    assert any("mine" in w for w in warnings), warnings
    assert any("order" in w for w in warnings), warnings  # no portfolio placed an order
    one_line_error(main("run", str(path), "--out", str(tmp_path / "o2"), "--strict", *addr), "mine")
    assert not (tmp_path / "o2").exists()


def test_warning_for_a_feature_longer_than_the_data(tmp_path, client):
    cfg = _replay_only(tmp_path)
    cfg["features"] = {"s1": {"kind": "sma", "window": 2}, "s500": {"kind": "sma", "window": 500}}
    cfg["strategies"] = {"slow": {"kind": "ma_crossover", "fast": "s1", "slow": "s500"}}
    res = ad.run(cfg, client)
    assert any("slow" in w for w in res.manifest["warnings"]), res.manifest["warnings"]
    with pytest.raises(ad.InputError):
        ad.run(cfg, client, out=tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()


def test_unknown_key_did_you_mean(tmp_path):
    cfg = _replay_only(tmp_path)
    cfg["portfolios"]["stop_los"] = 0.05
    one_line_error(main("validate", str(_write(tmp_path, cfg))), "stop_los", "stop_loss")


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (None, "universe"),  # a missing file
        ([("AAPL", "2012-09-01", "2012-08-01")], "AAPL"),  # start after end
        ([("AAPL", "2012-01-01", ""), ("AAPL", "2012-02-01", "")], "AAPL"),  # listed twice
        ([("AAPL", "someday", "")], "someday"),  # a bad date
    ],
)
def test_universe_table_errors(tmp_path, rows, needle):
    cfg = _replay_only(tmp_path)
    cfg["data"]["universe"] = str(tmp_path / "u.csv")
    if rows is not None:
        pd.DataFrame(rows, columns=["symbol", "start", "end"]).to_csv(
            tmp_path / "u.csv", index=False
        )
    one_line_error(main("validate", str(_write(tmp_path, cfg))), needle)


def test_universe_row_for_an_unknown_symbol_warns(tmp_path, client):
    cfg = _replay_only(tmp_path)
    cfg["data"]["universe"] = "u.csv"  # relative to the pipeline file
    pd.DataFrame(
        [
            ("AAPL", "2012-01-01", ""),
            ("IBM", "2012-01-01", "2012-09-28"),
            ("XOM", "2012-01-01", ""),
        ],
        columns=["symbol", "start", "end"],
    ).to_csv(tmp_path / "u.csv", index=False)
    path = _write(tmp_path, cfg)
    proc = main("run", str(path), "--quiet", "--address", client.scheduler.address)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = ad.open_run(tmp_path / "out")
    assert any("XOM" in w for w in res.manifest["warnings"]), res.manifest["warnings"]
    o = res.orders.assign(symbol=res.orders["symbol"].astype(str))
    # no row: never in the universe, no order; IBM's position is closed after it leaves
    assert set(o["symbol"]) <= {"AAPL", "IBM"}
    ibm = o[o["symbol"] == "IBM"]
    assert abs(ibm["qty"].sum()) < 1e-9
    assert (ibm["time"] <= pd.Timestamp("2012-10-02")).all()


def test_report_is_standalone(tour):
    """README: a standalone report, no network needed: nothing is loaded from elsewhere."""
    import re

    html = (tour["tmp"] / "runs" / "qs" / "report.html").read_text()
    assert re.findall(r"<script[^>]*\bsrc=", html) == []
    assert re.findall(r"<link[^>]*\bhref=[\"']https?:", html) == []
    assert re.findall(r"@import\s+url\(", html) == []


def test_duplicate_effective_parameters_are_reported(tmp_path, client):
    cfg = _replay_only(tmp_path)
    cfg["features"] = {"v": {"kind": "volatility", "window": 20}}
    cfg["portfolios"].update(
        vol_feature="v", grid={"target_vol": [0.1, 0.2], "commission": [None, 0.0005]}
    )
    res = ad.run(cfg, client)
    e = res.equity.values
    assert e.shape[1] == 4  # every id is kept
    assert all(np.array_equal(e[:, 0], e[:, i]) for i in range(4))
    assert any("3 of 4" in w for w in res.manifest["warnings"]), res.manifest["warnings"]


def test_ml_train_window_longer_than_the_data_warns(tmp_path, client):
    cfg = _replay_only(tmp_path)
    cfg["features"] = {"r": {"kind": "returns"}}
    cfg["strategies"] = {"x": {"kind": "xgboost", "features": ["r"], "train_window": 1000}}
    res = ad.run(cfg, client)
    warnings = res.manifest["warnings"]
    assert any("strategies.x" in w and "train_window" in w for w in warnings), warnings
    assert any("no portfolio placed an order" in w for w in warnings), warnings
