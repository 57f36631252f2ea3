"""Strategy keys of the ML kinds (DESIGN §5) and their validation.

``{kind: xgboost|mlp|lstm, features: [..], horizon: 5, train_window: 504, retrain_every: 252,
purge: horizon, lookback: 20 (lstm only), params: {...}, seed: 0}``. Errors are one-line
`ConfigError`s whose ``where`` is ``strategies.<name>.<key>``.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection
from typing import Any

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.ml.models import KINDS, PARAMS, SEQUENCE_KINDS

# key -> (default, description); purge's default (None) means "= horizon"
KEYS: dict[str, tuple[Any, str]] = {
    "features": (None, "feature variable names the model reads (list)"),
    "horizon": (5, "label horizon in bars: sign of close[t+h]/close[t]-1"),
    "train_window": (504, "bars of history each fold trains on"),
    "retrain_every": (252, "bars each fold predicts before the next retrain"),
    "purge": (None, "bars dropped at the end of each training window (default: horizon)"),
    "lookback": (20, "bars per input sequence (sequence models)"),
    "params": ({}, "model keyword arguments"),
    "seed": (0, "seed of every random choice"),
}


def allowed_keys(kind: str) -> tuple[str, ...]:
    """Keys a strategy of `kind` accepts (besides ``kind``)."""
    return tuple(k for k in KEYS if k != "lookback" or kind in SEQUENCE_KINDS)


def param_schema(kind: str) -> dict[str, dict[str, Any]]:
    """JSON-able description of `kind`'s keys and model params (defaults, types, bounds, docs)."""
    keys = {
        k: {"default": d, "doc": doc} for k, (d, doc) in KEYS.items() if k in allowed_keys(kind)
    }
    keys["params"]["fields"] = {
        p: {"default": s.default, "type": s.type.__name__, "min": s.lo, "max": s.hi, "doc": s.doc}
        for p, s in PARAMS[kind].items()
    }
    return keys


def _int(where: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            where, f"must be a whole number, got {value!r}", f"write e.g. {max(lo, 1)}"
        )
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        bound = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise ConfigError(where, f"must be {bound}, got {v}")
    return v


def _param(where: str, value: Any, p: Any) -> Any:
    if p.type is int:
        return _int(where, value, int(p.lo), None if p.hi is None else int(p.hi))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(where, f"must be a number, got {value!r}", f"default is {p.default}")
    v = float(value)
    bad = (v != v) or (p.lo is not None and (v <= p.lo if p.lo_open else v < p.lo))
    bad = bad or (p.hi is not None and v > p.hi)
    if bad:
        lo = "-inf" if p.lo is None else p.lo
        hi = "inf" if p.hi is None else p.hi
        span = f"{'(' if p.lo_open else '['}{lo}, {hi}]"
        raise ConfigError(where, f"must lie in {span}, got {value!r}", f"default is {p.default}")
    return v


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
    allowed = allowed_keys(kind)
    for key in spec:
        if key != "kind" and key not in allowed:
            hint = " (lookback is for sequence models: lstm)" if key == "lookback" else ""
            raise ConfigError(
                f"{where}.{key}",
                f"unknown key '{key}' for kind {kind}{did_you_mean(key, allowed)}{hint}",
                f"keys are {', '.join(allowed)}",
            )
    feats = spec.get("features")
    if isinstance(feats, str):
        feats = [feats]
    if (
        not isinstance(feats, list | tuple)
        or not feats
        or not all(isinstance(f, str) for f in feats)
    ):
        raise ConfigError(
            f"{where}.features",
            f"must be a non-empty list of feature names, got {feats!r}",
            "e.g. features: [sma_10, rsi_14]",
        )
    if len(set(feats)) != len(feats):
        raise ConfigError(f"{where}.features", f"lists a feature twice: {list(feats)}")
    if feature_names is not None:
        for f in feats:
            if f not in feature_names:
                raise ConfigError(
                    f"{where}.features",
                    f"unknown feature '{f}'{did_you_mean(f, set(feature_names))}",
                    "define it under features: or fix the name",
                )
    out: dict[str, Any] = {"kind": kind, "features": list(feats)}
    out["horizon"] = _int(f"{where}.horizon", spec.get("horizon", KEYS["horizon"][0]), 1)
    out["train_window"] = _int(
        f"{where}.train_window", spec.get("train_window", KEYS["train_window"][0]), 2
    )
    out["retrain_every"] = _int(
        f"{where}.retrain_every", spec.get("retrain_every", KEYS["retrain_every"][0]), 1
    )
    purge = spec.get("purge")
    purge = out["horizon"] if purge is None else _int(f"{where}.purge", purge, 0)
    if purge < out["horizon"]:
        raise ConfigError(
            f"{where}.purge",
            f"purge {purge} is shorter than horizon {out['horizon']}: the last training labels "
            "would look past the first predicted bar",
            f"set purge >= {out['horizon']} or leave it out",
        )
    if purge >= out["train_window"]:
        raise ConfigError(
            f"{where}.purge",
            f"purge {purge} leaves no training rows in train_window {out['train_window']}",
            "lower purge or raise train_window",
        )
    out["purge"] = purge
    if kind in SEQUENCE_KINDS:
        out["lookback"] = _int(
            f"{where}.lookback", spec.get("lookback", KEYS["lookback"][0]), 1, out["train_window"]
        )
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}.params", f"must be a mapping, got {params!r}")
    schema = PARAMS[kind]
    full: dict[str, Any] = {}
    for key, value in params.items():
        if key not in schema:
            raise ConfigError(
                f"{where}.params.{key}",
                f"unknown {kind} parameter '{key}'{did_you_mean(str(key), schema)}",
                f"parameters are {', '.join(schema)} (seed and threads are set by the engine)",
            )
        full[key] = _param(f"{where}.params.{key}", value, schema[key])
    out["params"] = {k: full.get(k, p.default) for k, p in schema.items()}
    out["seed"] = _int(f"{where}.seed", spec.get("seed", KEYS["seed"][0]), 0, 2**32 - 1)
    return out
