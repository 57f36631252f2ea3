"""Pipelines: config → cluster → stages → run folder."""

from __future__ import annotations

from typing import Any

__all__ = ["LogReporter", "Reporter", "RunResult", "new_run_id", "open_run", "run"]

# imported on first use (PEP 562): the CLI imports `admf_dask.pipeline.interrupt` before anything
# heavy, and this package's __init__ must not pull in the runner (and so dask) with it
_LAZY = {
    "RunResult": "admf_dask.pipeline.results",
    "open_run": "admf_dask.pipeline.results",
    "LogReporter": "admf_dask.pipeline.runner",
    "Reporter": "admf_dask.pipeline.runner",
    "new_run_id": "admf_dask.pipeline.runner",
    "run": "admf_dask.pipeline.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'admf_dask.pipeline' has no attribute {name!r}")
