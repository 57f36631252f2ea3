"""Signal stage: strategies turn features into signals in [-1, 1] (DESIGN §1, §5).

Public API
----------
StrategyContext
    What non-pure kinds need (client, run id, folders, trace, warnings, strict, quality).
validate_strategy_spec(name, spec, feature_specs) -> dict
    Check a ``{kind: ..., **params}`` spec and its feature references; return it normalized.
compute_signals(data, features, specs, ctx) -> xr.DataArray
    Lazy float64 ``(time, symbol, strategy)`` signals, NaN as 0, chunked like the data in time.
signal_stage(data, features, specs, ctx) -> (xr.DataArray, "hit" | "miss")
    Persist once per session, keyed by (feature token, normalized specs, replay file hashes).
register_strategy, STRATEGIES
    Add a strategy kind: one registered function ``(data, features, spec, ctx) -> DataArray``
    and its parameter model (`admf_dask.kinds`). The ML kinds of `admf_dask.ml` are in the same
    registry (registered on its first look-up); this package does not import `admf_dask.ml`.
"""

from __future__ import annotations

from admf_dask.kinds import STRATEGIES, StrategyContext, StrategyKind, register_strategy
from admf_dask.params import REQUIRED, Param
from admf_dask.strategies import traditional as _traditional  # noqa: F401  (its decorators register)
from admf_dask.strategies.registry import validate_strategy_spec
from admf_dask.strategies.stage import (
    SIGNAL_CACHE,
    compute_signals,
    signal_stage,
    signal_token,
    validate_strategy_specs,
)

__all__ = [
    "REQUIRED",
    "SIGNAL_CACHE",
    "STRATEGIES",
    "Param",
    "StrategyContext",
    "StrategyKind",
    "compute_signals",
    "register_strategy",
    "signal_stage",
    "signal_token",
    "validate_strategy_spec",
    "validate_strategy_specs",
]
