"""Trace records of ML tasks: who ran what, where, when (run.json ``trace``).

Each train or inference task builds its own record on the machine that runs it (so the worker
address and resources are the truth, not the scheduler's plan) and returns it with its result;
the strategy appends them to ``ctx.trace``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STAGES = ("train", "inference")


def worker_identity() -> dict[str, Any]:
    """Address, resources and thread count of the Dask worker running the caller.

    Outside a distributed worker (local threaded scheduler): address ``"local"``, no resources,
    and the process's usable cores as threads.
    """
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
        return {"worker": "local", "resources": {}, "nthreads": cores, "name": "local"}
    return {
        "worker": str(w.address),
        "resources": {str(k): float(v) for k, v in dict(w.state.total_resources).items()},
        "nthreads": int(w.state.nthreads),
        "name": str(w.name),
    }


def trace_record(
    *,
    run_id: str,
    strategy: str,
    stage: str,
    key: str,
    model_id: str,
    feature_hash: str,
    fold: int,
    start: float,
    stop: float,
    identity: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """One trace record (JSON-able). `start`/`stop` are epoch seconds."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    rec = {
        "run_id": run_id,
        "strategy": strategy,
        "stage": stage,
        "key": key,
        "model_id": model_id,
        "feature_hash": feature_hash,
        "fold": int(fold),
        "worker": identity["worker"],
        "worker_name": identity.get("name", ""),
        "resources": dict(identity.get("resources", {})),
        "nthreads": int(identity.get("nthreads", 1)),
        "start": float(start),
        "stop": float(stop),
    }
    rec.update(extra)
    return rec


def write_trace_jsonl(trace: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write trace records one JSON object per line; returns the path.

    Parameters
    ----------
    trace : iterable of dict
        Records as appended to ``ctx.trace``.
    path : path
        Output file (parent folders are created).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for rec in trace:
            fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
    return p


def read_trace_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read records written by `write_trace_jsonl`."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
