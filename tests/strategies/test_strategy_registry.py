"""Strategy spec validation and registering new kinds (as admf_dask.ml does)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from admf_dask.errors import ConfigError
from admf_dask.features import compute_features
from admf_dask.strategies import (
    STRATEGIES,
    Param,
    StrategyContext,
    compute_signals,
    register_strategy,
    validate_strategy_spec,
)

FEATS = {
    "sma_5": {"kind": "sma", "window": 5},
    "sma_20": {"kind": "sma", "window": 20},
    "rsi_14": {"kind": "rsi"},
    "bb": {"kind": "bbands"},
    "dc": {"kind": "donchian"},
    "m": {"kind": "macd"},
}


def test_normalized_specs():
    assert validate_strategy_spec("r", {"kind": "rsi_reversion", "rsi": "rsi_14"}, FEATS) == {
        "kind": "rsi_reversion",
        "rsi": "rsi_14",
        "low": 30.0,
        "high": 70.0,
    }
    assert validate_strategy_spec("m", {"kind": "momentum", "feature": "m_hist"}, FEATS) == {
        "kind": "momentum",
        "feature": "m_hist",
        "threshold": 0.0,
    }
    spec = {"kind": "bollinger_reversion", "bands": "bb"}
    assert validate_strategy_spec("b", spec, FEATS) == spec
    assert (
        validate_strategy_spec("s", {"kind": "signals", "path": "x.csv"}, None)["path"] == "x.csv"
    )


@pytest.mark.parametrize(
    ("spec", "where", "text"),
    [
        (
            {"kind": "ma_crosover", "fast": "sma_5", "slow": "sma_20"},
            "strategies.s.kind",
            "did you mean 'ma_crossover'",
        ),
        ({"fast": "sma_5"}, "strategies.s.kind", "missing strategy kind"),
        ({"kind": "ma_crossover", "fast": "sma_5"}, "strategies.s.slow", "missing required"),
        (
            {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_21"},
            "strategies.s.slow",
            "did you mean 'sma_20'",
        ),
        (
            {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20", "fastt": 1},
            "strategies.s.fastt",
            "unknown parameter",
        ),
        ({"kind": "momentum", "feature": "m"}, "strategies.s.feature", "m_macd, m_signal, m_hist"),
        (
            {"kind": "momentum", "feature": "sma_5", "threshold": -1},
            "strategies.s.threshold",
            ">= 0",
        ),
        ({"kind": "momentum", "feature": 5}, "strategies.s.feature", "must be a string"),
        (
            {"kind": "rsi_reversion", "rsi": "sma_5"},
            "strategies.s.rsi",
            "must name a rsi feature, 'sma_5' is a sma feature",
        ),
        (
            {"kind": "rsi_reversion", "rsi": "rsi_14", "low": 70, "high": 30},
            "strategies.s.low",
            "must be below high",
        ),
        ({"kind": "rsi_reversion", "rsi": "rsi_14", "high": 170}, "strategies.s.high", "<= 100"),
        (
            {"kind": "bollinger_reversion", "bands": "sma_5"},
            "strategies.s.bands",
            "must name a bbands feature",
        ),
        (
            {"kind": "bollinger_reversion", "bands": "bb_upper"},
            "strategies.s.bands",
            "is not a feature",
        ),
        (
            {"kind": "breakout", "channel": "bb"},
            "strategies.s.channel",
            "must name a donchian feature, 'bb' is a bbands feature",
        ),
        ({"kind": "signals"}, "strategies.s.path", "missing required"),
    ],
)
def test_bad_specs(spec, where, text):
    with pytest.raises(ConfigError) as info:
        validate_strategy_spec("s", spec, FEATS)
    assert info.value.where == where
    assert text in info.value.line, info.value.line
    assert "\n" not in info.value.line


def test_compute_signals_checks_against_the_features_it_gets(market):
    feats = compute_features(market, {"sma_5": FEATS["sma_5"], "bb": FEATS["bb"]})
    with pytest.raises(ConfigError, match="strategies.x.slow: 'sma_20' is not a feature"):
        compute_signals(
            market, feats, {"x": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}}
        )
    with pytest.raises(ConfigError, match="must name a bbands feature"):
        compute_signals(market, feats, {"x": {"kind": "bollinger_reversion", "bands": "sma_5"}})


def test_register_a_kind_like_the_ml_module(market):
    """A kind with its own validator, a feature-list Param and the `name` keyword."""
    seen = {}

    def validate(name, spec, feature_names):
        seen["validate"] = (name, sorted(feature_names or []))
        if spec.get("horizon", 1) < 1:
            raise ConfigError(f"strategies.{name}.horizon", "must be at least 1")
        return {
            "kind": spec["kind"],
            "features": list(spec["features"]),
            "horizon": spec.get("horizon", 1),
        }

    @register_strategy(
        "test_ml",
        params=(Param("features", list, item_type=str, ref="variables"),),
        validate=validate,
    )
    def test_ml(data, features, spec, ctx, name=None):
        ctx.quality[name] = {"folds": 0}
        ctx.trace.append({"stage": "inference", "strategy": name})
        x = sum(features[f] for f in spec["features"])
        return xr.zeros_like(x) + 0.25

    try:
        feats = compute_features(market, {"sma_5": FEATS["sma_5"], "m": FEATS["m"]})
        ctx = StrategyContext()
        sig = compute_signals(
            market, feats, {"mine": {"kind": "test_ml", "features": ["sma_5", "m_hist"]}}, ctx
        )
        assert np.all(sig.values == 0.25)
        assert ctx.quality == {"mine": {"folds": 0}} and ctx.trace[0]["strategy"] == "mine"
        assert seen["validate"][0] == "mine" and "m_hist" in seen["validate"][1]
        with pytest.raises(ConfigError, match="strategies.y.features: 'nope' is not a feature"):
            compute_signals(market, feats, {"y": {"kind": "test_ml", "features": ["nope"]}})
        with pytest.raises(ConfigError, match="horizon"):
            validate_strategy_spec("z", {"kind": "test_ml", "features": [], "horizon": 0}, FEATS)
        with pytest.raises(ValueError, match="already registered"):
            register_strategy("test_ml")(test_ml)
    finally:
        STRATEGIES.pop("test_ml", None)


def test_register_a_kind_with_a_params_model(market):
    """The usual way: a pydantic model next to the function, a ref field, a cross check."""
    from pydantic import Field, model_validator

    from admf_dask.params import ParamError, Params, ref_field

    class BandParams(Params):
        feature: str = ref_field("variable", kinds=("sma",), description="an sma feature")
        lo: float = Field(-1.0, le=0, description="short below it")
        hi: float = Field(1.0, ge=0, description="long above it")

        @model_validator(mode="after")
        def _order(self):
            if self.lo >= self.hi:
                raise ParamError("hi", f"hi ({self.hi:g}) must be above lo ({self.lo:g})")
            return self

    @register_strategy("test_band", params=BandParams)
    def test_band(data, features, spec, ctx):
        f = features[spec["feature"]]
        return xr.where(f > spec["hi"], 1.0, xr.where(f < spec["lo"], -1.0, 0.0))

    try:
        norm = validate_strategy_spec(
            "b", {"kind": "test_band", "feature": "sma_5", "lo": 0}, FEATS
        )
        assert norm == {"kind": "test_band", "feature": "sma_5", "lo": 0.0, "hi": 1.0}
        assert isinstance(norm["lo"], float)
        cases = [
            ({"feature": "sma_5", "hi": -2}, "strategies.b.hi", ">= 0"),
            ({"feature": "sma_5", "lo": 0, "hi": 0}, "strategies.b.hi", "must be above lo"),
            ({"feature": "sma_5", "loo": 1}, "strategies.b.loo", "did you mean 'lo'"),
            ({"feature": "rsi_14"}, "strategies.b.feature", "must name a sma feature"),
            ({"feature": "sma_5", "lo": "x"}, "strategies.b.lo", "must be a number"),
            ({}, "strategies.b.feature", "missing required parameter feature"),
        ]
        for extra, where, text in cases:
            with pytest.raises(ConfigError) as info:
                validate_strategy_spec("b", {"kind": "test_band", **extra}, FEATS)
            assert info.value.where == where, info.value.line
            assert text in info.value.line and "\n" not in info.value.line, info.value.line
        feats = compute_features(market, {"sma_5": FEATS["sma_5"]})
        sig = compute_signals(market, feats, {"b": {"kind": "test_band", "feature": "sma_5"}})
        assert set(np.unique(sig.values)) <= {-1.0, 0.0, 1.0}
    finally:
        STRATEGIES.pop("test_band", None)
