"""Memory guard: estimate a run's memory from its shape before starting it.

Two numbers matter (docs/ARCHITECTURE.md, Dask rules): what stays persisted in the workers
(data, features, signals, spread over the cluster) and the peak of one portfolio task (its time chunk of inputs, the batch
state, the chunk's equity/cash and, worst case, an order for every portfolio·symbol·bar of the
chunk). When one task would not fit in a worker's share of memory, the batch size is shrunk; when
the persisted inputs alone do not fit the cluster, the run is refused with what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from admf_dask.errors import ConfigError

F8 = 8
ORDER_BYTES = 40  # one aligned order record (portfolio.enums.ORDER_DTYPE.itemsize)
STATE_ARRAYS = 7  # q, entry, Q, w_set, u, stopped, traded per (portfolio, symbol)
USABLE = 0.6  # share of a worker's memory limit a run plans to use (dask spills at 0.6-0.7)


@dataclass(frozen=True)
class MemoryPlan:
    """The estimate and the batch size to use."""

    persisted_bytes: int
    task_bytes: int
    batch_size: int
    shrunk: bool
    worker_bytes: int
    n_workers: int

    def describe(self) -> str:
        gib = 2**30
        return (
            f"persisted {self.persisted_bytes / gib:.2f} GiB, per task {self.task_bytes / gib:.2f} GiB"
            f" (batch {self.batch_size}), worker limit {self.worker_bytes / gib:.2f} GiB"
        )


def task_bytes(
    batch: int, n_symbols: int, tchunk: int, n_strategies: int, record_orders: bool
) -> int:
    """Peak bytes of one portfolio task (worst case for orders: every position trades every bar)."""
    inputs = tchunk * n_symbols * (3 + n_strategies) * F8
    state = batch * n_symbols * STATE_ARRAYS * F8 * 2  # carried state and its updated copy
    outputs = 2 * tchunk * batch * F8
    orders = tchunk * batch * n_symbols * ORDER_BYTES * 2 if record_orders else 0  # + Arrow copy
    return inputs + state + outputs + orders


def plan_memory(
    *,
    n_bars: int,
    n_symbols: int,
    n_features: int,
    n_strategies: int,
    n_portfolios: int,
    batch_size: int,
    tchunk: int,
    record_orders: bool,
    worker_memory: list[int],
    threads_per_worker: int = 1,
) -> MemoryPlan:
    """Estimate a run's memory and choose the batch size (shrink, or refuse with ConfigError)."""
    workers = [m for m in worker_memory if m > 0] or [2**62]  # no limit known: nothing to guard
    n_workers = len(workers)
    worker = min(workers)
    persisted = n_bars * n_symbols * (5 + n_features + n_strategies) * F8
    if persisted > USABLE * sum(workers):
        raise ConfigError(
            "data",
            f"data, features and signals need about {persisted / 2**30:.1f} GiB in worker memory "
            f"but the cluster has {sum(workers) / 2**30:.1f} GiB",
            "select fewer symbols or a shorter period (data.symbols, data.start), or use a bigger cluster",
        )
    budget = USABLE * worker / max(1, threads_per_worker) - persisted / n_workers
    batch = max(1, min(batch_size, n_portfolios))
    size = task_bytes(batch, n_symbols, tchunk, n_strategies, record_orders)
    shrunk = False
    while size > budget and batch > 1:
        batch = max(1, batch // 2)
        shrunk = True
        size = task_bytes(batch, n_symbols, tchunk, n_strategies, record_orders)
    if size > budget:
        raise ConfigError(
            "data.chunks.time",
            f"one portfolio task needs about {size / 2**30:.2f} GiB even with 1 portfolio per batch, "
            f"more than a worker can give ({max(budget, 0) / 2**30:.2f} GiB)",
            "use smaller time chunks, output.orders=false, or workers with more memory",
        )
    return MemoryPlan(int(persisted), int(size), batch, shrunk, int(worker), n_workers)
