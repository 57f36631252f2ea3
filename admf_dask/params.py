"""The one parameter system: pydantic models of kind parameters and their one-line errors.

Every registered indicator, strategy and ML kind declares its parameters as a `Params` model
(``extra="forbid"``, strict types, a description per field, ``ge``/``le`` bounds, ``Literal``
choices). `validate_params` checks a spec against it and returns it normalized (defaults filled,
field order); `to_config_error` is the one translator from a pydantic `ValidationError` to the
one-line `ConfigError` naming the key path (``features.sma_10.window``) and the fix, used by the
pipeline file loader too (`admf_dask.config`).

A field that names other features carries a `ref` marker (see `ref_field`), checked against the
features by the strategy stage (`admf_dask.strategies.validate_strategy_spec`). A check across
parameters is a ``model_validator(mode="after")`` raising `ParamError`.

`Param` is a shorthand that declares one field; `params_model` turns a sequence of them into a
`Params` model (a registry accepts either).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from admf_dask.errors import ConfigError, did_you_mean

RefKind = Literal["variable", "variables", "feature"]

#: keys of a field's ``json_schema_extra`` that mark a feature reference
REF_KEY = "x-admf-ref"
REF_KINDS_KEY = "x-admf-ref-kinds"


class Params(BaseModel):
    """Base of every kind's parameter model: unknown keys are errors, types are strict.

    Strict: ``"10"``, ``10.5`` and ``true`` are not integers; an integer is a number (made a
    float). Non-finite numbers are refused.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    #: unknown key -> extra hint appended to its error (e.g. "lookback is for lstm")
    unknown_hints: ClassVar[dict[str, str]] = {}
    #: text appended to the "parameters are ..." fix of an unknown key
    unknown_note: ClassVar[str] = ""


class ParamError(ValueError):
    """A check across parameters failed: raise it in a ``model_validator(mode="after")``.

    Parameters
    ----------
    param : str
        The parameter blamed (the error's ``where`` ends with it).
    what, fix : str
        What is wrong and how to fix it.
    """

    def __init__(self, param: str, what: str, fix: str | None = None) -> None:
        super().__init__(what)
        self.param = param
        self.what = what
        self.fix = fix


def ref_field(
    ref: RefKind, default: Any = ..., *, kinds: Sequence[str] = (), description: str = ""
) -> Any:
    """A field whose value names features.

    Parameters
    ----------
    ref : {"variable", "variables", "feature"}
        ``variable``: one feature variable (a single-output feature or ``<name>_<output>`` of a
        multi-output one); ``variables``: a list of them; ``feature``: a feature name
        (multi-output allowed).
    default : Any
        Default (``...``: required).
    kinds : sequence of str
        Indicator kinds the referenced feature must have (empty: any).
    description : str
        The field's description.
    """
    extra: dict[str, Any] = {REF_KEY: ref}
    if kinds:
        extra[REF_KINDS_KEY] = list(kinds)
    return Field(default, description=description, json_schema_extra=extra)


@dataclass(frozen=True)
class Ref:
    """A feature reference declared by a parameter (see `ref_field`)."""

    name: str
    ref: RefKind
    kinds: tuple[str, ...] = ()


def refs(model: type[BaseModel]) -> Iterator[Ref]:
    """The top-level fields of `model` that name features."""
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and REF_KEY in extra:
            kinds = extra.get(REF_KINDS_KEY) or ()
            yield Ref(name, extra[REF_KEY], tuple(kinds))  # type: ignore[arg-type]


# --- describing a field (for error messages) ----------------------------------------------

_TYPE_NAMES: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def _strip_none(ann: Any) -> Any:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return args[0] if len(args) == 1 else ann
    return ann


def _choices(ann: Any) -> tuple[Any, ...] | None:
    ann = _strip_none(ann)
    return typing.get_args(ann) if typing.get_origin(ann) is Literal else None


def _type_name(ann: Any) -> str:
    ann = _strip_none(ann)
    choices = _choices(ann)
    if choices is not None:
        return _TYPE_NAMES.get(type(choices[0]), "a value")
    origin = typing.get_origin(ann) or ann
    if isinstance(origin, type) and issubclass(origin, BaseModel):
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(ann))
    return _TYPE_NAMES.get(origin, getattr(origin, "__name__", str(origin)))


def _bounds(info: FieldInfo) -> list[tuple[str, float]]:
    """``(">=", 1)``-style bounds of a field (annotated-types metadata of ``Field(ge=1)``)."""
    out = []
    for m in info.metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            v = getattr(m, attr, None)
            if isinstance(v, int | float) and not isinstance(v, bool):
                out.append((op, v))
    return out


def describe(name: str, info: FieldInfo) -> str:
    """Short ``name: type >= bound (default x)`` text for error messages."""
    text = f"{name}: {_type_name(info.annotation)}"
    bounds = dict(_bounds(info))
    lo = next(((op, bounds[op]) for op in (">=", ">") if op in bounds), None)
    hi = next(((op, bounds[op]) for op in ("<=", "<") if op in bounds), None)
    if lo is not None and hi is not None:
        text += f" in {'[' if lo[0] == '>=' else '('}{float(lo[1]):g}, "
        text += f"{float(hi[1]):g}{']' if hi[0] == '<=' else ')'}"
    else:
        for bound in (lo, hi):
            if bound is not None:
                text += f" {bound[0]} {float(bound[1]):g}"
    choices = _choices(info.annotation)
    if choices:
        text += " in {" + ", ".join(map(str, choices)) + "}"
    if not info.is_required() and _sub_model(info) is None:
        text += f" (default {info.get_default(call_default_factory=True)!r})"
    return text


# --- the translator -----------------------------------------------------------------------


def _real_loc(loc: tuple[Any, ...], raw: Any, typ: str | None = None) -> tuple[Any, ...]:
    """Drop pydantic's union-member tags ('str', 'int', "literal['auto']") from a location.

    The last part is kept when it is not in `raw` only for a missing or an unknown key (error
    type `typ`; None: always).
    """
    out: list[Any] = []
    node = raw
    keep_last = typ is None or typ in ("missing", "extra_forbidden")
    for i, part in enumerate(loc):
        if isinstance(node, Mapping) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list | tuple) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif i == len(loc) - 1 and isinstance(node, Mapping) and keep_last:
            out.append(part)  # a missing key, or an unknown one being reported
    return tuple(out)


def _sub_model(info: FieldInfo | None) -> type[BaseModel] | None:
    if info is None:
        return None
    ann = _strip_none(info.annotation)
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _walk(model: type[BaseModel], loc: Sequence[Any]) -> tuple[type[BaseModel] | None, Any]:
    """(model holding the last key of `loc`, that key's FieldInfo or None)."""
    cur: type[BaseModel] | None = model
    info: FieldInfo | None = None
    keys = [p for p in loc if isinstance(p, str)]
    for i, part in enumerate(keys):
        if cur is None:
            return None, None
        info = cur.model_fields.get(part)
        if i < len(keys) - 1:
            cur = _sub_model(info)
    return cur, info


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the sub-model at `loc` (for did-you-mean on unknown keys)."""
    cur: Any = model
    for part in loc:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        field = cur.model_fields.get(str(part))
        if field is None:
            return None
        cur = _sub_model(field)
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return [f for f, info in cur.model_fields.items() if not info.exclude]
    return None


def _pick(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error to report: an unknown key first (as the key is probably misspelt), else the first."""
    for err in errors:
        if err["type"] == "extra_forbidden":
            return err
    return errors[0]


def _key_error(err: dict[str, Any], loc: tuple[Any, ...], where: str, model: type[BaseModel]):
    """The pipeline-file wording (sections and keys): pydantic's message, the value, a fix."""
    typ = err["type"]
    if typ == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1]) or []
        return ConfigError(
            where,
            f"unknown key '{loc[-1]}'{did_you_mean(str(loc[-1]), allowed)}",
            "allowed keys here: " + ", ".join(allowed) if allowed else "remove it",
        )
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    value = err.get("input")
    shown = (
        ""
        if isinstance(value, dict | list) or typ == "missing" or "got" in msg
        else f" (got {value!r})"
    )
    fix = "see the pipeline file reference in README.md"
    if typ == "literal_error":
        fix = "use one of the values listed"
    return ConfigError(where, f"{msg}{shown}", fix)


_BOUND_TYPES = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}
_TYPE_ERRORS = {
    "int_type": int,
    "int_from_float": int,
    "int_parsing": int,
    "float_type": float,
    "float_parsing": float,
    "string_type": str,
    "bool_type": bool,
    "bool_parsing": bool,
    "list_type": list,
    "dict_type": dict,
    "model_type": dict,
    "model_attributes_type": dict,
}


def _param_error(
    err: dict[str, Any], loc: tuple[Any, ...], prefix: str, model: type[BaseModel], kind: str
) -> ConfigError:
    """The kind-parameter wording: ``<name> must be an integer, got 'x'; give <description>``."""
    typ = err["type"]
    keys = tuple(p for p in loc if isinstance(p, str))
    where = ".".join((prefix, *keys)) if keys else prefix
    holder, info = _walk(model, keys)
    name = ".".join(keys)
    value = err.get("input")
    item = len(loc) > len(keys) and isinstance(loc[-1], int)
    if typ == "value_error" and isinstance((err.get("ctx") or {}).get("error"), ParamError):
        pe = err["ctx"]["error"]
        return ConfigError(".".join((prefix, *keys, *filter(None, [pe.param]))), pe.what, pe.fix)
    if typ == "extra_forbidden":
        known = list(holder.model_fields) if holder is not None else []
        key = str(keys[-1]) if keys else "?"
        hints = getattr(holder, "unknown_hints", {}) or {}
        hint = f" ({hints[key]})" if key in hints else ""
        note = getattr(holder, "unknown_note", "") or ""
        return ConfigError(
            where,
            f"unknown parameter '{name}' for kind {kind}{did_you_mean(key, known)}{hint}",
            f"parameters of {kind}{' ' + '.'.join(keys[:-1]) if len(keys) > 1 else ''} are: "
            + (", ".join(known) or "none")
            + (f" {note}" if note else ""),
        )
    give = f"give {describe(keys[-1], info)}" if info is not None and keys else None
    if typ == "missing":
        add = f"add {describe(keys[-1], info)}" if info is not None and keys else None
        return ConfigError(where, f"missing required parameter {name} for kind {kind}", add)
    if value is None and (typ in _TYPE_ERRORS or typ == "literal_error"):
        return ConfigError(where, f"{name} must not be null", give)
    if typ in _TYPE_ERRORS:
        wanted = _TYPE_NAMES[_TYPE_ERRORS[typ]]
        if item:
            return ConfigError(where, f"{name} items must be {wanted}, got {value!r}", give)
        return ConfigError(
            where, f"{name} must be {wanted}, got {value!r} ({type(value).__name__})", give
        )
    if typ == "finite_number":
        return ConfigError(where, f"{name} must be finite, got {value!r}", give)
    if typ in _BOUND_TYPES:
        attr, op = _BOUND_TYPES[typ]
        bound = (err.get("ctx") or {}).get(attr)
        shown = f"{float(bound):g}" if isinstance(bound, int | float) else str(bound)
        return ConfigError(where, f"{name} must be {op} {shown}, got {value!r}", give)
    if typ == "literal_error":
        choices = list(_choices(info.annotation) or ()) if info is not None else []
        return ConfigError(
            where,
            f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}"
            + did_you_mean(str(value), [str(c) for c in choices]),
            None,
        )
    if typ in ("too_short", "too_long"):
        return ConfigError(where, f"{name} {err['msg'].removeprefix('List ')}", give)
    msg = err["msg"].removeprefix("Value error, ")
    if not name:
        return ConfigError(where, msg, give)
    return ConfigError(where, f"{name} {msg}" if msg.startswith("must") else f"{name}: {msg}", give)


def to_config_error(
    exc: ValidationError,
    raw: Any,
    model: type[BaseModel],
    *,
    prefix: str = "",
    kind: str | None = None,
) -> ConfigError:
    """The one-line `ConfigError` of a pydantic validation error.

    Parameters
    ----------
    exc : ValidationError
        From ``model.model_validate(raw)``.
    raw : Any
        The validated input (to tell keys from pydantic's union-member tags in locations).
    model : type of BaseModel
        The model validated (for the allowed keys of a did-you-mean and the field descriptions).
    prefix : str
        Key path of `raw` in the pipeline file (``features.sma_10``); "" for the whole file.
    kind : str, optional
        The kind whose parameters `raw` holds: errors then speak of parameters of that kind
        (``unknown parameter 'windw' for kind sma (did you mean 'window'?)``); None: of keys of
        the pipeline file.

    Returns
    -------
    ConfigError
        ``where``: the key path of the first problem (of a kind's parameters: an unknown key
        first, as it is probably a misspelt one).
    """
    errors = exc.errors()
    if kind is not None:
        err = _pick(errors)
        loc = _real_loc(tuple(err["loc"]), raw, err["type"])
        return _param_error(err, loc, prefix, model, kind)
    err = errors[0]
    loc = _real_loc(tuple(err["loc"]), raw, err["type"])
    parts = [str(p) for p in loc]
    where = ".".join([prefix, *parts] if prefix else parts) or "pipeline"
    return _key_error(err, loc, where, model)


def validate_params(
    model: type[BaseModel], where: str, kind: str, spec: Mapping[str, Any]
) -> dict[str, Any]:
    """Check `spec` (without ``kind``) against `model`; return it normalized, in field order.

    Raises
    ------
    ConfigError
        ``where.<param>`` for unknown, missing or bad parameters (see `to_config_error`).
    """
    raw = dict(spec)
    try:
        obj = model.model_validate(raw)
    except ValidationError as exc:
        raise to_config_error(exc, raw, model, prefix=where, kind=kind) from None
    return obj.model_dump()


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


# --- the Param shorthand ------------------------------------------------------------------


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: default of a parameter that must be given
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """One parameter, declared in one line; `params_model` makes a `Params` model of several.

    Parameters
    ----------
    name : str
        Key in the spec.
    type : type
        ``int``, ``float`` (ints accepted), ``str``, ``bool``, ``list`` or ``dict``.
    default : Any
        Value when absent; `REQUIRED` makes the parameter mandatory.
    doc : str
        The field's description.
    min, max : float, optional
        Inclusive bounds for numbers.
    choices : tuple, optional
        Allowed values.
    nullable : bool
        ``None`` is allowed.
    item_type : type, optional
        Type of the items of a ``list`` parameter.
    ref : {"variable", "variables", "feature"}, optional
        The value names features (see `ref_field`).
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
    ref: RefKind | None = None
    ref_kinds: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Whether the parameter has no default."""
        return self.default is REQUIRED

    def field(self) -> tuple[Any, Any]:
        """``(annotation, FieldInfo)`` of this parameter, for `pydantic.create_model`."""
        ann: Any = self.type
        if self.choices is not None:
            ann = Literal[tuple(self.choices)]  # type: ignore[valid-type]
        elif self.type is list and self.item_type is not None:
            ann = list[self.item_type]  # type: ignore[name-defined]
        if self.nullable:
            ann = ann | None
        default = ... if self.required else self.default
        extra: dict[str, Any] | None = None
        if self.ref is not None:
            extra = {REF_KEY: self.ref}
            if self.ref_kinds:
                extra[REF_KINDS_KEY] = list(self.ref_kinds)
        info = Field(
            default,
            description=self.doc or self.name,
            ge=self.min,
            le=self.max,
            json_schema_extra=extra,
        )
        return ann, info


def params_model(name: str, params: Sequence[Param]) -> type[Params]:
    """A `Params` model with one field per `Param`, in the given order."""
    fields = {p.name: p.field() for p in params}
    return create_model(name, __base__=Params, **fields)  # type: ignore[call-overload]


def as_model(name: str, params: type[BaseModel] | Sequence[Param] | None) -> type[BaseModel]:
    """`params` as a model class: a model is kept, a sequence of `Param` becomes one."""
    if params is None:
        return params_model(name, ())
    if isinstance(params, type) and issubclass(params, BaseModel):
        return params
    return params_model(name, tuple(params))
