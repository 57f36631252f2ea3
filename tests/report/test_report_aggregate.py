"""The report's ndarray kernels (admf_dask/report/_aggregate.py) against numpy/pandas."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from admf_dask.report import _aggregate as agg
from admf_dask.report import _load

QS = (0.05, 0.25, 0.5, 0.75, 0.95)


@pytest.mark.parametrize("nan_fraction", [0.0, 0.2])
def test_row_quantiles_match_numpy(nan_fraction: float) -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 301)).cumsum(axis=1)
    a[rng.random(a.shape) < nan_fraction] = np.nan
    np.testing.assert_allclose(agg.row_quantiles(a, QS), np.nanquantile(a, QS, axis=1), rtol=1e-12)


def test_row_quantiles_edge_rows() -> None:
    a = np.array([[np.nan, np.nan, np.nan], [1.0, np.nan, np.nan], [3.0, 1.0, 2.0]])
    q = agg.row_quantiles(a, QS)
    assert np.isnan(q[:, 0]).all()  # no finite value: NaN, not an error
    np.testing.assert_array_equal(q[:, 1], 1.0)
    np.testing.assert_allclose(q[:, 2], np.quantile([1, 2, 3], QS))
    assert agg.row_quantiles(np.empty((4, 0)), QS).shape == (5, 4)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 30)),
        elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan)),
    )
)
def test_row_quantiles_property(a: np.ndarray) -> None:
    with warnings.catch_warnings():  # nanquantile warns on all-NaN rows; the kernel must not
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanquantile(a, QS, axis=1)
    np.testing.assert_allclose(agg.row_quantiles(a, QS), expected, rtol=1e-9, atol=1e-6)


def test_sketch_merge_is_close_to_exact_quantiles() -> None:
    rng = np.random.default_rng(2)
    a = rng.lognormal(0, 0.4, (50, 4000)) * rng.uniform(0.5, 2, 4000)  # skewed, unequal blocks
    a[rng.random(a.shape) < 0.01] = np.nan
    bounds = [0, 700, 1500, 1501, 4000]  # blocks of different sizes, one of a single column
    parts = [agg.quantile_sketch(a[:, x:y]) for x, y in zip(bounds[:-1], bounds[1:], strict=True)]
    approx = agg.merge_sketches([p[0] for p in parts], [p[1] for p in parts], QS)
    # rank error: the fraction of values below the approximate quantile is within 1 % of q
    n = np.isfinite(a).sum(axis=1)
    for k, q in enumerate(QS):
        below = (a <= approx[k][:, None]).sum(axis=1) / n
        assert np.abs(below - q).max() < 0.01


def test_sketch_merge_single_block_and_constant_rows() -> None:
    a = np.tile(np.arange(10.0), (3, 1))
    a[1] = 5.0  # a constant row (all portfolios start at the capital)
    s, c = agg.quantile_sketch(a)
    np.testing.assert_allclose(agg.merge_sketches([s], [c], QS), np.quantile(a, QS, axis=1))
    s2, c2 = agg.quantile_sketch(a.copy())
    merged = agg.merge_sketches([s, s2], [c, c2], QS)
    np.testing.assert_allclose(merged[:, 1], 5.0)


def test_equity_band_exact_and_sketch_paths(tmp_path) -> None:
    rng = np.random.default_rng(3)
    eq = 1e6 * np.exp(rng.normal(0, 0.01, (300, 1200)).cumsum(axis=0))
    ds = xr.Dataset({"equity": (("time", "portfolio"), eq)})
    with warnings.catch_warnings():  # zarr v3 consolidated-metadata notice
        warnings.simplefilter("ignore")
        ds.to_zarr(tmp_path / "r.zarr", encoding={"equity": {"chunks": (100, 250)}})
    da = xr.open_zarr(tmp_path / "r.zarr", chunks=None)["equity"]
    exact = _load.equity_band(da, QS)  # one time chunk of all portfolios fits the budget
    assert exact.exact
    np.testing.assert_allclose(exact.values, np.quantile(eq, QS, axis=1), rtol=1e-12)
    sketched = _load.equity_band(da, QS, block_bytes=100 * 8 * 250)  # forces portfolio blocks
    assert not sketched.exact
    for k, q in enumerate(QS):  # within 1 % in rank of the exact quantile
        below = (eq <= sketched.values[k][:, None]).mean(axis=1)
        assert np.abs(below - q).max() < 0.01


def test_drawdown() -> None:
    eq = np.array([100.0, 110, 99, np.nan, 121, 60])
    dd = agg.drawdown(eq)
    np.testing.assert_allclose(dd[[0, 1, 2, 4, 5]], [0, 0, 99 / 110 - 1, 0, 60 / 121 - 1])
    assert np.isnan(dd[3])
    two = agg.drawdown(np.column_stack([eq, eq * 2]))
    np.testing.assert_allclose(two[:, 0], two[:, 1])


def test_pick_best_median_worst() -> None:
    s = np.array([0.5, np.nan, 2.0, -1.0, 2.0, 0.1, np.inf * 0])
    best, median, worst = agg.pick_best_median_worst(s)
    assert (best, worst) == (2, 3)  # tie on 2.0: the lower id
    finite = np.sort(s[np.isfinite(s)])  # [-1, 0.1, 0.5, 2, 2] -> lower median 0.5
    assert s[median] == finite[(len(finite) - 1) // 2] == 0.5
    assert agg.pick_best_median_worst(np.full(3, np.nan)) == (0, 0, 0)
    assert agg.pick_best_median_worst(np.array([1.0, 3.0])) == (1, 0, 0)


def test_top_n() -> None:
    s = np.array([0.1, 3.0, np.nan, 2.0, 3.0, -5.0])
    np.testing.assert_array_equal(agg.top_n(s, 3), [1, 4, 3])
    np.testing.assert_array_equal(agg.top_n(s, 10), [1, 4, 3, 0, 5])
    assert agg.top_n(s, 0).size == 0


def test_group_mean_matches_pandas() -> None:
    rng = np.random.default_rng(4)
    n = 500
    cx, cy = rng.integers(0, 4, n), rng.integers(0, 3, n)
    v = rng.normal(size=n)
    v[rng.random(n) < 0.1] = np.nan
    cy[cy == 2] = 1  # level 2 of y has no portfolio: an empty row
    mean, count = agg.group_mean(v, cx, cy, 4, 3)
    ref = pd.DataFrame({"x": cx, "y": cy, "v": v}).groupby(["y", "x"])["v"]
    for (y, x), m in ref.mean().items():
        assert mean[y, x] == pytest.approx(m)
        assert count[y, x] == ref.count()[(y, x)]
    assert np.isnan(mean[2]).all() and (count[2] == 0).all()


def test_positions_and_exposure() -> None:
    # two symbols, four bars: buy 10 of A at bar 1, buy 5 of B at bar 2, sell 4 of A at bar 3
    shares = agg.positions_from_orders(
        np.array([1, 2, 3]), np.array([0, 1, 0]), np.array([10.0, 5.0, -4.0]), 4, 2
    )
    np.testing.assert_array_equal(shares, [[0, 0], [10, 0], [10, 5], [6, 5]])
    price = np.array([[10.0, np.nan], [11.0, 20.0], [np.nan, 22.0], [12.0, 21.0]])
    gross, net = agg.exposure(
        shares * np.array([1, -1]), price, np.array([1000.0, 1000, 1000, 1000])
    )
    # bar 2: A marked at its last close 11 (bar 2 is NaN), B short 5 at 22
    np.testing.assert_allclose(gross, [0, 0.11, (110 + 110) / 1000, (72 + 105) / 1000])
    np.testing.assert_allclose(net, [0, 0.11, 0.0, (72 - 105) / 1000])
