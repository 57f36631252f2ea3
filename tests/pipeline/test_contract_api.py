"""An outsider's check of the user's contract (DESIGN §5, README "Python API", "The run folder",
"Pipeline file reference", "Research statistics", "Cache") on the real bokeh-sampledata prices:
what `ad.run` / `ad.open_run` return and how their filters behave, the files of the run folder,
the documented keys and their defaults, the output switches, and the ``research``, ``cache``,
``schema`` and ``ingest`` commands. References are plain pandas / numpy over the documented
columns, never the package's own helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from _cli import main, one_line_error

import admf_dask as ad

ROOT = Path(__file__).resolve().parents[2]
START, END = "2012-01-01", "2013-03-01"
GRID = {"strategy": ["trend", "mine", {"trend": 0.5, "mine": 0.5}], "stop_loss": [None, 0.04]}
ORDER_COLUMNS = ["portfolio", "time", "symbol", "qty", "price", "commission", "reason"]
TRADE_COLUMNS = [
    "portfolio",
    "symbol",
    "side",
    "entry_time",
    "exit_time",
    "n_fills",
    "entry_price",
    "exit_price",
    "pnl",
    "cost",
    "return",
    "bars",
    "mfe",
    "mae",
]


def bokeh_long(start: str = START, end: str = END) -> pd.DataFrame:
    d = ad.load_market_data({"source": "bokeh_stocks", "start": start, "end": end})
    df = d.to_dataframe().reset_index()
    return df[["time", "symbol", "open", "high", "low", "close", "volume"]].dropna()


def write_replay(path: Path, df: pd.DataFrame, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sig = df[["time", "symbol"]].copy()
    sig["signal"] = np.round(rng.choice([-1.0, 0.0, 0.5, 1.0], len(sig)), 2)
    sig = sig[rng.random(len(sig)) < 0.2]  # sparse: a missing row is a 0 signal
    sig.to_parquet(path)


def pipeline(tmp: Path, **output) -> dict:
    return {
        "name": "contract-api",
        "data": {"source": "bokeh_stocks", "start": START, "end": END, "chunks": {"time": 80}},
        "features": {
            "sma_5": {"kind": "sma", "window": 5},
            "sma_20": {"kind": "sma", "window": 20},
        },
        "strategies": {
            "trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"},
            "mine": {"kind": "signals", "path": "mine.parquet"},  # relative to the pipeline file
        },
        "portfolios": {"capital": 100000, "batch_size": 4, "allow_short": True, "grid": dict(GRID)},
        "execution": {"commission": 0.0005, "commission_fixed": 1.0, "slippage_bps": 2},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(tmp / "run"), "report": False, **output},
    }


def write_pipeline(tmp: Path, cfg: dict, name: str = "p.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def api_run(client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract_api")
    df = bokeh_long()
    write_replay(tmp / "mine.parquet", df, 4)
    path = write_pipeline(tmp, pipeline(tmp))
    res = ad.run(ad.load_pipeline(path), client)
    return {"tmp": tmp, "res": res, "df": df, "path": path, "out": tmp / "run"}


# ----------------------------------------------------------------------------- ad.run / open_run


def test_run_result_attributes(api_run):
    res = api_run["res"]
    n = 6
    assert res.equity.dims == ("time", "portfolio") and res.equity.sizes["portfolio"] == n
    times = np.sort(api_run["df"]["time"].unique())
    np.testing.assert_array_equal(res.equity.time.values, times)
    np.testing.assert_array_equal(res.equity.portfolio.values, np.arange(n))
    m = res.metrics
    assert len(m) == n and list(m.index) == list(range(n))
    for c in (
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
        "stop_loss",
        "strategy",
    ):
        assert c in m.columns, c
    # the README's first look: sortable, one row per portfolio
    assert len(m.sort_values("sharpe").tail()) == 5
    assert list(res.orders.columns[: len(ORDER_COLUMNS)]) == ORDER_COLUMNS
    assert set(res.signals.dims) == {"time", "symbol", "strategy"}
    assert sorted(str(s) for s in res.signals.strategy.values) == ["mine", "trend"]
    assert {"sma_5", "sma_20"} <= set(res.features.data_vars)
    on_disk = json.loads((api_run["out"] / "run.json").read_text())
    assert res.manifest["run_id"] == on_disk["run_id"]
    assert set(res.manifest["timings"]) >= {
        "data",
        "features",
        "signals",
        "portfolio",
        "write",
        "total",
    }


def test_grid_order_and_coordinates(api_run):
    m = api_run["res"].metrics
    import itertools

    combos = list(itertools.product(*GRID.values()))
    for i, (strat, stop) in enumerate(combos):
        want = strat if isinstance(strat, str) else None
        if want is not None:
            assert m.loc[i, "strategy"] == want, (i, m.loc[i, "strategy"])
        got = m.loc[i, "stop_loss"]
        assert (stop is None and (got is None or not np.isfinite(float(got)))) or float(
            got
        ) == pytest.approx(stop), (i, got)
    # the same portfolio's equity with and without the stop differ only if a stop fired
    eq = api_run["res"].equity
    assert not np.array_equal(eq.sel(portfolio=0).values, eq.sel(portfolio=2).values)


def test_open_run_reads_back_the_same(api_run):
    res = api_run["res"]
    back = ad.open_run(api_run["out"])
    np.testing.assert_array_equal(back.equity.values, res.equity.values)
    np.testing.assert_array_equal(back.cash.values, res.cash.values)
    pd.testing.assert_frame_equal(back.orders, res.orders)
    pd.testing.assert_frame_equal(back.metrics, res.metrics)
    pd.testing.assert_frame_equal(back.trades(), res.trades())
    assert back.manifest == json.loads((api_run["out"] / "run.json").read_text())
    with xr.open_zarr(api_run["out"] / "signals.zarr") as s:
        assert set(s.dims) == {"time", "symbol", "strategy"}


def test_orders_file_schema_and_reasons(api_run):
    import pyarrow.dataset as pads

    ds = pads.dataset(api_run["out"] / "orders.parquet", format="parquet")
    assert ds.schema.names[: len(ORDER_COLUMNS)] == ORDER_COLUMNS
    t = ds.to_table().to_pandas()
    assert len(t) == len(api_run["res"].orders) > 0
    allowed = {"signal", "stop", "trailing", "take_profit", "time", "halt"}
    assert set(t["reason"].astype(str)) <= allowed
    assert isinstance(t["reason"].dtype, pd.CategoricalDtype)
    assert {"signal", "stop"} <= set(t["reason"].astype(str))


def test_positions_and_final_equity_follow_the_orders(api_run):
    """results.zarr ``positions`` are the final shares = Σ qty; equity = cash + Σ q·last close."""
    res = api_run["res"]
    df = api_run["df"]
    pos = res.results["positions"]
    assert set(pos.dims) == {"portfolio", "symbol"}
    o = res.orders.assign(symbol=res.orders["symbol"].astype(str))
    held = o.groupby(["portfolio", "symbol"])["qty"].sum()
    last_close = df.sort_values("time").groupby("symbol")["close"].last()
    for p in range(pos.sizes["portfolio"]):
        marked = 0.0
        for s in pos.symbol.values:
            q = float(pos.sel(portfolio=p, symbol=s))
            assert q == pytest.approx(held.get((p, str(s)), 0.0), rel=1e-9, abs=1e-9)
            marked += q * last_close[str(s)]
        eq = float(res.equity.sel(portfolio=p)[-1])
        assert eq == pytest.approx(float(res.cash.sel(portfolio=p)[-1]) + marked, rel=1e-12)


def test_cash_is_capital_minus_order_flows(api_run):
    res = api_run["res"]
    o = res.orders
    for p in range(6):
        op = o[o["portfolio"] == p]
        flow = (op["qty"] * op["price"] + op["commission"]).groupby(op["time"]).sum()
        cash = res.cash.sel(portfolio=p).to_series()
        want = 100000 - flow.reindex(cash.index, fill_value=0.0).cumsum()
        np.testing.assert_allclose(cash.to_numpy(), want.to_numpy(), rtol=1e-10)


def test_trades_filters(api_run):
    res = api_run["res"]
    every = res.trades()
    assert list(every.columns[: len(TRADE_COLUMNS)]) == TRADE_COLUMNS
    assert len(every) > 0
    every = every.assign(symbol=every["symbol"].astype(str))

    def norm(t):
        t = t.assign(symbol=t["symbol"].astype(str))
        return t.sort_values(["portfolio", "symbol", "entry_time"]).reset_index(drop=True)

    for p in (0, 3, 5):
        got = norm(res.trades(portfolio=p))
        want = norm(every[every["portfolio"] == p])
        assert len(want) > 0
        pd.testing.assert_frame_equal(got, want, check_categorical=False)
    got = norm(res.trades(portfolio=[3, 4], symbol="AAPL"))
    want = norm(every[every["portfolio"].isin([3, 4]) & (every["symbol"] == "AAPL")])
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_categorical=False)
    got = norm(res.trades(symbol=["IBM", "MSFT"]))
    want = norm(every[every["symbol"].isin(["IBM", "MSFT"])])
    pd.testing.assert_frame_equal(got, want, check_categorical=False)
    # n_trades of the metrics counts every trade (closed + open)
    counts = every.groupby("portfolio").size()
    for p in range(6):
        assert res.metrics.loc[p, "n_trades"] == counts.get(p, 0)


def test_orders_match_the_trades(api_run):
    """Every fill belongs to a trade: Σ n_fills ≥ orders, and pnl adds up to the equity change."""
    res = api_run["res"]
    tr = res.trades()
    for p in range(6):
        t = tr[tr["portfolio"] == p]
        pnl = t["pnl"].sum()
        eq = float(res.equity.sel(portfolio=p)[-1])
        assert pnl == pytest.approx(eq - 100000, rel=1e-9, abs=1e-6)


def test_relative_replay_path_resolves_against_the_pipeline_file(
    api_run, client, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the pipeline file's folder is not the current directory
    cfg = pipeline(api_run["tmp"])
    cfg["output"]["path"] = "here"  # output.path: against the current directory
    cfg["portfolios"]["grid"] = {"strategy": ["mine"]}
    path = write_pipeline(api_run["tmp"], cfg, "rel.yaml")
    res = ad.run(str(path), client)
    assert (tmp_path / "here" / "run.json").is_file()
    np.testing.assert_array_equal(
        res.equity.sel(portfolio=0).values, api_run["res"].equity.sel(portfolio=2).values
    )


def test_strategy_null_is_the_equal_mix(api_run, client, tmp_path):
    cfg = pipeline(api_run["tmp"])
    cfg["portfolios"]["grid"] = {"stop_loss": [None]}
    cfg["portfolios"]["strategy"] = None
    path = write_pipeline(api_run["tmp"], cfg, "mix.yaml")
    res = ad.run(str(path), client, out=tmp_path / "mix")
    np.testing.assert_array_equal(
        res.equity.sel(portfolio=0).values, api_run["res"].equity.sel(portfolio=4).values
    )


def test_load_pipeline_overrides_like_the_readme(api_run):
    pipe = ad.load_pipeline(api_run["path"])
    two = ad.load_pipeline(pipe, ["portfolios.grid.stop_loss=[0.02]", "output.path=runs/qs2"])
    assert two.portfolios.grid["stop_loss"] == [0.02]
    assert str(two.output.path) == "runs/qs2"
    assert pipe.portfolios.grid["stop_loss"] == [None, 0.04]  # the original is unchanged


def test_open_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ad.InputError):
        ad.open_run(tmp_path / "x")
    with pytest.raises(ad.InputError):
        ad.open_run(tmp_path / "nothing")


# ----------------------------------------------------------------------------- output switches


def test_output_switches(api_run, client, tmp_path):
    cfg = pipeline(api_run["tmp"], orders=False, trades=False, save_signals=False, report=False)
    path = write_pipeline(api_run["tmp"], cfg, "off.yaml")
    res = ad.run(str(path), client, out=tmp_path / "off")
    names = {p.name for p in (tmp_path / "off").iterdir()}
    assert "run.json" in names and "results.zarr" in names
    assert not names & {"orders.parquet", "trades.parquet", "signals.zarr", "report.html"}, names
    # the same equity; trade metrics are gone with the trades
    np.testing.assert_array_equal(res.equity.values, api_run["res"].equity.values)
    assert not {"n_trades", "win_rate", "profit_factor"} & set(res.metrics.columns)
    assert res.metrics["n_orders"].tolist() == api_run["res"].metrics["n_orders"].tolist()
    assert len(ad.open_run(tmp_path / "off").trades()) == 0


def test_report_written_by_default(api_run, client, tmp_path):
    cfg = pipeline(api_run["tmp"])
    del cfg["output"]["report"]
    cfg["portfolios"]["grid"] = {"strategy": ["trend"]}
    res = ad.run(write_pipeline(api_run["tmp"], cfg, "rep.yaml"), client, out=tmp_path / "rep")
    html = (tmp_path / "rep" / "report.html").read_text()
    assert len(html) > 1000
    # research is on only from 2 portfolios (research.enabled: null)
    assert "psr" not in res.results.data_vars
    assert "psr" in api_run["res"].results.data_vars


def test_overwrite_replaces_only_a_previous_run(api_run, client, tmp_path):
    cfg = pipeline(api_run["tmp"])
    cfg["portfolios"]["grid"] = {"strategy": ["trend"]}
    path = write_pipeline(api_run["tmp"], cfg, "ow.yaml")
    # a previous run at the target: a copy of the module's run folder (one run less to compute)
    shutil.copytree(api_run["out"], tmp_path / "ow")
    first = json.loads((tmp_path / "ow" / "run.json").read_text())["run_id"]
    with pytest.raises(ad.InputError):
        ad.run(str(path), client, out=tmp_path / "ow")
    res = ad.run(str(path), client, out=tmp_path / "ow", overrides=["output.overwrite=true"])
    assert res.run_id != first
    assert json.loads((tmp_path / "ow" / "run.json").read_text())["run_id"] == res.run_id
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "mine.txt").write_text("keep me")
    with pytest.raises(ad.InputError):
        ad.run(str(path), client, out=tmp_path / "foreign", overrides=["output.overwrite=true"])
    assert (tmp_path / "foreign" / "mine.txt").read_text() == "keep me"


def test_memory_url_run_and_open(api_run, client):
    cfg = pipeline(api_run["tmp"])
    cfg["portfolios"]["grid"] = {"strategy": ["trend", "mine"]}
    path = write_pipeline(api_run["tmp"], cfg, "mem.yaml")
    res = ad.run(str(path), client, out="memory://contract-api/run")
    back = ad.open_run("memory://contract-api/run")
    np.testing.assert_array_equal(back.equity.values, res.equity.values)
    np.testing.assert_array_equal(
        back.equity.values, api_run["res"].equity.isel(portfolio=[0, 2]).values
    )
    pd.testing.assert_frame_equal(back.orders.reset_index(drop=True), res.orders)


# ----------------------------------------------------------------------------- benchmark


def test_benchmark_metrics(api_run, client, tmp_path):
    cfg = pipeline(api_run["tmp"])
    cfg["portfolios"]["benchmark"] = "IBM"
    path = write_pipeline(api_run["tmp"], cfg, "bm.yaml")
    res = ad.run(str(path), client, out=tmp_path / "bm")
    df = api_run["df"]
    c = df.pivot(index="time", columns="symbol", values="close")["IBM"]
    b = (c / c.shift(1) - 1).to_numpy()
    for p in (0, 3):
        eq = res.equity.sel(portfolio=p).values
        r = eq / np.concatenate([[100000], eq[:-1]]) - 1
        ok = np.isfinite(r) & np.isfinite(b)
        d = r[ok] - b[ok]
        m = res.metrics.loc[p]
        assert m["tracking_error"] == pytest.approx(np.std(d, ddof=1) * np.sqrt(252), rel=1e-9)
        assert m["information_ratio"] == pytest.approx(
            np.mean(d) / np.std(d, ddof=1) * np.sqrt(252), rel=1e-9
        )
        beta = np.cov(r[ok], b[ok], ddof=1)[0, 1] / np.var(b[ok], ddof=1)
        assert m["beta"] == pytest.approx(beta, rel=1e-9)


def _bad_benchmark(api_run, tmp_path) -> Path:
    cfg = pipeline(api_run["tmp"])
    cfg["portfolios"]["benchmark"] = "XOM"
    cfg["output"]["path"] = str(tmp_path / "out")
    return write_pipeline(api_run["tmp"], cfg, "bad_bm.yaml")


def test_benchmark_not_in_data_is_a_run_error(api_run, client, tmp_path):
    bad = _bad_benchmark(api_run, tmp_path)
    one_line_error(main("run", str(bad), "--address", client.scheduler.address), "XOM")
    assert not (tmp_path / "out").exists()


def test_validate_refuses_a_benchmark_not_in_data(api_run, tmp_path):
    one_line_error(main("validate", str(_bad_benchmark(api_run, tmp_path))), "XOM")


# ----------------------------------------------------------------------------- documented keys


def readme_reference_block() -> dict:
    text = (ROOT / "README.md").read_text()
    part = text.split("## Pipeline file reference", 1)[1]
    block = part.split("```yaml", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_every_documented_key_validates(tmp_path):
    """The README's reference pipeline, verbatim, is a valid file (every key exists)."""
    ref = readme_reference_block()
    text = (ROOT / "README.md").read_text()
    block = text.split("## Pipeline file reference", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    (tmp_path / "ref.yaml").write_text(block)
    d = ad.load_market_data({"source": "synthetic", "symbols": 20, "bars": 60, "seed": 7})
    sig = d["close"].to_dataframe().reset_index()[["time", "symbol"]]
    sig["signal"] = 0.5
    sig.to_parquet(tmp_path / "my_signals.parquet")
    assert set(ref) >= {"data", "features", "strategies", "portfolios", "execution", "cluster"}
    proc = main("validate", str(tmp_path / "ref.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]


def _same(got, want) -> bool:
    if got == want:
        return True
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        return float(got) == float(want)
    return str(got) == str(want)


@pytest.mark.parametrize(
    "section", ["data", "portfolios", "execution", "cluster", "output", "cache", "research"]
)
def test_documented_defaults(section):
    """Each value the reference block writes is the default (the block documents the defaults),
    apart from the example's own choices (paths, the quickstart's name and grid)."""
    ref = readme_reference_block()[section]
    example_only = {
        "data": {"symbols"},
        "portfolios": {"grid", "capital"},
        "output": {"path"},
    }.get(section, set())
    cfg = ad.load_pipeline(
        {
            "name": "d",
            "data": {"source": "synthetic"},
            "features": {"m": {"kind": "roc", "window": 5}},
            "strategies": {"s": {"kind": "momentum", "feature": "m"}},
        }
    ).model_dump(mode="json")[section]
    wrong = {
        k: (cfg.get(k, "<absent>"), v)
        for k, v in ref.items()
        if k not in example_only and not _same(cfg.get(k, "<absent>"), v)
    }
    assert not wrong, wrong


def test_synthetic_defaults_are_the_documented_market():
    d = ad.load_market_data({"source": "synthetic"})
    assert d.sizes["symbol"] == 20 and d.sizes["time"] == 2520
    assert str(pd.Timestamp(d.time.values[0]).date()) == "2010-01-04"
    assert d["close"].chunks[0][0] == 504


# ----------------------------------------------------------------------------- commands


def test_research_command_updates_the_run_in_place(api_run, client, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(api_run["out"], run)
    before = json.loads((run / "research.json").read_text())
    assert before["pbo"]["combinations"] == 12870  # C(16, 8), the default 16 blocks
    proc = main(
        "research",
        str(run),
        "--set",
        "research.cscv_blocks=8",
        "--set",
        "research.walk_forward={train: 60, test: 20}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = ad.open_run(run).research
    assert after["pbo"]["combinations"] == 70  # C(8, 4)
    wins = after["walk_forward"]["windows"] if isinstance(after["walk_forward"], dict) else None
    assert wins, after["walk_forward"]
    T = api_run["res"].equity.sizes["time"]
    for k, w in enumerate(wins):
        assert (w["is_start"], w["is_end"]) == (k * 20, k * 20 + 60)
        assert (w["oos_start"], w["oos_end"]) == (k * 20 + 60, min(k * 20 + 80, T))
    assert wins[-1]["oos_end"] == T and len(wins) == -(-(T - 60) // 20)
    with xr.open_zarr(run / "results.zarr") as r:
        wfo = r["wfo_equity"].values
    assert np.isnan(wfo[:60]).all() and np.isfinite(wfo[60:]).all()
    # the equity is untouched
    np.testing.assert_array_equal(ad.open_run(run).equity.values, api_run["res"].equity.values)
    # bad input: an error line, nothing changed
    one_line_error(main("research", str(run), "--set", "research.cscv_blocks=7"), "cscv_blocks")
    assert ad.open_run(run).research == after
    one_line_error(main("research", str(tmp_path)))


def test_cache_info_and_clear(api_run, client, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADMF_DASK_CACHE", str(cache))
    (cache).mkdir()
    (cache / "not-ours.txt").write_text("keep")
    cfg = pipeline(api_run["tmp"])
    cfg["portfolios"]["grid"] = {"strategy": ["trend"]}
    path = write_pipeline(api_run["tmp"], cfg, "cache.yaml")
    first = main(
        "run",
        str(path),
        "--out",
        str(tmp_path / "c1"),
        "--quiet",
        "--address",
        client.scheduler.address,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    info = main("cache", "info")
    assert info.returncode == 0, info.stderr
    text = info.stdout + info.stderr
    assert str(cache) in text and "features" in text and "signals" in text
    # a new process would hit the disk: the run.json of a second CLI run says so
    clear = main("cache", "clear")
    assert clear.returncode == 0, clear.stderr
    assert (cache / "not-ours.txt").read_text() == "keep"
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == ["not-ours.txt"]


def test_schema_command(tmp_path):
    proc = main("schema", "--out", str(tmp_path / "s.json"))
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((tmp_path / "s.json").read_text())
    text = json.dumps(schema)
    for kind in ("sma", "rank", "cs_zscore", "top_k", "xgboost", "lstm", "mlp", "signals"):
        assert f'"{kind}"' in text, kind
    for key in ("take_profit", "max_positions", "exit_on", "walk_forward", "storage_options"):
        assert key in text, key


def test_ingest_then_parquet_source_equals_csv(api_run, client, tmp_path):
    df = api_run["df"].rename(columns={"time": "Date", "symbol": "Ticker", "close": "Last"})
    df["Date"] = df["Date"].dt.strftime("%d/%m/%Y")
    df.to_csv(tmp_path / "prices.csv", index=False)
    proc = main(
        "ingest",
        str(tmp_path / "prices.csv"),
        str(tmp_path / "store"),
        "--date-format",
        "%d/%m/%Y",
        "--columns",
        "time=Date,symbol=Ticker,close=Last",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = pipeline(api_run["tmp"])
    cfg["data"] = {"source": "parquet", "path": str(tmp_path / "store"), "chunks": {"time": 80}}
    res = ad.run(write_pipeline(api_run["tmp"], cfg, "pq.yaml"), client, out=tmp_path / "pq")
    np.testing.assert_array_equal(res.equity.values, api_run["res"].equity.values)
    cfg["data"] = {
        "source": "csv",
        "path": str(tmp_path / "prices.csv"),
        "date_format": "%d/%m/%Y",
        "columns": {"time": "Date", "symbol": "Ticker", "close": "Last"},
        "chunks": {"time": 80},
    }
    res = ad.run(write_pipeline(api_run["tmp"], cfg, "csv.yaml"), client, out=tmp_path / "csv")
    np.testing.assert_array_equal(res.equity.values, api_run["res"].equity.values)
    # a second ingest over a folder it did not write is refused
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    one_line_error(main("ingest", str(tmp_path / "prices.csv"), str(tmp_path / "other")))
    assert (tmp_path / "other" / "x").read_text() == "x"


def test_file_url_run_folder(api_run, client, tmp_path):
    cfg = pipeline(api_run["tmp"])
    cfg["portfolios"]["grid"] = {"strategy": ["trend", "mine"]}
    path = write_pipeline(api_run["tmp"], cfg, "fileurl.yaml")
    res = ad.run(str(path), client, out=f"file://{tmp_path}/f")
    assert (tmp_path / "f" / "run.json").is_file()
    np.testing.assert_array_equal(
        res.equity.values, api_run["res"].equity.isel(portfolio=[0, 2]).values
    )


def test_open_run_of_a_file_url(api_run):
    back = ad.open_run(f"file://{api_run['out']}")
    local = ad.open_run(api_run["out"])
    np.testing.assert_array_equal(back.equity.values, local.equity.values)
    pd.testing.assert_frame_equal(back.orders, local.orders)


@pytest.mark.parametrize("source", ["csv", "parquet", "zarr"])
def test_data_file_url(api_run, tmp_path, source):
    df = api_run["df"]
    path = tmp_path / f"prices.{source}"
    if source == "csv":
        df.to_csv(path, index=False)
    elif source == "parquet":
        df.to_parquet(path)
    else:
        ad.load_market_data({"source": "bokeh_stocks", "start": START, "end": END}).to_zarr(path)
    got = ad.load_market_data({"source": source, "path": f"file://{path}"})
    want = ad.load_market_data({"source": source, "path": str(path)})
    np.testing.assert_array_equal(got["close"].values, want["close"].values)


def test_cli_refuses_a_memory_url(api_run, client, tmp_path):
    proc = main(
        "run",
        str(api_run["path"]),
        "--out",
        "memory://contract-api/cli",
        "--address",
        client.scheduler.address,
    )
    one_line_error(proc, "memory://")
