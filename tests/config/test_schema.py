"""The pipeline file's JSON schema: made from the models and the kind registries, it accepts the
shipped pipelines and refuses what the loader refuses in kinds' parameters."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from _oracles import require_module

from admf_dask.config import load_pipeline, pipeline_schema, read_yaml
from admf_dask.errors import ConfigError
from admf_dask.features import INDICATORS
from admf_dask.strategies import STRATEGIES

jsonschema = require_module("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))

ML = {
    "kind": "xgboost",
    "features": ["sma_5", "sma_20"],
    "train_window": 100,
    "params": {"n_estimators": 5, "learning_rate": 0.3},
}


@pytest.fixture(scope="module")
def validator():
    schema = pipeline_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_json_with_every_kind(validator):
    schema = json.loads(json.dumps(pipeline_schema()))
    defs = schema["$defs"]
    for kind in INDICATORS:
        assert defs[f"feature_{kind}"]["properties"]["kind"]["const"] == kind
    for kind in ("ma_crossover", "rsi_reversion", "signals", "xgboost", "mlp", "lstm"):
        assert kind in STRATEGIES and f"strategy_{kind}" in defs
    window = defs["feature_sma"]["properties"]["window"]
    assert window["type"] == "integer" and window["minimum"] == 1 and window["description"]
    assert defs["feature_sma"]["required"] == ["window", "kind"]
    assert "base_dir" not in schema["properties"]


def test_every_key_has_a_description():
    schema = pipeline_schema()
    models = [("pipeline", schema), *schema["$defs"].items()]
    missing = [
        f"{name}.{key}"
        for name, model in models
        for key, prop in model.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert not missing, missing


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_shipped_pipelines_are_valid(validator, path):
    raw = read_yaml(path)
    errors = [e.message for e in validator.iter_errors(raw)]
    assert not errors, errors
    load_pipeline(path)  # and the loader agrees


def test_small_and_ml_pipelines_are_valid(validator, small_pipeline):
    cfg = copy.deepcopy(small_pipeline)
    cfg["strategies"]["boost"] = dict(ML)
    cfg["strategies"]["seq"] = {"kind": "lstm", "features": "sma_5", "lookback": 5}
    assert not list(validator.iter_errors(cfg))
    load_pipeline(cfg)


@pytest.mark.parametrize(
    ("section", "name", "spec"),
    [
        ("features", "sma_5", {"kind": "smaa", "window": 5}),  # unknown kind
        ("features", "sma_5", {"kind": "sma", "windw": 5}),  # misspelt parameter
        ("features", "sma_5", {"kind": "sma", "window": 0}),  # out of range
        ("features", "sma_5", {"kind": "sma", "window": "5"}),  # wrong type
        ("features", "sma_5", {"kind": "sma"}),  # missing required parameter
        ("features", "sma_5", {"kind": "sma", "window": 5, "field": "closee"}),  # not a choice
        ("strategies", "trend", {"kind": "ma_crossover", "fast": "sma_5"}),
        ("strategies", "trend", {"kind": "momentum", "feature": "sma_5", "threshold": -1}),
        ("strategies", "boost", {**ML, "lookback": 5}),  # lookback is for lstm only
        ("strategies", "boost", {**ML, "params": {"hiden": 3}}),
    ],
)
def test_bad_kind_params_fail_schema_and_loader(validator, small_pipeline, section, name, spec):
    cfg = copy.deepcopy(small_pipeline)
    cfg[section][name] = spec
    assert list(validator.iter_errors(cfg))
    with pytest.raises(ConfigError) as err:
        load_pipeline(cfg)
    assert err.value.where.startswith(f"{section}.{name}")
    assert "\n" not in err.value.line


def test_bad_sections_fail_the_schema(validator, small_pipeline):
    for mutate in (
        lambda d: d["data"].update(barz=3),
        lambda d: d["portfolios"].update(capital=-1),
        lambda d: d.update(portfolio={}),
    ):
        cfg = copy.deepcopy(small_pipeline)
        mutate(cfg)
        assert list(validator.iter_errors(cfg))
