"""check_signals: strategies without a non-zero signal are named, with the reason."""

from __future__ import annotations

import pandas as pd
import pytest

from admf_dask.errors import ConfigError, DataError
from admf_dask.features import compute_features
from admf_dask.strategies import StrategyContext, compute_signals
from admf_dask.strategies.diagnose import check_signals


def _check(market, features, strategies, ctx):
    feats = compute_features(market, features)
    sig = compute_signals(market, feats, strategies, ctx)
    return check_signals(sig, market, feats, ctx)


def test_nan_features_rules_that_never_fire_and_healthy_strategies(market):
    features = {
        "sma_5": {"kind": "sma", "window": 5},
        "sma_900": {"kind": "sma", "window": 900},
        "bb": {"kind": "bbands", "window": 999, "k": 2.0},
        "roc_5": {"kind": "roc", "window": 5},
    }
    strategies = {
        "ok": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_5"},  # sign(0) = 0
        "long": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_900"},
        "bands": {"kind": "bollinger_reversion", "bands": "bb"},
        "mom": {"kind": "momentum", "feature": "roc_5"},
    }
    ctx = StrategyContext()
    counts = _check(market, features, strategies, ctx)
    assert counts["mom"] > 0 and counts["ok"] == counts["long"] == counts["bands"] == 0
    assert ctx.warnings == [
        "strategy 'ok' has no non-zero signal: its rule never fires on this data",
        "strategy 'long' has no non-zero signal: feature sma_900 is NaN everywhere "
        "(window 900 > 400 bars)",
        "strategy 'bands' has no non-zero signal: feature bb is NaN everywhere "
        "(window 999 > 400 bars)",
    ]
    with pytest.raises(ConfigError, match=r"^strategies.ok: strategy 'ok' has no non-zero"):
        _check(market, features, strategies, StrategyContext(strict=True))


def test_replay_rows_that_match_no_bar_or_are_all_zero(market, tmp_path):
    t = pd.DatetimeIndex(market.time.values)
    df = pd.DataFrame({"time": t[:50] + pd.Timedelta(hours=16), "symbol": "T0", "signal": 1.0})
    df.to_parquet(tmp_path / "late.parquet")
    ctx = StrategyContext(base_dir=tmp_path)
    _check(market, {}, {"late": {"kind": "signals", "path": "late.parquet"}}, ctx)
    assert ctx.warnings == [
        "strategy 'late': 0 of 50 signal rows match a bar of the data "
        "(times 16:00:00 vs bars at 00:00:00)"
    ]
    pd.DataFrame({"time": t[:3], "symbol": "T1", "signal": 0.0}).to_parquet(tmp_path / "z.pq")
    ctx = StrategyContext(base_dir=tmp_path)
    _check(market, {}, {"zero": {"kind": "signals", "path": "z.pq"}}, ctx)
    assert ctx.warnings == [
        "strategy 'zero' has no non-zero signal: the 3 rows of z.pq that match a bar are all 0 "
        "(or outside the universe)"
    ]
    old = pd.DataFrame({"time": t[:3] - pd.DateOffset(years=3), "symbol": "T1", "signal": 1.0})
    old.to_parquet(tmp_path / "old.pq")
    with pytest.raises(DataError, match=r"^old.pq: strategy 'old': 0 of 3 .*\(rows 2012-"):
        _check(
            market,
            {},
            {"old": {"kind": "signals", "path": "old.pq"}},
            StrategyContext(base_dir=tmp_path, strict=True),
        )
