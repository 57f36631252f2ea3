"""Semantics of the traditional strategy kinds on hand-made features."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from admf_dask.features import compute_features
from admf_dask.strategies import StrategyContext, compute_signals
from admf_dask.strategies._kernels import breakout as breakout_kernel

NAN = np.nan


def _frame(close, chunks=2, **features):
    """data with `close` and a features Dataset with the given (time,) columns, one symbol."""
    n = len(close)
    coords = {"time": pd.bdate_range("2020-01-01", periods=n), "symbol": ["A"]}
    data = xr.Dataset(
        {"close": (("time", "symbol"), np.asarray(close, float)[:, None])}, coords=coords
    ).chunk({"time": chunks})
    feats = {}
    for name, col in features.items():
        feature = (
            name.rsplit("_", 1)[0]
            if name.endswith(("_upper", "_lower", "_high", "_low", "_middle"))
            else name
        )
        output = name[len(feature) + 1 :]
        feats[name] = xr.DataArray(
            np.asarray(col, float)[:, None],
            dims=("time", "symbol"),
            coords=coords,
            attrs={"feature": feature, "output": output},
        )
    return data, xr.Dataset(feats).chunk({"time": chunks})


def _run(data, feats, spec):
    sig = compute_signals(data, feats, {"s": spec}, StrategyContext())
    assert sig.dims == ("time", "symbol", "strategy")
    assert sig.dtype == np.float64
    assert sig.chunks[0] == data["close"].chunks[0]
    return sig.sel(strategy="s", symbol="A").values


def test_ma_crossover():
    data, f = _frame([1] * 5, fast=[1, 2, 3, NAN, 5], slow=[2, 2, 2, 2, NAN])
    np.testing.assert_array_equal(
        _run(data, f, {"kind": "ma_crossover", "fast": "fast", "slow": "slow"}), [-1, 0, 1, 0, 0]
    )


def test_momentum_threshold():
    data, f = _frame([1] * 6, r=[0.5, 0.01, 0.005, -0.005, -0.5, NAN])
    got = _run(data, f, {"kind": "momentum", "feature": "r", "threshold": 0.01})
    np.testing.assert_array_equal(got, [1, 0, 0, 0, -1, 0])
    got = _run(data, f, {"kind": "momentum", "feature": "r"})
    np.testing.assert_array_equal(got, [1, 1, 1, -1, -1, 0])


def test_rsi_reversion_is_stateless():
    data, f = _frame([1] * 7, rsi=[20, 30, 50, 70, 80, 60, NAN])
    got = _run(data, f, {"kind": "rsi_reversion", "rsi": "rsi"})
    np.testing.assert_array_equal(got, [1, 0, 0, 0, -1, 0, 0])


def test_bollinger_reversion():
    data, f = _frame(
        [9, 10, 12, 11, NAN], b_upper=[11] * 5, b_lower=[10, 10, 10, NAN, 10], b_middle=[10.5] * 5
    )
    got = _run(data, f, {"kind": "bollinger_reversion", "bands": "b"})
    np.testing.assert_array_equal(got, [1, 0, -1, 0, 0])


def test_breakout_uses_previous_bar_and_holds():
    close = [10, 12, 11, 9, NAN, 8, 10, 13]
    hi = [11, 12, 12, 12, NAN, 12, 12, 13]
    lo = [9, 9, 9, 9, NAN, 8, 8, 8]
    data, f = _frame(close, chunks=3, dc_high=hi, dc_low=lo)
    got = _run(data, f, {"kind": "breakout", "channel": "dc"})
    # bar 0: no previous channel -> 0; bar 1: 12 > 11 -> +1; bar 2: held; bar 3: 9 < 9? no,
    # held; bar 4 missing: held; bar 5: channel of bar 4 is NaN -> held; bar 6: 10 < 8? no;
    # bar 7: 13 > 12 -> +1
    np.testing.assert_array_equal(got, [0, 1, 1, 1, 1, 1, 1, 1])
    close = [10, 12, 11, 8.5, 8, 7.9, 12.5]
    lo = [9, 9, 9, 9, 8, 8, 8]
    hi = [11, 12, 12, 12, 12, 12, 12]
    data, f = _frame(close, chunks=2, dc_high=hi, dc_low=lo)
    got = _run(data, f, {"kind": "breakout", "channel": "dc"})
    np.testing.assert_array_equal(got, [0, 1, 1, -1, -1, -1, 1])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=20), st.integers(0, 2**31 - 1))
def test_breakout_kernel_state_chains_exactly(cuts, seed):
    rng = np.random.default_rng(seed)
    n = 120
    c = np.cumsum(rng.normal(size=(n, 3)), axis=0)
    c[rng.random((n, 3)) < 0.1] = np.nan
    hi = pd.DataFrame(c).rolling(5).max().to_numpy()
    lo = pd.DataFrame(c).rolling(5).min().to_numpy()
    full, _ = breakout_kernel(c, hi, lo)
    parts, state, a = [], None, 0
    for step in cuts + [n]:
        b = min(n, a + step)
        if b > a:
            out, state = breakout_kernel(c[a:b], hi[a:b], lo[a:b], state)
            parts.append(out)
        a = b
    np.testing.assert_array_equal(np.concatenate(parts), full)


def test_signals_are_clipped_nan_free_and_chunked_like_data(market, feature_specs, strategy_specs):
    feats = compute_features(market, feature_specs)
    sig = compute_signals(market, feats, strategy_specs, StrategyContext())
    assert list(sig.strategy.values) == list(strategy_specs)
    assert sig.chunks[:2] == market["close"].chunks and sig.chunks[2] == (len(strategy_specs),)
    v = sig.values
    assert not np.isnan(v).any() and v.min() >= -1 and v.max() <= 1
    for name in strategy_specs:  # every kind produces both sides somewhere
        assert (v[..., list(strategy_specs).index(name)] != 0).any(), name


def test_breakout_independent_of_chunking(market_factory, feature_specs):
    feature_specs = {"dc": feature_specs["dc"]}
    base = market_factory(chunks=400)
    ref = compute_signals(
        base, compute_features(base, feature_specs), {"b": {"kind": "breakout", "channel": "dc"}}
    ).values
    for chunks in ((1,) * 12 + (388,), 7, (3, 200, 197), 64):
        data = base.chunk({"time": chunks})
        with dask.config.set(scheduler="sync"):
            got = compute_signals(
                data,
                compute_features(data, feature_specs),
                {"b": {"kind": "breakout", "channel": "dc"}},
            ).values
        np.testing.assert_array_equal(got, ref)


def test_no_strategies_gives_empty_strategy_axis(market):
    sig = compute_signals(market, compute_features(market, {}), {})
    assert sig.sizes["strategy"] == 0 and sig.sizes["time"] == market.sizes["time"]


def test_strategy_returning_garbage_is_a_bug(market):
    from admf_dask.strategies import register_strategy
    from admf_dask.strategies.registry import STRATEGIES

    @register_strategy("test_bad_shape")
    def bad(data, features, spec, ctx):
        return xr.DataArray(np.zeros(3), dims=("x",))

    try:
        with pytest.raises(TypeError, match="test_bad_shape|must return"):
            compute_signals(market, compute_features(market, {}), {"x": {"kind": "test_bad_shape"}})
    finally:
        STRATEGIES.pop("test_bad_shape")
