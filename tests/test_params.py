"""The one parameter system: pydantic models of kind parameters, the `Param` shorthand, and the one
translator of pydantic errors to one-line ConfigErrors."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from admf_dask.errors import ConfigError
from admf_dask.params import (
    REQUIRED,
    Param,
    Params,
    params_model,
    refs,
    to_config_error,
    validate_params,
)


class Inner(Params):
    depth: int = Field(4, ge=1, le=32, description="tree depth")


class Outer(Params):
    window: int = Field(description="bars in the window", ge=1)
    rate: float = Field(0.5, gt=0, le=1, description="a rate")
    side: Literal["long", "short"] = Field("long", description="which side")
    names: list[str] = Field(default_factory=list, description="names")
    inner: Inner = Field(default_factory=Inner, description="nested keys")
    note: str | None = Field(None, description="free text")


def _err(spec: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate_params(Outer, "features.x", "demo", spec)
    assert "\n" not in info.value.line
    return info.value


def test_normalized_in_field_order_with_floats():
    out = validate_params(Outer, "features.x", "demo", {"rate": 1, "window": 3})
    assert list(out) == ["window", "rate", "side", "names", "inner", "note"]
    assert out["rate"] == 1.0 and isinstance(out["rate"], float)
    assert out["inner"] == {"depth": 4}


@pytest.mark.parametrize(
    ("spec", "where", "text"),
    [
        ({}, "features.x.window", "missing required parameter window for kind demo"),
        ({"window": 3, "windw": 1}, "features.x.windw", "did you mean 'window'"),
        ({"window": "3"}, "features.x.window", "window must be an integer, got '3' (str)"),
        ({"window": 3.0}, "features.x.window", "must be an integer"),
        ({"window": False}, "features.x.window", "must be an integer"),
        ({"window": None}, "features.x.window", "window must not be null"),
        ({"window": 0}, "features.x.window", "window must be >= 1, got 0"),
        ({"window": 1, "rate": 0}, "features.x.rate", "rate must be > 0, got 0"),
        ({"window": 1, "rate": float("inf")}, "features.x.rate", "must be finite"),
        ({"window": 1, "side": "lng"}, "features.x.side", "did you mean 'long'"),
        ({"window": 1, "names": ["a", 2]}, "features.x.names", "names items must be a string"),
        ({"window": 1, "inner": {"depht": 2}}, "features.x.inner.depht", "did you mean 'depth'"),
        ({"window": 1, "inner": {"depth": 40}}, "features.x.inner.depth", "<= 32"),
        ({"window": 1, "note": 5}, "features.x.note", "note must be a string"),
    ],
)
def test_errors_are_one_line_with_the_key_path(spec, where, text):
    err = _err(spec)
    assert err.where == where, err.line
    assert text in err.line, err.line


def test_the_fix_describes_the_parameter():
    assert "give window: an integer >= 1" in _err({"window": 0}).line
    assert "parameters of demo are: window, rate, side" in _err({"window": 1, "x": 1}).line


def test_param_shorthand_makes_the_same_kind_of_model():
    model = params_model(
        "demo_params",
        (
            Param("window", int, REQUIRED, "bars", min=1),
            Param("field", str, "close", "field read", choices=("open", "close")),
            Param("names", list, [], "features", item_type=str, ref="variables"),
            Param("path", str, None, "a file", nullable=True),
        ),
    )
    assert issubclass(model, Params)
    assert validate_params(model, "w", "k", {"window": 2}) == {
        "window": 2,
        "field": "close",
        "names": [],
        "path": None,
    }
    assert [(r.name, r.ref) for r in refs(model)] == [("names", "variables")]
    with pytest.raises(ConfigError, match="did you mean 'close'"):
        validate_params(model, "w", "k", {"window": 2, "field": "closs"})
    assert model.model_fields["window"].description == "bars"


def test_pipeline_keys_keep_their_wording():
    class Section(BaseModel):
        model_config = {"extra": "forbid"}
        bars: int = Field(10, ge=2)

    class File(BaseModel):
        model_config = {"extra": "forbid"}
        data: Section = Field(default_factory=Section)

    for raw, line in (
        ({"data": {"barz": 3}}, "data.barz: unknown key 'barz' (did you mean 'bars'?)"),
        ({"data": {"bars": 1}}, "data.bars: Input should be greater than or equal to 2 (got 1)"),
    ):
        with pytest.raises(ValidationError) as info:
            File.model_validate(raw)
        assert to_config_error(info.value, raw, File).line.startswith(line)
