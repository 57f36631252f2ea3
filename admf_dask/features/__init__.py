"""Feature stage: indicators computed once as a shared, persisted dask graph (docs/ARCHITECTURE.md).

Public API
----------
validate_feature_spec(name, spec) -> dict
    Check one ``{kind: ..., **params}`` spec; return it normalized.
validate_feature_specs(specs) -> dict
    All specs, plus a check that no two features give the same variable.
compute_features(data, specs) -> xr.Dataset
    Lazy graph: one variable per output, chunked like the data.
feature_token(data, specs) -> str
    Deterministic key of (data fingerprint, chunks, normalized specs).
feature_stage(data, specs, client=None) -> (xr.Dataset, "hit" | "miss")
    Persist once per session.
register_indicator, Param, INDICATORS
    Add an indicator kind: one registered function.
"""

import importlib
from typing import Any

# imported on first use, so that `import admf_dask.features._kernels` (on a worker) loads only
# numpy and numba; any attribute first imports `indicators`, which registers the kinds
_WHERE = {
    "FEATURE_CACHE": "graph",
    "KERNEL_CALLS": "graph",
    "SessionCache": "graph",
    "chain_map": "graph",
    "compute_features": "graph",
    "feature_stage": "graph",
    "feature_token": "graph",
    "halo_map": "graph",
    "FIELDS": "registry",
    "INDICATORS": "registry",
    "REQUIRED": "registry",
    "Indicator": "registry",
    "Param": "registry",
    "feature_variables": "registry",
    "register_indicator": "registry",
    "validate_feature_spec": "registry",
    "validate_feature_specs": "registry",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module(f"{__name__}.indicators")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "FEATURE_CACHE",
    "FIELDS",
    "INDICATORS",
    "KERNEL_CALLS",
    "REQUIRED",
    "Indicator",
    "Param",
    "SessionCache",
    "chain_map",
    "compute_features",
    "feature_stage",
    "feature_token",
    "feature_variables",
    "halo_map",
    "register_indicator",
    "validate_feature_spec",
    "validate_feature_specs",
]
