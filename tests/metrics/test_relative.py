"""Benchmark-relative metrics against empyrical-reloaded (alpha, beta) and numpy (IR, TE)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _oracles import require_module
from hypothesis import given, settings
from hypothesis import strategies as st

from admf_dask.metrics.relative import (
    RELATIVE_METRIC_NAMES,
    benchmark_returns,
    finalize_relative,
    init_relative,
    relative_metrics,
    update_relative,
)

empyrical = require_module("empyrical")


def _numpy_ir_te(r: np.ndarray, b: np.ndarray, ppy: float) -> tuple[float, float]:
    d = (r - b)[np.isfinite(r) & np.isfinite(b)]
    if d.size < 2:
        return math.nan, math.nan
    sd = np.std(d, ddof=1)
    return float(np.mean(d) / sd * math.sqrt(ppy)), float(sd * math.sqrt(ppy))


def _check(r: np.ndarray, b: np.ndarray, ppy: float, got: dict[str, np.ndarray]) -> None:
    assert tuple(got) == RELATIVE_METRIC_NAMES
    for j in range(r.shape[1]):
        alpha, beta = empyrical.alpha_beta(r[:, j], b, annualization=ppy)
        ir, te = _numpy_ir_te(r[:, j], b, ppy)
        for name, want in (("alpha", alpha), ("beta", beta), ("information_ratio", ir),
                           ("tracking_error", te)):  # fmt: skip
            np.testing.assert_allclose(
                got[name][j], want, rtol=1e-9, atol=1e-13, err_msg=f"{name} column {j}"
            )


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(0, 80),
    P=st.integers(1, 4),
    missing=st.sampled_from([0.0, 0.1, 0.5]),
    seed=st.integers(0, 2**32 - 1),
    ppy=st.sampled_from([252.0, 12.0]),
)
def test_returns_against_empyrical(T, P, missing, seed, ppy):
    rng = np.random.default_rng(seed)
    b = rng.normal(0.0005, 0.01, T)
    r = 0.3 * b[:, None] + rng.normal(0.0002, 0.01, (T, P))
    r[rng.random((T, P)) < missing] = np.nan
    b[rng.random(T) < missing] = np.nan
    _check(r, b, ppy, relative_metrics(r, b, ppy))


def test_equity_fold_in_chunks_equals_returns():
    rng = np.random.default_rng(7)
    T, P, capital = 300, 5, 1000.0
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, T)))
    close[[0, 17, 18, 120]] = np.nan
    b = benchmark_returns(close)
    assert np.isnan(b[[0, 1, 17, 18, 19, 120, 121]]).all() and np.isfinite(b[2:17]).all()
    r = 0.8 * np.nan_to_num(b)[:, None] + rng.normal(0.0, 0.005, (T, P))
    equity = capital * np.cumprod(1.0 + r, axis=0)
    returns = np.diff(np.vstack([np.full((1, P), capital), equity]), axis=0)
    returns /= np.vstack([np.full((1, P), capital), equity[:-1]])
    whole = relative_metrics(returns, b)
    _check(returns, b, 252.0, whole)
    acc = init_relative(capital, P)
    for a, z in ((0, 1), (1, 18), (18, 200), (200, T)):
        update_relative(acc, equity[a:z], close[a:z])
    chunked = finalize_relative(acc)
    for name in RELATIVE_METRIC_NAMES:
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-12, err_msg=name)
    assert (np.abs(whole["beta"] - 0.8) < 0.1).all()


def test_degenerate_series():
    flat = np.zeros(10)
    got = relative_metrics(np.full((10, 1), 0.01), flat)
    # a constant benchmark has no variance: beta and alpha nan (empyrical); r - b constant: ir nan
    assert np.isnan(got["beta"][0]) and np.isnan(got["alpha"][0])
    assert got["tracking_error"][0] == pytest.approx(0.0, abs=1e-12)
    one = relative_metrics(np.array([[0.01]]), np.array([0.02]))
    assert all(np.isnan(one[k][0]) for k in RELATIVE_METRIC_NAMES)
    with pytest.raises(ValueError, match="do not align"):
        relative_metrics(np.zeros((3, 2)), np.zeros(4))
