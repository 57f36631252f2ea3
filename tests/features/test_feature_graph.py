"""The feature graph: chunks, names, laziness, tokens, the session cache, computed-once."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest

from admf_dask.features import (
    FEATURE_CACHE,
    KERNEL_CALLS,
    compute_features,
    feature_stage,
    feature_token,
)
from admf_dask.strategies import StrategyContext, compute_signals

SPECS = {
    "sma_10": {"kind": "sma", "window": 10},
    "sma_50": {"kind": "sma", "window": 50},
    "m": {"kind": "macd"},
    "b": {"kind": "bbands"},
    "dc": {"kind": "donchian", "window": 20},
    "rsi": {"kind": "rsi"},
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    FEATURE_CACHE.clear()
    yield
    FEATURE_CACHE.clear()


def test_variables_dims_chunks_and_attrs(market):
    ds = compute_features(market, SPECS)
    assert list(ds.data_vars) == [
        "sma_10",
        "sma_50",
        "m_macd",
        "m_signal",
        "m_hist",
        "b_upper",
        "b_middle",
        "b_lower",
        "dc_high",
        "dc_low",
        "rsi",
    ]
    for var in ds.data_vars.values():
        assert var.dims == ("time", "symbol")
        assert var.dtype == np.float64
        assert var.chunks == market["close"].chunks
        assert isinstance(var.data, dask.array.Array)
    assert ds["m_signal"].attrs["feature"] == "m" and ds["m_signal"].attrs["output"] == "signal"
    assert json.loads(ds.attrs["feature_specs"])["sma_10"] == {
        "kind": "sma",
        "window": 10,
        "field": "close",
    }
    assert ds.attrs["fingerprint"] == market.attrs["fingerprint"]
    np.testing.assert_array_equal(ds.time.values, market.time.values)


def test_lazy_until_computed(market):
    before = sum(KERNEL_CALLS.values())
    compute_features(market, SPECS)
    assert sum(KERNEL_CALLS.values()) == before


def test_numpy_backed_data_is_one_chunk(market):
    ds = compute_features(market.compute(), {"s": {"kind": "sma", "window": 3}})
    assert ds["s"].chunks == ((market.sizes["time"],), (market.sizes["symbol"],))


def test_token_is_deterministic_and_sensitive(market):
    t = feature_token(market, SPECS)
    assert t == feature_token(market, dict(reversed(list(SPECS.items()))))
    # defaults filled in: the same feature written two ways is the same token
    assert feature_token(market, {"r": {"kind": "rsi"}}) == feature_token(
        market, {"r": {"kind": "rsi", "window": 14, "field": "close"}}
    )
    assert t != feature_token(market, {**SPECS, "sma_10": {"kind": "sma", "window": 11}})
    other = market.copy()
    other.attrs = {**market.attrs, "fingerprint": "something else"}
    assert t != feature_token(other, SPECS)
    assert t != feature_token(market.chunk({"time": 50}), SPECS)


def test_feature_stage_persists_once_and_hits(market):
    ds1, s1 = feature_stage(market, SPECS)
    ds2, s2 = feature_stage(market, dict(SPECS))
    assert (s1, s2) == ("miss", "hit")
    assert ds2 is ds1
    # persisted: each block is a concrete array in the graph
    graph = dict(ds1["sma_10"].data.__dask_graph__())
    assert all(isinstance(v, np.ndarray) for v in graph.values())
    _, s3 = feature_stage(market, {**SPECS, "x": {"kind": "ema", "window": 3}})
    assert s3 == "miss"


def test_feature_used_by_twenty_strategies_is_computed_once(market):
    n_blocks = len(market["close"].chunks[0])
    specs = {"sma_10": SPECS["sma_10"], "sma_50": SPECS["sma_50"]}
    # (1) one graph: twenty consumers, the same keys (dask's graph has each kernel task once)
    feats = compute_features(market, specs)
    strategies = {
        f"s{i}": {"kind": "ma_crossover", "fast": "sma_10", "slow": "sma_50"} for i in range(20)
    }
    sig = compute_signals(market, feats, strategies, StrategyContext())
    keys = [k for k in dict(sig.data.__dask_graph__()) if isinstance(k, tuple)]
    kernel_keys = [k for k in keys if k[0].startswith("sma-") and not k[0].endswith("-halo")]
    assert len(kernel_keys) == 2 * n_blocks
    KERNEL_CALLS.clear()
    with dask.config.set(scheduler="threads"):
        sig.compute()
    assert KERNEL_CALLS["sma"] == 2 * n_blocks  # one kernel run per feature block
    # (2) the stage: persisted once, then reused by every later consumer without recomputation
    KERNEL_CALLS.clear()
    persisted, status = feature_stage(market, specs)
    assert status == "miss" and KERNEL_CALLS["sma"] == 2 * n_blocks
    for _ in range(3):
        again, status = feature_stage(market, specs)
        assert status == "hit"
        compute_signals(market, again, strategies, StrategyContext()).compute()
    assert KERNEL_CALLS["sma"] == 2 * n_blocks


def test_same_feature_twice_is_one_task_set(market):
    ds = compute_features(
        market, {"a": {"kind": "ema", "window": 5}, "b": {"kind": "ema", "window": 5}}
    )
    assert ds["a"].data.name == ds["b"].data.name
    KERNEL_CALLS.clear()
    ds.compute(scheduler="sync")
    assert KERNEL_CALLS["ema"] == len(market["close"].chunks[0])


def test_feature_stage_with_a_distributed_client(market):
    import distributed

    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        ds, s1 = feature_stage(market, SPECS, client=client)
        again, s2 = feature_stage(market, SPECS, client=client)
        local, s3 = feature_stage(market, SPECS)
        assert (s1, s2, s3) == ("miss", "hit", "miss")
        assert again is ds
        ref = compute_features(market, SPECS).compute(scheduler="sync")
        got = client.compute(ds).result()
        for var in ref.data_vars:
            np.testing.assert_array_equal(got[var].values, ref[var].values)
