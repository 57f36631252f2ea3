"""Chunking never changes a value: random time chunkings give bit-identical features."""

from __future__ import annotations

import dask
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admf_dask.features import compute_features

# every kind; windows wider than many of the drawn chunks, so halos span several blocks
SPECS = {
    "sma": {"kind": "sma", "window": 31},
    "ema": {"kind": "ema", "window": 12},
    "rsi": {"kind": "rsi", "window": 9},
    "atr": {"kind": "atr", "window": 7},
    "macd": {"kind": "macd", "fast": 4, "slow": 11, "signal": 3},
    "bb": {"kind": "bbands", "window": 23, "k": 1.7},
    "roc": {"kind": "roc", "window": 17},
    "vol": {"kind": "volatility", "window": 19},
    "z": {"kind": "zscore", "window": 13},
    "dc": {"kind": "donchian", "window": 40},
    "ret": {"kind": "returns", "window": 3},
}
N_TIME = 160


def _sizes(draw_sizes: list[int], total: int) -> tuple[int, ...]:
    out, acc = [], 0
    for s in draw_sizes:
        if acc >= total:
            break
        s = min(s, total - acc)
        out.append(s)
        acc += s
    if acc < total:
        out.append(total - acc)
    return tuple(out)


def _values(data, chunks):
    with dask.config.set(scheduler="sync"):
        ds = compute_features(data.chunk({"time": chunks}), SPECS)
        assert all(v.chunks[0] == chunks for v in ds.data_vars.values())
        return ds.compute()


def test_random_chunkings_give_identical_values(market_factory):
    data = market_factory(n_time=N_TIME, n_sym=4, seed=5, missing=0.05, late=(0, 33, 0, 90))
    ref = _values(data, (N_TIME,))

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.integers(1, 70), min_size=1, max_size=40))
    def check(sizes):
        chunks = _sizes(sizes, N_TIME)
        got = _values(data, chunks)
        for var in ref.data_vars:
            np.testing.assert_array_equal(got[var].values, ref[var].values, err_msg=str(chunks))

    check()


def test_one_bar_chunks(market_factory):
    data = market_factory(n_time=60, n_sym=3, seed=2, missing=0.05, late=(0, 7, 0))
    ref = _values(data, (60,))
    got = _values(data, (1,) * 60)
    for var in ref.data_vars:
        np.testing.assert_array_equal(got[var].values, ref[var].values)


def test_symbol_chunks_and_mixed_time_chunks(market_factory):
    data = market_factory(n_time=120, n_sym=5, seed=3, missing=0.05, late=(0, 20, 0, 0, 70))
    ref = _values(data, (120,))
    with dask.config.set(scheduler="sync"):
        got = compute_features(data.chunk({"time": (50, 1, 69), "symbol": 2}), SPECS).compute()
    for var in ref.data_vars:
        np.testing.assert_array_equal(got[var].values, ref[var].values)
