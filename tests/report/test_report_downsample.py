"""Display downsampling of long series (min/max per bucket of bars, _aggregate.display_edges)
against a plain reference, and a long run's report bounded by the point budget, not the bars."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from report_runs import make_run, market_path

from admf_dask.report import _aggregate as agg
from admf_dask.report import _load, build_report
from admf_dask.report.figures import Line, band_source


def reference(x: np.ndarray, edges: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Plain loops: per bucket its first and last bar, and per column the NaN-skipping min and
    max in the order they first occur (one point for a one-bar bucket)."""
    rows: list[int] = []
    out: list[list[float]] = []
    for j in range(len(edges) - 1):
        a, b = int(edges[j]), int(edges[j + 1])
        pair = [[np.nan, np.nan] for _ in range(x.shape[1])]
        for c in range(x.shape[1]):
            seg = [(i, float(x[i, c])) for i in range(a, b) if not np.isnan(x[i, c])]
            if seg:
                lo = min(seg, key=lambda t: (t[1], t[0]))  # the first of equal minima
                hi = max(seg, key=lambda t: (t[1], -t[0]))
                pair[c] = [lo[1], hi[1]] if lo[0] <= hi[0] else [hi[1], lo[1]]
        rows.append(a)
        out.append([p[0] for p in pair])
        if b - a > 1:
            rows.append(b - 1)
            out.append([p[1] for p in pair])
    return rows, np.asarray(out, dtype=np.float64).reshape(len(rows), x.shape[1])


@pytest.mark.parametrize("n", [5, 11, 4001, 10_007])
@pytest.mark.parametrize("points", [4, 9, 400, 4000])
def test_display_edges(n: int, points: int) -> None:
    edges = agg.display_edges(n, points)
    if n <= points:
        assert edges is None
        return
    assert list(edges[:2]) == [0, 1] and list(edges[-2:]) == [n - 1, n]  # first, last alone
    inner = np.diff(edges[1:-1])
    assert inner.min() >= 2 and inner.max() - inner.min() <= 1  # even buckets of k or k + 1
    assert len(edges) - 1 == 2 + (points - 2) // 2
    rows = agg.display_rows(edges)
    assert len(rows) <= points and rows[0] == 0 and rows[-1] == n - 1
    assert np.all(np.diff(rows) > 0)


def test_display_edges_needs_four_points() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        agg.display_edges(10, 3)


def test_matches_reference_with_nan_spikes_and_first_last() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10_007, 3)).cumsum(axis=0)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[3000:3400, 1] = np.nan  # whole buckets without a value: gaps
    x[5000, 0] = 1e6  # a one-bar spike and a one-bar trough survive exactly
    x[7001, 2] = -1e6
    x[-1, 0], x[0, 2] = 12.5, np.nan
    rows, v = agg.minmax_downsample(x, 400)
    ref_rows, ref = reference(x, agg.display_edges(len(x), 400))
    assert list(rows) == ref_rows and len(rows) <= 400
    np.testing.assert_array_equal(v, ref)  # exact: NaN where the reference has NaN
    assert np.nanmax(v[:, 0]) == 1e6 and np.nanmin(v[:, 2]) == -1e6
    assert v[-1, 0] == 12.5 and rows[-1] == len(x) - 1 and rows[0] == 0
    assert np.isnan(v[0, 2]) and v[0, 0] == x[0, 0]
    assert np.isnan(v[(rows >= 3100) & (rows < 3300), 1]).all()
    np.testing.assert_array_equal(np.nanmin(v, axis=0), np.nanmin(x, axis=0))
    np.testing.assert_array_equal(np.nanmax(v, axis=0), np.nanmax(x, axis=0))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(5, 300),
    cols=st.integers(1, 3),
    points=st.integers(4, 60),
    block=st.integers(1, 90),
    seed=st.integers(0, 2**16),
    nan_fraction=st.sampled_from([0.0, 0.3, 0.9]),
)
def test_streamed_blocks_equal_one_shot_and_reference(
    n: int, cols: int, points: int, block: int, seed: int, nan_fraction: float
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-5, 5, (n, cols)).astype(np.float64)  # small integers: many ties
    x[rng.random(x.shape) < nan_fraction] = np.nan
    rows, v = agg.minmax_downsample(x, points)
    if n <= points:
        assert rows is None and v is x
        return
    edges = agg.display_edges(n, points)
    acc = agg.minmax_init(edges, cols)
    for a in range(0, n, block):  # blocks cut buckets anywhere
        agg.minmax_update(x[a : a + block], a, edges, acc)
    s_rows, s_v = agg.minmax_points(edges, acc)
    ref_rows, ref = reference(x, edges)
    assert list(rows) == list(s_rows) == ref_rows and len(rows) <= points
    np.testing.assert_array_equal(v, ref)
    np.testing.assert_array_equal(s_v, ref)


def test_dtype_and_shape_kept() -> None:
    x = np.linspace(0, 1, 9000, dtype=np.float32)
    rows, v = agg.minmax_downsample(x, 100)
    assert v.dtype == np.float32 and v.shape == rows.shape == (100,)
    data = {"time": np.arange(9000), "a": x, "b": x * 2}
    out = _load.display_columns(data, 100)
    assert list(out) == ["time", "a", "b"] and out["a"].dtype == np.float32
    np.testing.assert_array_equal(out["time"], rows)
    short = {"time": np.arange(50), "a": x[:50]}
    assert _load.display_columns(short, 100) is short  # within the budget: untouched


def _zarr_equity(tmp_path: Path, x: np.ndarray, chunks: tuple[int, int]) -> xr.DataArray:
    da = xr.DataArray(x, dims=("time", "portfolio"), name="equity")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        da.to_dataset().to_zarr(tmp_path / "e.zarr", encoding={"equity": {"chunks": chunks}})
    return xr.open_zarr(tmp_path / "e.zarr", chunks=None)["equity"]


def test_band_reduced_as_streamed_equals_full_band_downsampled(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = 100 + rng.standard_normal((4_501, 6)).cumsum(axis=0)
    x[rng.random(x.shape) < 0.05] = np.nan
    eq = _zarr_equity(tmp_path, x, (1000, 3))
    for kw in ({"block_bytes": 6 * 8 * 1000}, {"block_bytes": 40_000}):  # slabs / sketches
        full = _load.equity_band(eq, points=None, **kw)
        band = _load.equity_band(eq, points=500, **kw)
        assert full.edges is None and full.values.shape == (5, 4_501)
        assert band.exact == full.exact and band.values.shape == (5, 500)
        np.testing.assert_array_equal(band.edges, agg.display_edges(4_501, 500))
        np.testing.assert_array_equal(band.values, agg.minmax_downsample(full.values.T, 500)[1].T)
    (tmp_path / "s").mkdir()
    short = _load.equity_band(_zarr_equity(tmp_path / "s", x[:400], (100, 6)), points=500)
    assert short.edges is None and short.values.shape == (5, 400)


def test_band_source_drawdown_from_full_curves() -> None:
    """Drawdowns come from the full curve before reduction: the deepest trough is exact."""
    n = 20_000
    eq = np.full(n, 100.0)
    eq[12_345] = 40.0  # one bar at -60 %, right after the peak
    eq[12_344] = 150.0
    time = np.arange(n).astype("datetime64[m]")
    band = _load.Band((), np.empty((0, n)), True)
    src = band_source(time, band, [Line("best", 0, "best", eq)], points=1000)
    k = int(np.diff(agg.display_edges(n, 1000)).max())
    assert len(src.data["time"]) <= 1000 and src.tags == [f"bars_per_point={k}"]
    assert src.data["dd_best"].min() == pytest.approx(40 / 150 - 1, abs=0)
    assert src.data["best"].max() == 150.0 and src.data["best"].min() == 40.0
    full = band_source(time[:800], band, [Line("best", 0, "best", eq[:800])], points=1000)
    assert full.tags == [] and len(full.data["time"]) == 800  # within budget: every bar


def _array_lengths(html: str) -> list[int]:
    """Length of every array embedded in the page's Bokeh document."""
    m = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', html, re.S)
    assert m
    out: list[int] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            if x.get("type") == "ndarray":
                out.append(int(np.prod(x["shape"])))
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            if len(x) > 50 and all(not isinstance(v, dict | list) for v in x):
                out.append(len(x))
            for v in x:
                walk(v)

    walk(json.loads(m.group(1)))
    return out


def test_long_run_report_is_bounded_by_the_budget(tmp_path: Path) -> None:
    """50,000 bars × 3 portfolios: no embedded array beyond the point budget, and the page is
    as large as the same run at 4,000 bars (drawn bar by bar), not 12 times larger."""
    kw = {
        "grid": {"stop_loss": [None, 0.05, 0.1]},
        "n_symbols": 4,
        "orders_per_portfolio": 60,
        "ml": False,
        "signals": False,
        "chunks": (5000, 500),
    }
    sizes = {}
    for n in (_load.DISPLAY_POINTS, 50_000):
        run = make_run(tmp_path / f"r{n}", n_bars=n, **kw)
        out = build_report(run, market_data=xr.open_zarr(market_path(run)))
        html = out.read_text()
        sizes[n] = len(html)
        assert max(_array_lengths(html)) <= _load.DISPLAY_POINTS
        downsampled = "Downsampled for display" in html
        assert downsampled == (n > _load.DISPLAY_POINTS)  # a short run renders as before
    assert sizes[50_000] < 1.05 * sizes[_load.DISPLAY_POINTS], sizes
    k = _load.bars_per_point(50_000)
    assert f"min/max of up to {k} bars" in html and "ad.open_run(run_dir).equity" in html


@settings(max_examples=40, deadline=None)
@given(
    n_t=st.integers(2, 600),
    n_sym=st.integers(1, 4),
    n_orders=st.integers(0, 80),
    block=st.integers(1, 200),
    seed=st.integers(0, 2**16),
    with_close=st.booleans(),
)
def test_exposure_in_blocks_is_the_whole_series_exposure(
    n_t: int, n_sym: int, n_orders: int, block: int, seed: int, with_close: bool
) -> None:
    """Blocks of bars (bounded memory) give the bits of positions + marks + exposure at once."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, n_t, n_orders))
    s = rng.integers(0, n_sym, n_orders)
    qty, fill = rng.normal(0, 300, n_orders).round(2), rng.uniform(50, 150, n_orders)
    eq = 1e6 * np.exp(rng.normal(0, 1e-3, n_t).cumsum())
    close = None
    if with_close:
        close = 100 * np.exp(rng.normal(0, 0.01, (n_t, n_sym)).cumsum(axis=0))
        close[rng.random(close.shape) < 0.2] = np.nan
        close[:, 0] = np.nan  # a symbol without closes: marked at its fills
    shares = agg.positions_from_orders(t, s, qty, n_t, n_sym)
    marks = np.full((n_t, n_sym), np.nan)
    marks[t, s] = fill
    if close is not None:
        has = np.isfinite(close).any(axis=0)
        marks[:, has] = close[:, has]
    want = agg.exposure(shares, marks, eq)
    got = agg.exposure_from_orders(t, s, qty, fill, n_sym, eq, close, block=block)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)


def test_ml_timeline_draws_at_most_max_tasks() -> None:
    from bokeh.models import ColumnDataSource

    from admf_dask.report.tabs import ml

    n = ml.MAX_TASKS + 700
    trace = [
        {"stage": "train" if i % 2 else "inference", "worker": f"w{i % 3}", "start": float(i)}
        | {"stop": float(i) + 1 + (i % 11), "key": f"k{i}"}
        for i in range(n)
    ]
    note, fig = ml._trace({"trace": trace})
    drawn = [len(s.data["left"]) for s in fig.select({"type": ColumnDataSource})]
    assert sum(drawn) == ml.MAX_TASKS
    assert f"{n:,} tasks (the {ml.MAX_TASKS:,} longest drawn" in note.text
    # durations are 1…11 s: the 700 left out are among the shortest
    durations = np.concatenate([s.data["duration"] for s in fig.select({"type": ColumnDataSource})])
    assert durations.min() >= np.sort([t["stop"] - t["start"] for t in trace])[700]
    assert "busy time per worker: w0:" in note.text
    full, _ = ml._trace({"trace": trace[:50]})
    assert "50 tasks; busy" in full.text  # within the cap: as before
