"""The ML kinds through the strategies registry and signal stage (with and without a client)."""

from __future__ import annotations

import numpy as np
import pytest
from ml_synth import make_features, make_market

import admf_dask.ml as ml
import admf_dask.strategies as strategies
from admf_dask.errors import ConfigError

SPECS = {
    "boost": {"kind": "xgboost", "features": ["ret_1", "ret_5", "ret_20"], "train_window": 150,
              "retrain_every": 100, "params": {"n_estimators": 10, "max_depth": 3}},
    "trend": {"kind": "momentum", "feature": "ret_20", "threshold": 0.0},
}  # fmt: skip


def test_kinds_are_registered_with_their_validator():
    for kind in ml.KINDS:
        assert kind in strategies.STRATEGIES
        assert strategies.STRATEGIES[kind].takes_name
    norm = strategies.validate_strategy_spec("m", {"kind": "mlp", "features": ["a"]}, None)
    assert norm["params"] == ml.default_params("mlp") and norm["purge"] == 5
    with pytest.raises(ConfigError) as err:
        strategies.validate_strategy_spec(
            "m", {"kind": "mlp", "features": ["nope"]}, {"a": {"kind": "sma", "window": 3}}
        )
    assert err.value.where == "strategies.m.features"


def test_signal_stage_with_client_matches_local(ml_client):
    data = make_market(300, 3, seed=6)
    feats = make_features(data)
    ctx = strategies.StrategyContext(client=ml_client, run_id="hook")
    sig, status = strategies.signal_stage(data, feats, SPECS, ctx)
    assert status == "miss"
    remote = ml_client.compute(sig.data).result()
    local_ctx = strategies.StrategyContext(run_id="hook-local")
    local = strategies.compute_signals(data, feats, SPECS, local_ctx).values
    np.testing.assert_array_equal(remote, local)
    assert list(sig.strategy.values) == ["boost", "trend"]
    assert np.abs(remote[150:, :, 0]).max() > 0 and (remote[:150, :, 0] == 0).all()
    assert {r["stage"] for r in ctx.trace} == {"train", "inference"}
    assert [q["fold"] for q in ctx.quality["boost"]] == [0, 1]
