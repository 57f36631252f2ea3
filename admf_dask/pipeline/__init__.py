"""Pipelines: config → cluster → stages → run folder."""

from __future__ import annotations

from admf_dask._lazy import lazy_getattr

__all__ = ["LogReporter", "Reporter", "RunResult", "new_run_id", "open_run", "run"]

# imported on first use: the CLI imports `admf_dask.pipeline.interrupt` before anything heavy,
# and this package's __init__ must not pull in the runner (and so dask) with it
__getattr__ = lazy_getattr(
    __name__,
    {
        "RunResult": "admf_dask.pipeline.results",
        "open_run": "admf_dask.pipeline.results",
        "LogReporter": "admf_dask.pipeline.runner",
        "Reporter": "admf_dask.pipeline.runner",
        "new_run_id": "admf_dask.pipeline.runner",
        "run": "admf_dask.pipeline.runner",
    },
)
