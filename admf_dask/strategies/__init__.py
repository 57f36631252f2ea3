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
register_strategy, Param, STRATEGIES
    Add a strategy kind: one registered function ``(data, features, spec, ctx) -> DataArray``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


from admf_dask.features.registry import REQUIRED, Param  # noqa: E402
from admf_dask.strategies import traditional as _traditional  # noqa: E402, F401  (registers)
from admf_dask.strategies.registry import (  # noqa: E402
    STRATEGIES,
    StrategyKind,
    register_strategy,
    validate_strategy_spec,
)
from admf_dask.strategies.stage import (  # noqa: E402
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
import admf_dask.ml  # noqa: E402,F401  (registers xgboost, mlp, lstm)
