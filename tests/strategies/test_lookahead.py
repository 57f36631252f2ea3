"""No look-ahead (docs/TIME.md): changing data after bar T changes no feature or signal up to T."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admf_dask.features import compute_features
from admf_dask.strategies import STRATEGIES, StrategyContext, compute_signals

TRADITIONAL = (
    "ma_crossover",
    "momentum",
    "rsi_reversion",
    "bollinger_reversion",
    "breakout",
    "signals",
)


def _perturb(data, t_cut: int, seed: int):
    """Scale every field after bar t_cut by random factors and knock out some bars."""
    rng = np.random.default_rng(seed)
    out = data.copy(deep=True).compute()
    n = out.sizes["time"] - t_cut - 1
    shape = (n, out.sizes["symbol"])
    factor = np.exp(rng.normal(0, 0.3, shape))
    gone = rng.random(shape) < 0.1
    for f in ("open", "high", "low", "close", "volume"):
        v = out[f].values
        v[t_cut + 1 :] *= factor
        v[t_cut + 1 :][gone] = np.nan
    return out.chunk({"time": data["close"].chunks[0]})


@pytest.mark.parametrize("t_cut", [0, 63, 64, 150, 398])
def test_no_feature_or_signal_up_to_t_changes(
    market, feature_specs, strategy_specs, tmp_path, t_cut
):
    times = market.time.values
    replay = pd.DataFrame({"time": times[::3], "symbol": "T1", "signal": 0.5})
    replay.to_csv(tmp_path / "sig.csv", index=False)
    specs = {**strategy_specs, "replay": {"kind": "signals", "path": "sig.csv"}}
    assert {s["kind"] for s in specs.values()} >= set(TRADITIONAL)
    assert set(TRADITIONAL) <= set(STRATEGIES)
    ctx = StrategyContext(base_dir=tmp_path)

    f1 = compute_features(market, feature_specs).compute()
    s1 = compute_signals(market, f1, specs, ctx).values
    changed = _perturb(market, t_cut, seed=t_cut)
    f2 = compute_features(changed, feature_specs).compute()
    s2 = compute_signals(changed, f2, specs, ctx).values

    for var in f1.data_vars:
        np.testing.assert_array_equal(
            f1[var].values[: t_cut + 1], f2[var].values[: t_cut + 1], err_msg=var
        )
    np.testing.assert_array_equal(s1[: t_cut + 1], s2[: t_cut + 1])
    if t_cut < 398:  # the perturbation is real: later signals do move
        assert not np.array_equal(s1[t_cut + 1 :], s2[t_cut + 1 :])
