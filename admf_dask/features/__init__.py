"""Feature stage: indicators computed once as a shared, persisted dask graph (DESIGN §1, §4).

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

from admf_dask.features import indicators as _indicators  # noqa: F401  (registers the kinds)
from admf_dask.features.graph import (
    FEATURE_CACHE,
    KERNEL_CALLS,
    SessionCache,
    chain_map,
    compute_features,
    feature_stage,
    feature_token,
    halo_map,
)
from admf_dask.features.registry import (
    FIELDS,
    INDICATORS,
    REQUIRED,
    Indicator,
    Param,
    feature_variables,
    register_indicator,
    validate_feature_spec,
    validate_feature_specs,
)

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
