"""The strategy registry: kinds, parameter schemas and spec validation.

A strategy kind is one function registered with `register_strategy`::

    @register_strategy("momentum", params=(Param("feature", str, ref="variable"), ...))
    def momentum(data, features, spec, ctx) -> xr.DataArray: ...

It gets the market data, the (persisted) features, its normalized spec and the
`admf_dask.strategies.StrategyContext`, and returns a ``(time, symbol)`` DataArray of signals
in [-1, 1] (NaN counts as 0). A function that takes a keyword ``name`` also gets the strategy's
name. ``admf_dask.ml`` registers ``xgboost``, ``lstm`` and ``mlp`` here the same way, either
with a `Param` schema (feature lists: ``Param("features", list, item_type=str,
ref="variables")``) or with its own ``validate(name, spec, feature_names) -> dict``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.features.registry import (
    INDICATORS,
    Param,
    check_kind,
    check_params,
    feature_variables,
)

if TYPE_CHECKING:
    import xarray as xr

    from admf_dask.strategies import StrategyContext

StrategyFunc = Callable[
    ["xr.Dataset", "xr.Dataset", dict[str, Any], "StrategyContext"], "xr.DataArray"
]
CheckFunc = Callable[[Mapping[str, Any]], "tuple[str, str, str] | None"]
ValidateFunc = Callable[[str, dict[str, Any], "list[str] | None"], dict[str, Any]]


@dataclass(frozen=True)
class StrategyKind:
    """A registered strategy kind."""

    kind: str
    func: StrategyFunc
    params: tuple[Param, ...]
    # cross-parameter check: (param, what, fix) when the spec is inconsistent
    check: CheckFunc | None
    # parameters naming input files whose contents key the signal cache
    files: tuple[str, ...]
    # own validator (name, spec, known feature variables or None) -> normalized spec
    validate: ValidateFunc | None
    # the function takes a keyword `name` (the strategy's name)
    takes_name: bool
    doc: str


#: kind -> StrategyKind
STRATEGIES: dict[str, StrategyKind] = {}


def register_strategy(
    kind: str,
    *,
    params: tuple[Param, ...] | list[Param] = (),
    check: CheckFunc | None = None,
    files: tuple[str, ...] = (),
    validate: ValidateFunc | None = None,
    replace: bool = False,
) -> Callable[[StrategyFunc], StrategyFunc]:
    """Register a strategy function under ``kind`` (decorator).

    Parameters
    ----------
    kind : str
        Name used in strategy specs.
    params : sequence of Param
        Parameter schema; ``ref=...`` marks parameters that name features.
    check : callable, optional
        ``params -> (param, what, fix) | None`` cross-parameter check.
    files : tuple of str
        Parameters that name input files (their contents key the signal cache).
    validate : callable, optional
        ``validate(name, spec, feature_names) -> normalized spec`` replacing the `Param`
        checks (``feature_names``: the known feature variables, or None when unknown); it raises
        `ConfigError` itself. Params with ``ref`` are still checked against the features.
    replace : bool
        Allow re-registering an existing kind (e.g. on module reload).
    """

    def deco(func: StrategyFunc) -> StrategyFunc:
        if kind in STRATEGIES and not replace:
            raise ValueError(f"strategy kind {kind!r} is already registered")
        STRATEGIES[kind] = StrategyKind(
            kind=kind,
            func=func,
            params=tuple(params),
            check=check,
            files=tuple(files),
            validate=validate,
            takes_name=_takes_name(func),
            doc=(func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else "",
        )
        return func

    return deco


def _takes_name(func: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "name" or p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
    )


def _check_ref(
    where: str,
    p: Param,
    value: str,
    feature_specs: Mapping[str, Mapping[str, Any]] | None,
    variables: Mapping[str, tuple[str, str]] | None,
) -> None:
    if feature_specs is None and variables is None:
        return
    if p.ref == "feature":
        if feature_specs is not None:
            names = list(feature_specs)
        else:
            names = sorted({f for f, _ in (variables or {}).values()})
        if value not in names:
            raise ConfigError(
                where,
                f"'{value}' is not a feature{did_you_mean(value, names)}",
                "define it under features: or use one of: " + (", ".join(names) or "(none)"),
            )
        parent = value
    else:
        if variables is None:
            variables = feature_variables(feature_specs or {})
        if value not in variables:
            extra = ""
            if feature_specs is not None and value in feature_specs:
                outs = INDICATORS[feature_specs[value]["kind"]].outputs
                extra = f" (it has several outputs: use {', '.join(value + '_' + o for o in outs)})"
            raise ConfigError(
                where,
                f"'{value}' is not a feature variable{extra or did_you_mean(value, list(variables))}",
                "use one of: " + (", ".join(variables) or "(no features defined)"),
            )
        parent = variables[value][0]
    if p.ref_kinds and feature_specs is not None:
        kind = feature_specs.get(parent, {}).get("kind")
        if kind not in p.ref_kinds:
            raise ConfigError(
                where,
                f"{p.name} must name a {' or '.join(p.ref_kinds)} feature, "
                f"'{parent}' is a {kind} feature",
                f"define e.g. {{kind: {p.ref_kinds[0]}}} under features: and name it here",
            )


def validate_strategy_spec(
    name: str,
    spec: Mapping[str, Any],
    feature_specs: Mapping[str, Mapping[str, Any]] | None,
    *,
    variables: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Check one strategy spec and return it normalized.

    Parameters
    ----------
    name : str
        Strategy name (its key under ``strategies:``).
    spec : mapping
        ``{"kind": ..., **params}``.
    feature_specs : mapping or None
        Feature name -> spec, to check that referenced features exist and have the right
        kind. None skips the feature checks (unless ``variables`` is given).
    variables : mapping, optional
        Variable -> (feature, output) when only the feature variables are known.

    Returns
    -------
    dict
        ``{"kind": kind, **params}`` with defaults filled in, in schema order.

    Raises
    ------
    ConfigError
        ``where="strategies.<name>[.<param>]"``: unknown kind (did-you-mean), unknown, missing
        or ill-typed parameters, a referenced feature that does not exist or has the wrong kind.
    """
    where = f"strategies.{name}"
    kind = check_kind(
        where, spec, STRATEGIES, "strategy", "{kind: ma_crossover, fast: sma_10, slow: sma_50}"
    )
    sk = STRATEGIES[kind]
    if sk.validate is not None:
        if variables is None and feature_specs is not None:
            variables = feature_variables(feature_specs)
        names = list(variables) if variables is not None else None
        params = {k: v for k, v in sk.validate(name, dict(spec), names).items() if k != "kind"}
    else:
        rest = {k: v for k, v in spec.items() if k != "kind"}
        params = check_params(where, kind, sk.params, rest)
    for p in sk.params:
        value = params.get(p.name)
        if p.ref is None or value is None:
            continue
        values = value if p.ref == "variables" else [value]
        for v in values:
            _check_ref(f"{where}.{p.name}", p, v, feature_specs, variables)
    if sk.check is not None:
        bad = sk.check(params)
        if bad is not None:
            param, what, fix = bad
            raise ConfigError(f"{where}.{param}", what, fix)
    return {"kind": kind, **params}
