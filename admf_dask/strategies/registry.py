"""Strategy spec validation against the kind registry (`admf_dask.kinds`).

A strategy kind is one function registered with `register_strategy`, its parameters a pydantic
model next to it (see `admf_dask.kinds`). `admf_dask.ml` registers ``xgboost``, ``lstm`` and
``mlp`` in the same registry, with its own validator; neither package imports the other.
`validate_strategy_spec` checks a spec against its kind's model and then every field that names
features (`admf_dask.params.ref_field`) against the features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.features import INDICATORS, feature_variables
from admf_dask.kinds import STRATEGIES, StrategyKind, register_strategy
from admf_dask.params import Ref, check_kind, refs, validate_params

__all__ = ["STRATEGIES", "StrategyKind", "register_strategy", "validate_strategy_spec"]


def _check_ref(
    where: str,
    p: Ref,
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
    if p.kinds and feature_specs is not None:
        kind = feature_specs.get(parent, {}).get("kind")
        if kind not in p.kinds:
            raise ConfigError(
                where,
                f"{p.name} must name a {' or '.join(p.kinds)} feature, "
                f"'{parent}' is a {kind} feature",
                f"define e.g. {{kind: {p.kinds[0]}}} under features: and name it here",
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
        ``{"kind": kind, **params}`` with defaults filled in, in field order.

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
        params = validate_params(sk.params, where, kind, rest)
    for p in refs(sk.params):
        value = params.get(p.name)
        if value is None:
            continue
        values = value if p.ref == "variables" else [value]
        for v in values:
            _check_ref(f"{where}.{p.name}", p, v, feature_specs, variables)
    return {"kind": kind, **params}
