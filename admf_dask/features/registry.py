"""The indicator registry.

A new indicator is one function registered with `register_indicator`: its parameter model (an
`admf_dask.params.Params`), the data fields it reads, its output names, its lookback (halo rows)
or recursive flag. `validate_feature_spec` checks a ``{kind: ..., **params}`` dict against that
model and returns it normalized (defaults filled, field order), so equal features have equal
specs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.params import REQUIRED, Param, as_model, check_kind, validate_params

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "FIELDS",
    "INDICATORS",
    "REQUIRED",
    "FieldName",
    "Indicator",
    "Param",
    "check_kind",
    "feature_order",
    "feature_variables",
    "register_indicator",
    "validate_feature_spec",
    "validate_feature_specs",
]

#: data variables an indicator may read
FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
#: type of a parameter naming one of `FIELDS`
FieldName = Literal["open", "high", "low", "close", "volume"]


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
    # pydantic model of the parameters (admf_dask.params.Params)
    params: type[BaseModel]
    # data fields read; "@p" reads the field named by parameter p
    inputs: tuple[str, ...]
    # output names of a multi-output indicator (() for one output named like the feature)
    outputs: tuple[str, ...]
    # rows of history before a bar that its value needs (the halo), from the parameters
    lookback: Callable[[Mapping[str, Any]], int]
    # state carried chunk to chunk instead of a halo
    recursive: bool
    doc: str
    # across symbols at each bar: whole symbol rows, the universe mask as a second input
    cross_sectional: bool = False

    def fields(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Data variables (or, with ``input``, the feature variable) read for these
        (normalized) parameters.

        ``input`` takes the place of the close the indicator reads: its ``@field`` input, else
        ``close``; an indicator reading neither (``donchian``) reads ``input`` for every input.
        """
        src = params.get("input")
        if src is None:
            return tuple(params[f[1:]] if f.startswith("@") else f for f in self.inputs)
        names = tuple(params.get(f[1:], "") if f.startswith("@") else f for f in self.inputs)
        slots = [i for i, f in enumerate(self.inputs) if f.startswith("@")]
        if not slots:
            slots = [i for i, f in enumerate(self.inputs) if f == "close"]
        if not slots:
            return tuple(src for _ in names)
        return tuple(src if i in slots else f for i, f in enumerate(names))

    def kernel_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters passed to ``func`` (those naming input fields removed)."""
        skip = {f[1:] for f in self.inputs if f.startswith("@")} | {"input"}
        return {k: v for k, v in params.items() if k != "kind" and k not in skip}

    def variable_names(self, name: str) -> tuple[str, ...]:
        """Variables a feature called ``name`` gives (``name`` or ``name_<output>``)."""
        return tuple(f"{name}_{o}" for o in self.outputs) if self.outputs else (name,)


#: kind -> Indicator
INDICATORS: dict[str, Indicator] = {}


def register_indicator(
    kind: str,
    *,
    params: type[BaseModel] | Sequence[Param],
    inputs: tuple[str, ...] = ("@field",),
    outputs: tuple[str, ...] = (),
    lookback: Callable[[Mapping[str, Any]], int] | None = None,
    recursive: bool = False,
    cross_sectional: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an indicator function under ``kind`` (decorator).

    Parameters
    ----------
    kind : str
        Name used in feature specs (``{kind: sma, window: 10}``).
    params : Params model or sequence of Param
        Parameter model (``extra="forbid"``, a description per field, bounds, Literal choices);
        a check across parameters is a ``model_validator`` raising `admf_dask.params.ParamError`.
    inputs : tuple of str
        Data fields read, in the order ``func`` takes them; ``"@field"`` reads the field named
        by parameter ``field``.
    outputs : tuple of str
        Output names of a multi-output indicator.
    lookback : callable, optional
        ``params -> rows`` of history needed before a bar (window indicators; the halo depth).
    recursive : bool
        State carried across time chunks instead of a halo.
    cross_sectional : bool
        Looks across symbols at each bar (no history): ``func(x, universe, *, offset, ...)``
        gets whole symbol rows and the universe mask (float, 1 = listed; None = all listed).
    """
    if cross_sectional:
        lookback = lookback or (lambda p: 0)
    if not recursive and lookback is None:
        raise ValueError(f"window indicator {kind} needs a lookback")
    model = as_model(f"{kind}_params", params)

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        if kind in INDICATORS:
            raise ValueError(f"indicator kind {kind!r} is already registered")
        INDICATORS[kind] = Indicator(
            kind=kind,
            func=func,
            params=model,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            lookback=lookback or (lambda p: 0),
            recursive=recursive,
            cross_sectional=cross_sectional,
            doc=(func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else "",
        )
        return func

    return deco


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
        ``{"kind": kind, **params}`` with defaults filled in, in field order.

    Raises
    ------
    ConfigError
        ``where="features.<name>[.<param>]"`` for a missing or unknown kind, unknown, missing
        or ill-typed parameters and out-of-range values (e.g. ``window < 1``).
    """
    where = f"features.{name}"
    kind = check_kind(where, spec, INDICATORS, "indicator", "{kind: sma, window: 10}")
    ind = INDICATORS[kind]
    rest = {k: v for k, v in spec.items() if k not in ("kind", "input")}
    src = spec.get("input")
    if "input" in spec:
        if not isinstance(src, str) or not src:
            raise ConfigError(
                f"{where}.input",
                f"must name a feature or one of {', '.join(FIELDS)}, got {src!r}",
                "e.g. input: close or input: rets (a feature defined under features:)",
            )
        if "field" in spec:
            raise ConfigError(
                f"{where}.input",
                "input and field both name what the indicator reads",
                "keep one of the two",
            )
    elif ind.cross_sectional:
        raise ConfigError(
            f"{where}.input",
            f"{kind} needs an input",
            f"e.g. {{kind: {kind}, input: mom}} (a feature or one of {', '.join(FIELDS)})",
        )
    out = {"kind": kind, **validate_params(ind.params, where, kind, rest)}
    if src is not None:  # only when given: specs without input keep their tokens
        for f in ind.inputs:  # input replaces the field parameter (normalized specs re-validate)
            if f.startswith("@"):
                out.pop(f[1:], None)
        out["input"] = src
    return out


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
    feature_order(out)
    return out


def feature_order(specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Feature names in an order where every feature comes after the feature it reads.

    Raises
    ------
    ConfigError
        An ``input`` naming neither a feature variable nor a data field, or a cycle (the
        error names the chain).
    """
    variables = feature_variables(specs)
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            chain = " -> ".join(path[path.index(name) :] + [name])
            raise ConfigError(
                f"features.{name}.input",
                f"features read each other in a cycle: {chain}",
                "make one of them read a data field or another feature",
            )
        state[name] = 1
        src = specs[name].get("input")
        if src is not None and src not in FIELDS:
            if src not in variables:
                if src in specs:
                    outs = INDICATORS[specs[src]["kind"]].variable_names(src)
                    raise ConfigError(
                        f"features.{name}.input",
                        f"'{src}' has several outputs",
                        "name one of them: " + ", ".join(outs),
                    )
                raise ConfigError(
                    f"features.{name}.input",
                    f"'{src}' is neither a feature nor a data field"
                    + did_you_mean(src, [*variables, *FIELDS]),
                    "name a feature defined under features: or one of " + ", ".join(FIELDS),
                )
            visit(variables[src][0], [*path, name])
        state[name] = 2
        order.append(name)

    for n in specs:
        visit(n, [])
    return order


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
