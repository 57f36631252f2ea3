"""The benchmark's buy-and-hold line on the Overview and Portfolio equity charts (docs/TRADES.md,
benchmark), on a real small run with and without ``portfolios.benchmark``."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bokeh.models import ColumnDataSource, GlyphRenderer, Legend

import admf_dask as ad
from admf_dask.data import load_market_data
from admf_dask.report import _load
from admf_dask.report.context import build_context
from admf_dask.report.figures import band_source
from admf_dask.report.tabs import overview, portfolio

CAPITAL = 100_000.0
SMALL = {
    "name": "benchmark-report",
    "data": {"source": "synthetic", "symbols": 4, "bars": 200, "seed": 7, "chunks": {"time": 100}},
    "features": {"sma_5": {"kind": "sma", "window": 5}, "sma_20": {"kind": "sma", "window": 20}},
    "strategies": {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}},
    "portfolios": {
        "capital": CAPITAL,
        "batch_size": 2,
        "benchmark": "S001",
        "grid": {"stop_loss": [None, 0.05]},
    },
    "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
    "output": {"report": False},
}


@pytest.fixture(scope="module")
def runs(client, tmp_path_factory):
    root = tmp_path_factory.mktemp("report-benchmark")
    ad.run(copy.deepcopy(SMALL), client, out=root / "on")
    off = copy.deepcopy(SMALL)
    off["portfolios"]["benchmark"] = None
    ad.run(off, client, out=root / "off")
    return root / "on", root / "off"


def _benchmark_lines(model) -> list[GlyphRenderer]:
    """The renderers that draw the ``benchmark`` column under ``model``."""
    return [
        r
        for r in model.select({"type": GlyphRenderer})
        if getattr(r.glyph, "y", None) == "benchmark"
    ]


def _tabs(run_dir):
    ds = _load.open_results(run_dir)
    ctx = build_context(run_dir, ds, None, None, top=3)
    return ctx, overview.build(ctx), portfolio.build(ctx)


def test_equity_charts_show_the_benchmark_buy_and_hold(runs):
    on, _ = runs
    manifest = json.loads((on / "run.json").read_text())
    close = load_market_data(manifest["config"]["data"])["close"].sel(symbol="S001")
    expected = CAPITAL * close.values / close.values[0]  # synthetic closes: no gaps
    ctx, ov, pf = _tabs(on)
    assert ctx.benchmark is not None and ctx.benchmark[0] == "S001"
    for panel in (ov, pf):
        (line,) = _benchmark_lines(panel.child)
        data = line.data_source.data
        np.testing.assert_array_equal(np.asarray(data["time"]), close["time"].values)
        np.testing.assert_allclose(np.asarray(data["benchmark"]), expected, rtol=1e-12)
        legends = [it.label.value for lg in panel.child.select({"type": Legend}) for it in lg.items]
        assert "benchmark S001" in legends, legends


def test_no_benchmark_no_line(runs):
    _, off = runs
    ctx, ov, pf = _tabs(off)
    assert ctx.benchmark is None
    for panel in (ov, pf):
        assert _benchmark_lines(panel.child) == []
        assert all(
            "benchmark" not in s.data for s in panel.child.select({"type": ColumnDataSource})
        )


def test_benchmark_equity_carries_missing_closes():
    time = pd.date_range("2020-01-01", periods=6, freq="D").values
    close = np.array([np.nan, 50.0, 55.0, np.nan, 60.0, 45.0])
    market = xr.Dataset(
        {"close": (("time", "symbol"), np.c_[close, close * 2])},
        coords={"time": time, "symbol": ["A", "B"]},
    )
    manifest = {"config": {"portfolios": {"benchmark": "A", "capital": 1000.0}}}
    symbol, curve = _load.benchmark_equity(manifest, time, market)
    assert symbol == "A"
    np.testing.assert_array_equal(curve, [1000.0, 1000.0, 1100.0, 1100.0, 1200.0, 900.0])
    manifest["config"]["portfolios"]["benchmark"] = None
    assert _load.benchmark_equity(manifest, time, market) is None


def test_long_benchmark_is_drawn_as_min_max_per_bucket():
    n = 50
    time = pd.date_range("2020-01-01", periods=n, freq="D").values
    bench = 1000.0 + np.sin(np.arange(n)) * 100.0
    band = _load.Band((0.5,), np.full((1, n), 1000.0), exact=True)
    src = band_source(time, band, [], points=10, benchmark=bench)
    edges = _load.agg.display_edges(n, 10)
    want = _load.display_columns({"time": time, "benchmark": bench}, edges=edges)
    assert len(src.data["benchmark"]) < n
    np.testing.assert_array_equal(np.asarray(src.data["benchmark"]), want["benchmark"])
    np.testing.assert_array_equal(np.asarray(src.data["time"]), want["time"])
    assert np.max(src.data["benchmark"]) == bench.max()
