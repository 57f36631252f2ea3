"""signal_stage: persisted once per session, keyed by features, specs and replay contents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admf_dask.features import FEATURE_CACHE, KERNEL_CALLS, compute_features, feature_stage
from admf_dask.strategies import SIGNAL_CACHE, StrategyContext, compute_signals, signal_stage


@pytest.fixture(autouse=True)
def _fresh_caches():
    FEATURE_CACHE.clear()
    SIGNAL_CACHE.clear()
    yield
    FEATURE_CACHE.clear()
    SIGNAL_CACHE.clear()


def test_hit_miss_and_same_object(market, feature_specs, strategy_specs):
    feats, _ = feature_stage(market, feature_specs)
    ctx = StrategyContext()
    s1, st1 = signal_stage(market, feats, strategy_specs, ctx)
    s2, st2 = signal_stage(market, feats, {k: dict(v) for k, v in strategy_specs.items()}, ctx)
    assert (st1, st2) == ("miss", "hit") and s2 is s1
    ref = compute_signals(market, compute_features(market, feature_specs), strategy_specs).values
    np.testing.assert_array_equal(s1.values, ref)
    # defaults written out: the same key
    specs = {**strategy_specs, "mom": {**strategy_specs["mom"]}}
    specs["rsi"] = {**specs["rsi"], "low": 35.0}
    assert signal_stage(market, feats, specs, ctx)[1] == "hit"
    specs["rsi"]["low"] = 30
    assert signal_stage(market, feats, specs, ctx)[1] == "miss"


def test_other_portfolio_settings_recompute_nothing(market, feature_specs, strategy_specs):
    """The second run of the same features+strategies touches no kernel (docs/ARCHITECTURE.md, Dask rules)."""
    KERNEL_CALLS.clear()
    feats, _ = feature_stage(market, feature_specs)
    signal_stage(market, feats, strategy_specs, StrategyContext())
    calls = dict(KERNEL_CALLS)
    assert calls["sma"] > 0 and calls["breakout"] == len(market["close"].chunks[0])
    feats2, fs = feature_stage(market, feature_specs)
    sig2, ss = signal_stage(market, feats2, strategy_specs, StrategyContext())
    sig2.values  # noqa: B018  (reading the persisted signals runs nothing)
    assert (fs, ss) == ("hit", "hit") and dict(KERNEL_CALLS) == calls


def test_replay_file_contents_key_the_cache(market, tmp_path):
    t = market.time.values
    path = tmp_path / "s.csv"
    pd.DataFrame({"time": t[:2], "symbol": "T0", "signal": [1, -1]}).to_csv(path, index=False)
    feats, _ = feature_stage(market, {})
    ctx = StrategyContext(base_dir=tmp_path)
    specs = {"rep": {"kind": "signals", "path": "s.csv"}}
    a, s1 = signal_stage(market, feats, specs, ctx)
    b, s2 = signal_stage(market, feats, specs, ctx)
    pd.DataFrame({"time": t[:2], "symbol": "T0", "signal": [1, 0.5]}).to_csv(path, index=False)
    c, s3 = signal_stage(market, feats, specs, ctx)
    assert (s1, s2, s3) == ("miss", "hit", "miss")
    assert a.values[1, 0, 0] == -1 and c.values[1, 0, 0] == 0.5
