"""Feature spec validation: normalized specs and one-line ConfigErrors naming the key."""

from __future__ import annotations

import pytest

from admf_dask.errors import ConfigError
from admf_dask.features import INDICATORS, compute_features, validate_feature_spec
from admf_dask.features.registry import validate_feature_specs


def test_every_kind_of_the_contract_is_registered():
    expected = {
        "sma",
        "ema",
        "rsi",
        "atr",
        "macd",
        "bbands",
        "roc",
        "volatility",
        "zscore",
        "donchian",
        "returns",
    }
    assert expected <= set(INDICATORS)
    for kind in expected:
        ind = INDICATORS[kind]
        doc = ind.func.__doc__ or ""
        assert "talib." in doc or "pandas" in doc or "s." in doc, kind  # names its twin


def test_normalized_with_defaults_in_schema_order():
    assert validate_feature_spec("r", {"kind": "rsi"}) == {
        "kind": "rsi",
        "window": 14,
        "field": "close",
    }
    assert validate_feature_spec("m", {"kind": "macd", "slow": 30}) == {
        "kind": "macd",
        "fast": 12,
        "slow": 30,
        "signal": 9,
        "field": "close",
    }
    bb = validate_feature_spec("b", {"k": 1, "kind": "bbands"})
    assert bb == {"kind": "bbands", "window": 20, "k": 1.0, "field": "close"}
    assert isinstance(bb["k"], float)


@pytest.mark.parametrize(
    ("spec", "where", "text"),
    [
        ({"kind": "smaa", "window": 3}, "features.f.kind", "did you mean 'sma'"),
        ({"window": 3}, "features.f.kind", "missing"),
        ({"kind": "sma"}, "features.f.window", "missing required"),
        ({"kind": "sma", "window": 0}, "features.f.window", ">= 1"),
        ({"kind": "ema", "window": -3}, "features.f.window", ">= 1"),
        ({"kind": "rsi", "window": 1}, "features.f.window", ">= 2"),
        ({"kind": "sma", "window": 5, "windw": 3}, "features.f.windw", "did you mean 'window'"),
        ({"kind": "sma", "window": "10"}, "features.f.window", "must be an integer"),
        ({"kind": "sma", "window": 10.5}, "features.f.window", "must be an integer"),
        ({"kind": "sma", "window": True}, "features.f.window", "must be an integer"),
        ({"kind": "bbands", "k": "2"}, "features.f.k", "must be a number"),
        ({"kind": "sma", "window": 5, "field": "closee"}, "features.f.field", "did you mean"),
        ({"kind": "macd", "fast": 26, "slow": 12}, "features.f.fast", "shorter than slow"),
        ({"kind": "volatility", "window": 1}, "features.f.window", ">= 2"),
        ({"kind": "sma", "window": None}, "features.f.window", "must not be null"),
    ],
)
def test_bad_specs(spec, where, text):
    with pytest.raises(ConfigError) as info:
        validate_feature_spec("f", spec)
    err = info.value
    assert err.where == where
    assert text in err.line
    assert "\n" not in err.line


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="features.f: must be a mapping"):
        validate_feature_spec("f", ["sma", 10])


def test_variable_name_collision():
    with pytest.raises(ConfigError, match="m_macd") as info:
        validate_feature_specs({"m": {"kind": "macd"}, "m_macd": {"kind": "sma", "window": 3}})
    assert info.value.where == "features.m_macd"


def test_missing_data_variable(market):
    data = market.drop_vars("high")
    with pytest.raises(ConfigError, match="'high'") as info:
        compute_features(data, {"a": {"kind": "atr"}})
    assert info.value.where == "features.a"
