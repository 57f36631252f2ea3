"""Pipelines: config → cluster → stages → run folder."""

from admf_dask.pipeline.results import RunResult, open_run
from admf_dask.pipeline.runner import LogReporter, Reporter, new_run_id, run

__all__ = ["LogReporter", "Reporter", "RunResult", "new_run_id", "open_run", "run"]
