"""Signal stage: strategies turn features into signals in [-1, 1] (docs/ARCHITECTURE.md).

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

import importlib
from typing import Any

# imported on first use, so that `import admf_dask.strategies._kernels` (on a worker) loads only
# numpy and numba; any attribute first imports `traditional`, whose decorators register the kinds
_WHERE = {
    "STRATEGIES": "admf_dask.kinds",
    "StrategyContext": "admf_dask.kinds",
    "StrategyKind": "admf_dask.kinds",
    "register_strategy": "admf_dask.kinds",
    "REQUIRED": "admf_dask.params",
    "Param": "admf_dask.params",
    "validate_strategy_spec": "admf_dask.strategies.registry",
    "SIGNAL_CACHE": "admf_dask.strategies.stage",
    "compute_signals": "admf_dask.strategies.stage",
    "signal_stage": "admf_dask.strategies.stage",
    "signal_token": "admf_dask.strategies.stage",
    "validate_strategy_specs": "admf_dask.strategies.stage",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module(f"{__name__}.traditional")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


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
