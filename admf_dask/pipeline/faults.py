"""Distributed failures told as one line: what broke, where, and how to fix it.

A run's tasks are retried by the scheduler when a worker dies (the engine's tasks are idempotent:
the portfolio chain recomputes its state from the persisted inputs, rewrites the same Zarr regions
and the same Parquet file names), so a lost worker costs time, not results. What cannot be
retried ends as a raw ``distributed`` exception and a long traceback; `translating` turns the ones
a user can act on into a `ClusterFault`, whose `line` the CLI prints after ``error:`` (exit 1:
the input was fine, the cluster failed it).

* Workers killed by their nanny for memory (scheduler event topic ``worker-restart-memory``,
  logged since the run started), whatever the exception they surfaced as (``KilledWorker``, or a
  closed connection under a direct call): the line names the worker memory limit and the knobs
  that lower a task's memory.
* ``KilledWorker`` without memory kills: every worker that ran a task died (a crash, a killed
  process): the line names the task and points at the worker logs.
* A closed connection: a worker that went away under a direct call (the scheduler still answers),
  or the scheduler itself lost (the client is no longer running): names the address.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from admf_dask.errors import OneLineError

#: scheduler event topic a nanny logs when it restarts its worker for memory (distributed 2022+)
MEMORY_TOPIC = "worker-restart-memory"

MEMORY_FIX = (
    "give each worker more memory (cluster.memory_limit, or dask worker --memory-limit) or fewer "
    "threads, or make tasks smaller: lower portfolios.batch_size or data.chunks.time, or set "
    "output.orders: false"
)


class ClusterFault(OneLineError):
    """The cluster failed a run that was valid input; `line` is the one-line message.

    Parameters
    ----------
    where : str
        The place: ``cluster`` (with the scheduler address) or ``worker <address>``.
    what : str
        What happened.
    fix : str, optional
        How to fix it.
    """

    exit_code = 1


def _bytes(n: int | float | None) -> str:
    if not n:
        return "no limit"
    from dask.utils import format_bytes

    return format_bytes(int(n))


def _task_name(key: Any) -> str:
    """A task key as a short readable name (``portfolio-step-…-b3-c0``)."""
    if isinstance(key, tuple):
        key = "-".join(str(k) for k in key)
    text = str(key)
    return text if len(text) <= 80 else text[:40] + "…" + text[-30:]


def _memory_events(client: Any, since: float) -> list[dict[str, Any]]:
    """Nanny memory-kill events logged at the scheduler since `since` (epoch seconds)."""
    if client is None:
        return []
    try:
        events = client.get_events(MEMORY_TOPIC)
    except Exception:  # noqa: BLE001 - no scheduler to ask: no evidence either way
        return []
    return [dict(msg) for stamp, msg in events if stamp >= since and isinstance(msg, dict)]


def _limits(client: Any) -> dict[str, int]:
    """Memory limit of each worker the scheduler knows now (address -> bytes)."""
    try:
        info = client.scheduler_info(n_workers=-1)
    except Exception:  # noqa: BLE001
        return {}
    return {a: int(w.get("memory_limit") or 0) for a, w in info.get("workers", {}).items()}


def _out_of_memory(
    exc: BaseException, memory: list[dict[str, Any]], client: Any, limits: dict[str, int]
) -> ClusterFault:
    from dask import config

    ws = getattr(exc, "last_worker", None)
    limit = getattr(ws, "memory_limit", None)
    address = getattr(ws, "address", None) or str(memory[-1].get("worker") or "?")
    if not limit:  # the workers as the run found them, else as they are now
        for known in (limits, _limits(client) if client is not None else {}):
            limit = known.get(address) or min((v for v in known.values() if v), default=None)
            if limit:
                break
    frac = config.get("distributed.worker.memory.terminate", 0.95) or 0.95
    peak = max(int(m.get("rss") or 0) for m in memory)
    where = f"worker {address}"
    task = ""
    if ws is not None:
        task = f"; task '{_task_name(exc.task)}' failed on {exc.allowed_failures + 1} workers"
    return ClusterFault(
        where,
        f"out of memory: workers passed {frac:.0%} of their memory limit ({_bytes(limit)}) and "
        f"were restarted by their nanny {len(memory)} time(s) (largest {_bytes(peak)}){task}",
        MEMORY_FIX,
    )


def explain(
    exc: BaseException, client: Any = None, since: float = 0.0, limits: dict[str, int] | None = None
) -> ClusterFault | None:
    """The `ClusterFault` for a distributed failure, or None when `exc` is something else.

    Parameters
    ----------
    exc : BaseException
        What the run raised.
    client : distributed.Client, optional
        The run's client (asked for the nannies' memory-kill events).
    since : float
        Epoch seconds the run started: older events are another run's.
    limits : dict, optional
        Worker address -> memory limit as the run started (a killed worker may be gone now).
    """
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    if isinstance(exc, ClusterFault):
        return exc
    status = getattr(client, "status", "running")
    lost = isinstance(exc, CommClosedError | FutureCancelledError) or (
        isinstance(exc, OSError | TimeoutError) and status != "running"
    )
    if not (lost or isinstance(exc, KilledWorker)):
        return None
    memory = _memory_events(client, since) if status == "running" else []
    if memory:
        return _out_of_memory(exc, memory, client, limits or {})
    if isinstance(exc, KilledWorker):
        ws = exc.last_worker
        return ClusterFault(
            f"worker {getattr(ws, 'address', '?')}",
            f"task '{_task_name(exc.task)}' failed on {exc.allowed_failures + 1} workers, each "
            f"died while running it (memory limit {_bytes(getattr(ws, 'memory_limit', None))}; "
            "no memory kill was reported, so a crash or a killed process)",
            "read the worker logs; if they were killed for memory, " + MEMORY_FIX,
        )
    first = str(exc).splitlines()[0] if str(exc) else "connection closed"
    address = getattr(getattr(client, "scheduler", None), "address", None) or "?"
    if status == "running":  # the scheduler answers: a worker went away under a direct call
        return ClusterFault(
            f"cluster {address}",
            f"a worker went away during the run ({type(exc).__name__}: {first})",
            "read the worker logs (a crash or a killed process), then run again",
        )
    return ClusterFault(
        f"cluster {address}",
        f"lost the Dask scheduler during the run ({type(exc).__name__}: {first})",
        "check that the scheduler is still running (its log), then run again",
    )


@contextlib.contextmanager
def translating(client: Any) -> Iterator[None]:
    """Re-raise distributed failures inside the block as `ClusterFault` (others unchanged)."""
    since = time.time() - 1.0
    limits = _limits(client) if client is not None else {}
    try:
        yield
    except Exception as exc:
        fault = explain(exc, client, since, limits)
        if fault is None or fault is exc:
            raise
        raise fault from exc


__all__ = ["MEMORY_FIX", "MEMORY_TOPIC", "ClusterFault", "explain", "translating"]
