"""The strategy-kind protocol and registry, shared by `admf_dask.strategies` and `admf_dask.ml`.

Both packages import this module and neither imports the other (docs/ARCHITECTURE.md): the
traditional kinds (`admf_dask.strategies.traditional`) and the ML kinds (`admf_dask.ml`) each
provide a registration function, and `register_builtin_kinds` calls them, once, on the first
look-up in `STRATEGIES` (or when called, e.g. by the pipeline file loader).

A strategy kind is one function registered with `register_strategy`, its parameters a pydantic
model (`admf_dask.params.Params`) next to it::

    class MomentumParams(Params):
        feature: str = ref_field("variable", description="feature variable, e.g. a roc")
        threshold: float = Field(0.0, ge=0, description="dead band around 0")

    @register_strategy("momentum", params=MomentumParams)
    def momentum(data, features, spec, ctx) -> xr.DataArray: ...

It gets the market data, the (persisted) features, its normalized spec and the
`StrategyContext`, and returns a ``(time, symbol)`` DataArray of signals in [-1, 1] (NaN counts
as 0). A function that takes a keyword ``name`` also gets the strategy's name.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from admf_dask.params import Param, as_model

if TYPE_CHECKING:
    import xarray as xr
    from pydantic import BaseModel


@dataclass
class StrategyContext:
    """Context handed to every strategy function (only non-pure kinds use it)."""

    # distributed client (ML kinds route their tasks with it); None: default scheduler
    client: Any = None
    # run id, copied into trace records
    run_id: str = ""
    # folder of the pipeline file: relative file paths (signal replays) resolve against it
    base_dir: Path | None = None
    # temporary run folder (ML model files go under it)
    run_dir: Path | None = None
    # trace records appended by ML kinds (stage, key, worker, model_id, start, stop, ...)
    trace: list[dict[str, Any]] = field(default_factory=list)
    # human-readable warnings collected during the stage
    warnings: list[str] = field(default_factory=list)
    # treat warnings that can be errors (e.g. replay rows off the bars) as errors
    strict: bool = False
    # per-strategy ML fold metrics: strategy name -> list of fold records
    quality: dict[str, Any] = field(default_factory=dict)
    # on-disk cache (admf_dask.cache.DiskCache) of signals and fold models; None: session only
    cache: Any = None


StrategyFunc = Callable[..., "xr.DataArray"]
ValidateFunc = Callable[[str, dict[str, Any], "list[str] | None"], dict[str, Any]]
# client -> what the kind's signals depend on beyond their spec (keys the disk cache)
SaltFunc = Callable[[Any], dict[str, Any]]
# (strategy name, spec, ctx, bars) -> (why its signal is 0 everywhere, how to fix it)
ExplainFunc = Callable[[str, Mapping[str, Any], StrategyContext, int], tuple[str, str]]


@dataclass(frozen=True)
class StrategyKind:
    """A registered strategy kind."""

    kind: str
    func: StrategyFunc
    # pydantic model of the parameters (admf_dask.params.Params)
    params: type[BaseModel]
    # parameters naming input files whose contents key the signal cache
    files: tuple[str, ...]
    # own validator (name, spec, known feature variables or None) -> normalized spec
    validate: ValidateFunc | None
    # the function takes a keyword `name` (the strategy's name)
    takes_name: bool
    # what the signals depend on beyond the spec (e.g. the ML workers' threads), or None
    cache_salt: SaltFunc | None
    # why a strategy of this kind gave no signal at all (the signal check), or None
    explain_zero: ExplainFunc | None
    doc: str


class KindRegistry(MutableMapping[str, StrategyKind]):
    """kind -> `StrategyKind`; the built-in kinds are registered on the first look-up."""

    def __init__(self) -> None:
        self._kinds: dict[str, StrategyKind] = {}
        self._loaded = False
        self._loading = False
        self._lock = threading.RLock()

    def _load(self) -> None:
        if not self._loaded:
            register_builtin_kinds()

    def __getitem__(self, kind: str) -> StrategyKind:
        self._load()
        return self._kinds[kind]

    def __setitem__(self, kind: str, value: StrategyKind) -> None:
        self._kinds[kind] = value

    def __delitem__(self, kind: str) -> None:
        del self._kinds[kind]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._kinds))

    def __len__(self) -> int:
        self._load()
        return len(self._kinds)

    def __contains__(self, kind: object) -> bool:
        self._load()
        return kind in self._kinds

    def __repr__(self) -> str:
        return f"KindRegistry({sorted(self._kinds)})"


#: kind -> StrategyKind
STRATEGIES = KindRegistry()

#: "module:function" of each built-in provider; the function registers its kinds
BUILTIN_PROVIDERS: tuple[str, ...] = (
    "admf_dask.strategies.traditional:register_traditional_kinds",
    "admf_dask.ml:register_ml_kinds",
)


def register_builtin_kinds() -> list[str]:
    """Register the traditional and the ML strategy kinds (once; later calls do nothing).

    Returns
    -------
    list of str
        The kinds registered by this call.
    """
    reg = STRATEGIES
    # other threads wait here until every kind is in; the providers' own look-ups (same thread,
    # the lock is re-entrant) see the registry as it fills
    with reg._lock:
        if reg._loaded or reg._loading:
            return []
        reg._loading = True
        before = set(reg._kinds)
        try:
            for provider in BUILTIN_PROVIDERS:
                module, _, func = provider.partition(":")
                getattr(importlib.import_module(module), func)()
            reg._loaded = True
        finally:
            reg._loading = False
        return [k for k in reg._kinds if k not in before]


def register_strategy(
    kind: str,
    *,
    params: type[BaseModel] | Sequence[Param] = (),
    files: tuple[str, ...] = (),
    validate: ValidateFunc | None = None,
    cache_salt: SaltFunc | None = None,
    explain_zero: ExplainFunc | None = None,
    replace: bool = False,
) -> Callable[[StrategyFunc], StrategyFunc]:
    """Register a strategy function under ``kind`` (decorator).

    Parameters
    ----------
    kind : str
        Name used in strategy specs.
    params : Params model or sequence of Param
        Parameter model; fields made with `admf_dask.params.ref_field` name features.
    files : tuple of str
        Parameters that name input files (their contents key the signal cache).
    validate : callable, optional
        ``validate(name, spec, feature_names) -> normalized spec`` replacing the model check
        (``feature_names``: the known feature variables, or None when unknown); it raises
        `ConfigError` itself. Fields naming features are still checked against the features.
    cache_salt : callable, optional
        ``client -> dict`` of what the signals depend on beyond the spec (keys the disk cache).
    explain_zero : callable, optional
        ``(name, spec, ctx, n_bars) -> (text, fix)``: why a strategy gave no signal at all.
    replace : bool
        Allow re-registering an existing kind (e.g. on module reload).
    """
    model = as_model(f"{kind}_params", params)

    def deco(func: StrategyFunc) -> StrategyFunc:
        # the raw table: registering never triggers the built-in registration
        if kind in STRATEGIES._kinds and not replace:
            raise ValueError(f"strategy kind {kind!r} is already registered")
        STRATEGIES._kinds[kind] = StrategyKind(
            kind=kind,
            func=func,
            params=model,
            files=tuple(files),
            validate=validate,
            takes_name=_takes_name(func),
            cache_salt=cache_salt,
            explain_zero=explain_zero,
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
