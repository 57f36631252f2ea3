"""Parameter schemas and the indicator registry.

A new indicator is one function registered with `register_indicator`: its parameter schema
(`Param`), the data fields it reads, its output names, its lookback (halo rows) or recursive
flag. `validate_feature_spec` checks a ``{kind: ..., **params}`` dict against that schema and
returns it normalized (defaults filled, schema order), so equal features have equal specs.

`Param` is shared with the strategy registry (`admf_dask.strategies.registry`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from admf_dask.errors import ConfigError, did_you_mean

#: data variables an indicator may read
FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: default of a parameter that must be given
REQUIRED: Any = _Required()

_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


@dataclass(frozen=True)
class Param:
    """One parameter of an indicator or strategy kind.

    Parameters
    ----------
    name : str
        Key in the spec.
    type : type
        ``int``, ``float`` (ints accepted), ``str``, ``bool``, ``list`` or ``dict``.
    default : Any
        Value when absent; `REQUIRED` makes the parameter mandatory.
    doc : str
        One line shown in error messages and docs.
    min, max : float, optional
        Inclusive bounds for numbers.
    choices : tuple, optional
        Allowed values.
    nullable : bool
        ``None`` is allowed.
    item_type : type, optional
        Type of the items of a ``list`` parameter.
    ref : {"variable", "variables", "feature"}, optional
        The value names features: ``variable`` one feature variable (a single-output feature or
        ``<name>_<output>`` of a multi-output one), ``variables`` a list of them, ``feature`` a
        feature name (multi-output allowed).
    ref_kinds : tuple of str
        Indicator kinds the referenced feature must have (empty: any).
    """

    name: str
    type: type
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    item_type: type | None = None
    ref: Literal["variable", "variables", "feature"] | None = None
    ref_kinds: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Whether the parameter has no default."""
        return self.default is REQUIRED

    def describe(self) -> str:
        """Short ``name: type (default x)`` text for error messages."""
        text = f"{self.name}: {_TYPE_NAMES.get(self.type, self.type.__name__)}"
        if self.min is not None:
            text += f" >= {self.min:g}"
        if self.choices:
            text += " in {" + ", ".join(map(str, self.choices)) + "}"
        if not self.required:
            text += f" (default {self.default!r})"
        return text


def _type_ok(value: Any, typ: type) -> bool:
    if typ is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is list:
        return isinstance(value, list | tuple)
    return isinstance(value, typ)


def check_param(p: Param, value: Any, where: str) -> Any:
    """Validate one parameter value; return it normalized (floats as float, lists as list).

    Raises
    ------
    ConfigError
        With ``where`` and what is wrong.
    """
    if value is None:
        if p.nullable:
            return None
        raise ConfigError(where, f"{p.name} must not be null", f"give {p.describe()}")
    if not _type_ok(value, p.type):
        raise ConfigError(
            where,
            f"{p.name} must be {_TYPE_NAMES.get(p.type, p.type.__name__)}, "
            f"got {value!r} ({type(value).__name__})",
            f"give {p.describe()}",
        )
    if p.type is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(where, f"{p.name} must be finite, got {value!r}")
    if p.type is list:
        value = list(value)
        if p.item_type is not None:
            for item in value:
                if not _type_ok(item, p.item_type):
                    raise ConfigError(
                        where,
                        f"{p.name} items must be {_TYPE_NAMES.get(p.item_type, '?')}, got {item!r}",
                    )
    if p.min is not None and value < p.min:
        raise ConfigError(
            where, f"{p.name} must be >= {p.min:g}, got {value!r}", f"give {p.describe()}"
        )
    if p.max is not None and value > p.max:
        raise ConfigError(
            where, f"{p.name} must be <= {p.max:g}, got {value!r}", f"give {p.describe()}"
        )
    if p.choices is not None and value not in p.choices:
        raise ConfigError(
            where,
            f"{p.name} must be one of {', '.join(map(str, p.choices))}, got {value!r}"
            + did_you_mean(str(value), [str(c) for c in p.choices]),
        )
    return value


def check_params(
    where: str, kind: str, params: tuple[Param, ...], spec: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate ``spec`` (without ``kind``) against ``params``; return values in schema order.

    Raises
    ------
    ConfigError
        ``where.<param>`` for unknown, missing or bad parameters.
    """
    known = {p.name: p for p in params}
    for key in spec:
        if key not in known:
            raise ConfigError(
                f"{where}.{key}",
                f"unknown parameter '{key}' for kind {kind}{did_you_mean(str(key), list(known))}",
                f"parameters of {kind} are: " + (", ".join(known) or "none"),
            )
    out: dict[str, Any] = {}
    for p in params:
        if p.name not in spec:
            if p.required:
                raise ConfigError(
                    f"{where}.{p.name}",
                    f"missing required parameter {p.name} for kind {kind}",
                    f"add {p.describe()}",
                )
            out[p.name] = p.default
            continue
        out[p.name] = check_param(p, spec[p.name], f"{where}.{p.name}")
    return out


@dataclass(frozen=True)
class Indicator:
    """A registered indicator kind.

    ``func`` works on 2-D ``(time, symbol)`` float64 blocks. Window indicators: called as
    ``func(*inputs, offset=int, **params)`` (``offset``: global time index of row 0) and return
    an array or a tuple of arrays; rows with less history than ``lookback`` are NaN. Recursive
    indicators: ``func(*inputs, state=ndarray | None, **params)`` returns ``(outputs, state)``;
    feeding the state into the next time chunk gives the single-pass result.
    """

    kind: str
    func: Callable[..., Any]
    params: tuple[Param, ...]
    # data fields read; "@p" reads the field named by parameter p
    inputs: tuple[str, ...]
    # output names of a multi-output indicator (() for one output named like the feature)
    outputs: tuple[str, ...]
    # rows of history before a bar that its value needs (the halo), from the parameters
    lookback: Callable[[Mapping[str, Any]], int]
    # state carried chunk to chunk instead of a halo
    recursive: bool
    # cross-parameter check: returns (param, what, fix) when the spec is inconsistent
    check: Callable[[Mapping[str, Any]], tuple[str, str, str] | None] | None
    doc: str

    def fields(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Data variables read for these (normalized) parameters."""
        return tuple(params[f[1:]] if f.startswith("@") else f for f in self.inputs)

    def kernel_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters passed to ``func`` (those naming input fields removed)."""
        skip = {f[1:] for f in self.inputs if f.startswith("@")}
        return {k: v for k, v in params.items() if k != "kind" and k not in skip}

    def variable_names(self, name: str) -> tuple[str, ...]:
        """Variables a feature called ``name`` gives (``name`` or ``name_<output>``)."""
        return tuple(f"{name}_{o}" for o in self.outputs) if self.outputs else (name,)


#: kind -> Indicator
INDICATORS: dict[str, Indicator] = {}


def register_indicator(
    kind: str,
    *,
    params: tuple[Param, ...] | list[Param],
    inputs: tuple[str, ...] = ("@field",),
    outputs: tuple[str, ...] = (),
    lookback: Callable[[Mapping[str, Any]], int] | None = None,
    recursive: bool = False,
    check: Callable[[Mapping[str, Any]], tuple[str, str, str] | None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an indicator function under ``kind`` (decorator).

    Parameters
    ----------
    kind : str
        Name used in feature specs (``{kind: sma, window: 10}``).
    params : sequence of Param
        Parameter schema.
    inputs : tuple of str
        Data fields read, in the order ``func`` takes them; ``"@field"`` reads the field named
        by parameter ``field``.
    outputs : tuple of str
        Output names of a multi-output indicator.
    lookback : callable, optional
        ``params -> rows`` of history needed before a bar (window indicators; the halo depth).
    recursive : bool
        State carried across time chunks instead of a halo.
    check : callable, optional
        Cross-parameter check returning ``(param, what, fix)`` or None.
    """
    if not recursive and lookback is None:
        raise ValueError(f"window indicator {kind} needs a lookback")

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        if kind in INDICATORS:
            raise ValueError(f"indicator kind {kind!r} is already registered")
        INDICATORS[kind] = Indicator(
            kind=kind,
            func=func,
            params=tuple(params),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            lookback=lookback or (lambda p: 0),
            recursive=recursive,
            check=check,
            doc=(func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else "",
        )
        return func

    return deco


def check_kind(where: str, spec: Any, registry: Mapping[str, Any], noun: str, example: str) -> str:
    """The ``kind`` of a ``{kind: ..., **params}`` spec, checked against a registry."""
    if not isinstance(spec, Mapping):
        raise ConfigError(
            where, f"must be a mapping with a kind, got {spec!r}", f"write e.g. {example}"
        )
    if "kind" not in spec:
        raise ConfigError(
            f"{where}.kind",
            f"missing {noun} kind",
            "add kind: one of " + ", ".join(sorted(registry)),
        )
    kind = spec["kind"]
    if not isinstance(kind, str) or kind not in registry:
        raise ConfigError(
            f"{where}.kind",
            f"unknown {noun} kind '{kind}'{did_you_mean(str(kind), list(registry))}",
            "kinds are: " + ", ".join(sorted(registry)),
        )
    return kind


def validate_feature_spec(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check one feature spec and return it normalized.

    Parameters
    ----------
    name : str
        Feature name (the key under ``features:``).
    spec : mapping
        ``{"kind": ..., **params}``.

    Returns
    -------
    dict
        ``{"kind": kind, **params}`` with defaults filled in, in schema order.

    Raises
    ------
    ConfigError
        ``where="features.<name>[.<param>]"`` for a missing or unknown kind, unknown, missing
        or ill-typed parameters and out-of-range values (e.g. ``window < 1``).
    """
    where = f"features.{name}"
    kind = check_kind(where, spec, INDICATORS, "indicator", "{kind: sma, window: 10}")
    ind = INDICATORS[kind]
    params = check_params(where, kind, ind.params, {k: v for k, v in spec.items() if k != "kind"})
    if ind.check is not None:
        bad = ind.check(params)
        if bad is not None:
            param, what, fix = bad
            raise ConfigError(f"{where}.{param}", what, fix)
    return {"kind": kind, **params}


def validate_feature_specs(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validate every feature spec and check that no two features give the same variable.

    Returns
    -------
    dict
        Feature name -> normalized spec, in the given order.
    """
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for name, spec in specs.items():
        if not isinstance(name, str) or not name:
            raise ConfigError("features", f"feature names must be non-empty strings, got {name!r}")
        norm = validate_feature_spec(name, spec)
        for var in INDICATORS[norm["kind"]].variable_names(name):
            if var in seen:
                raise ConfigError(
                    f"features.{name}",
                    f"gives variable '{var}', which feature '{seen[var]}' also gives",
                    "rename one of the two features",
                )
            seen[var] = name
        out[name] = norm
    return out


def feature_variables(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Map each variable the features give to ``(feature name, output)`` (output "" if single)."""
    out: dict[str, tuple[str, str]] = {}
    for name, spec in specs.items():
        ind = INDICATORS.get(spec.get("kind", ""))
        if ind is None:
            continue
        if ind.outputs:
            for o in ind.outputs:
                out[f"{name}_{o}"] = (name, o)
        else:
            out[name] = (name, "")
    return out
