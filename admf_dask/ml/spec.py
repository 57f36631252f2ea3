"""Strategy keys of the ML kinds (README, pipeline file): one pydantic model per kind, and their validation.

``{kind: xgboost|mlp|lstm, features: [..], horizon: 5, train_window: 504, retrain_every: 252,
purge: horizon, lookback: 20 (lstm only), params: {...}, seed: 0}``. ``params`` is a model made
from the model kind's keyword arguments (`admf_dask.ml.models.PARAMS`). Errors are one-line
`ConfigError`s whose ``where`` is ``strategies.<name>.<key>`` (`admf_dask.params`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic import create_model as _create_model

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.ml.models import KINDS, PARAMS
from admf_dask.params import ParamError, Params, ref_field, validate_params


class ModelParams(Params):
    """Base of the model keyword arguments of one kind (``params:``)."""

    unknown_note = "(seed and threads are set by the engine)"


def _model_params(kind: str) -> type[ModelParams]:
    fields: dict[str, Any] = {}
    for key, p in PARAMS[kind].items():
        bounds: dict[str, Any] = {}
        if p.lo is not None:
            bounds["gt" if p.lo_open else "ge"] = p.lo
        if p.hi is not None:
            bounds["le"] = p.hi
        fields[key] = (p.type, Field(p.default, description=p.doc, **bounds))
    name = f"{kind.capitalize()}ModelParams"
    return _create_model(name, __base__=ModelParams, **fields)  # type: ignore[call-overload]


#: kind -> model of its ``params:`` (model keyword arguments)
MODEL_PARAMS: dict[str, type[ModelParams]] = {k: _model_params(k) for k in KINDS}
XgboostModelParams = MODEL_PARAMS["xgboost"]
MlpModelParams = MODEL_PARAMS["mlp"]
LstmModelParams = MODEL_PARAMS["lstm"]


class MLSpec(Params):
    """Keys of every ML strategy kind (besides ``kind``)."""

    unknown_hints = {"lookback": "lookback is for sequence models: lstm"}

    features: list[str] | str = ref_field(
        "variables", description="feature variable names the model reads (list)"
    )
    horizon: int = Field(
        5, ge=1, description="label horizon in bars: sign of close[t+h]/close[t]-1"
    )
    train_window: int = Field(504, ge=2, description="bars of history each fold trains on")
    retrain_every: int = Field(
        252, ge=1, description="bars each fold predicts before the next retrain"
    )
    purge: int | None = Field(
        None, ge=0, description="bars dropped at the end of each training window (default: horizon)"
    )
    params: ModelParams = Field(default_factory=ModelParams, description="model keyword arguments")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of every random choice")

    @field_validator("features", mode="after")
    @classmethod
    def _features(cls, v: list[str] | str) -> list[str]:
        feats = [v] if isinstance(v, str) else list(v)
        if not feats:
            raise ParamError(
                "", "features must be a non-empty list of feature names, got []",
                "e.g. features: [sma_10, rsi_14]",
            )  # fmt: skip
        if len(set(feats)) != len(feats):
            raise ParamError("", f"features lists a feature twice: {feats}")
        return feats

    @field_validator("params", mode="before")
    @classmethod
    def _no_params(cls, v: Any) -> Any:
        return v or {}  # null, [] or 0 (as written by mistake) mean no model arguments

    @model_validator(mode="after")
    def _purge(self) -> MLSpec:
        purge = self.horizon if self.purge is None else self.purge
        if purge < self.horizon:
            raise ParamError(
                "purge",
                f"purge {purge} is shorter than horizon {self.horizon}: the last training labels "
                "would look past the first predicted bar",
                f"set purge >= {self.horizon} or leave it out",
            )
        if purge >= self.train_window:
            raise ParamError(
                "purge",
                f"purge {purge} leaves no training rows in train_window {self.train_window}",
                "lower purge or raise train_window",
            )
        self.purge = purge
        return self


class XGBoostSpec(MLSpec):
    """Keys of an ``xgboost`` strategy."""

    params: XgboostModelParams = Field(
        default_factory=XgboostModelParams, description="XGBoost keyword arguments"
    )


class MLPSpec(MLSpec):
    """Keys of an ``mlp`` strategy."""

    params: MlpModelParams = Field(
        default_factory=MlpModelParams, description="MLP keyword arguments"
    )


class LSTMSpec(MLSpec):
    """Keys of an ``lstm`` strategy (a sequence model: ``lookback`` bars per input)."""

    params: LstmModelParams = Field(
        default_factory=LstmModelParams, description="LSTM keyword arguments"
    )
    lookback: int = Field(20, ge=1, description="bars per input sequence (sequence models)")

    @model_validator(mode="after")
    def _lookback(self) -> LSTMSpec:
        if self.lookback > self.train_window:
            raise ParamError(
                "lookback",
                f"lookback {self.lookback} is longer than train_window {self.train_window}",
                "lower lookback or raise train_window",
            )
        return self


#: kind -> model of its strategy keys
SPECS: dict[str, type[MLSpec]] = {"xgboost": XGBoostSpec, "mlp": MLPSpec, "lstm": LSTMSpec}

# the order of the keys in a validated spec
_ORDER = ("features", "horizon", "train_window", "retrain_every", "purge", "lookback")


def allowed_keys(kind: str) -> tuple[str, ...]:
    """Keys a strategy of `kind` accepts (besides ``kind``)."""
    keys = tuple(SPECS[kind].model_fields)
    return tuple(k for k in (*_ORDER, "params", "seed") if k in keys)


def param_schema(kind: str) -> dict[str, dict[str, Any]]:
    """JSON-able description of `kind`'s keys and model params (defaults, types, bounds, docs)."""
    fields = SPECS[kind].model_fields
    keys: dict[str, dict[str, Any]] = {}
    for k in allowed_keys(kind):
        default = None if fields[k].is_required() else fields[k].get_default()
        keys[k] = {"default": {} if k == "params" else default, "doc": fields[k].description}
    keys["params"]["fields"] = {
        p: {"default": s.default, "type": s.type.__name__, "min": s.lo, "max": s.hi, "doc": s.doc}
        for p, s in PARAMS[kind].items()
    }
    return keys


def validate_ml_spec(
    name: str, spec: dict[str, Any], feature_names: Collection[str] | None = None
) -> dict[str, Any]:
    """Check an ML strategy spec and fill in its defaults.

    Parameters
    ----------
    name : str
        Strategy name (for error locations ``strategies.<name>.<key>``).
    spec : dict
        ``{"kind": ..., **keys}`` as written in the pipeline file.
    feature_names : collection of str, optional
        Known feature variables; when given, every listed feature must be one of them.

    Returns
    -------
    dict
        The complete spec: kind, features (list), horizon, train_window, retrain_every, purge,
        lookback (``lstm`` only), params (all model params), seed.

    Raises
    ------
    ConfigError
        Unknown keys, wrong types or ranges, a purge shorter than the horizon.
    """
    where = f"strategies.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(where, f"must be a mapping, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ConfigError(
            f"{where}.kind",
            f"unknown ML kind {kind!r}{did_you_mean(str(kind), KINDS)}",
            f"choose one of {', '.join(KINDS)}",
        )
    norm = validate_params(SPECS[kind], where, kind, {k: v for k, v in spec.items() if k != "kind"})
    if feature_names is not None:
        for f in norm["features"]:
            if f not in feature_names:
                raise ConfigError(
                    f"{where}.features",
                    f"unknown feature '{f}'{did_you_mean(f, set(feature_names))}",
                    "define it under features: or fix the name",
                )
    out: dict[str, Any] = {"kind": kind}
    out.update((k, norm[k]) for k in _ORDER if k in norm)
    out["params"] = norm["params"]
    out["seed"] = norm["seed"]
    return out
