"""Where ML tasks run: resource-tagged workers on a cluster, or the local threaded scheduler.

docs/ARCHITECTURE.md, Dask rules's pitfall: a ``map_blocks`` built under ``dask.annotate(resources={"ML": 1})`` loses
its tag in the default graph fusion and lands on untagged workers. So the ML tasks here never go
through graph optimization at all: each train and inference task is a ``client.submit(...,
resources=...)`` call, which the scheduler records as a restriction of that very task. Whatever
the global ``optimization.fuse`` setting, and whatever later persists the returned signals
(only untagged assembly tasks remain lazy), training and inference run on ``ML`` workers.

Both runners expose the same three verbs (`blocks`, `submit`, `collect`) so the walk-forward plan
is written once; without a client the same task functions run under ``dask.compute(...,
scheduler="threads", optimize_graph=False)`` and give the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from admf_dask.errors import ConfigError

ML = "ML"
GPU = "GPU"


def cluster_workers(client: Any) -> dict[str, dict[str, Any]]:
    """Scheduler's worker table (address -> info), all workers."""
    return dict(client.scheduler_info(n_workers=-1).get("workers", {}))


def ml_resources(client: Any, where: str = "cluster.ml_workers") -> dict[str, float]:
    """Resources every ML task requests: ``{"ML": 1}``, plus ``{"GPU": 1}`` when ML workers have GPUs.

    A GPU is requested when an ML worker carries the ``GPU`` tag, which
    `admf_dask.cluster.plan_cluster` adds exactly when ``cuda_available()`` on that machine.

    Raises
    ------
    ConfigError
        No worker carries ``ML``: the tasks would wait forever.
    """
    workers = cluster_workers(client)
    ml = [w for w in workers.values() if float((w.get("resources") or {}).get(ML, 0)) >= 1]
    if not ml:
        raise ConfigError(
            where,
            f"ML strategies need a worker with resource '{ML}', and none of the "
            f"{len(workers)} workers has it",
            "set cluster.ml_workers to 1 or more, or start a worker with --resources ML=1",
        )
    res = {ML: 1.0}
    if any(float((w.get("resources") or {}).get(GPU, 0)) >= 1 for w in ml):
        res[GPU] = 1.0
    return res


class Runner(Protocol):
    """What the walk-forward plan needs from an executor."""

    resources: dict[str, float]

    def blocks(self, arr: Any, chunks: Sequence[int]) -> list[Any]: ...

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, ml: bool) -> Any: ...

    def collect(self, small: list[Any], blocks: list[Any]) -> tuple[list[Any], list[Any]]: ...

    def to_array(self, blocks: list[Any], shapes: list[tuple[int, ...]]) -> Any: ...


def _split(arr: np.ndarray, chunks: Sequence[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *chunks])
    return [np.ascontiguousarray(arr[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]


class DistributedRunner:
    """Tasks on a `distributed.Client`: ML tasks pinned by ``resources=``, the rest anywhere.

    Parameters
    ----------
    client : distributed.Client
        The cluster.
    where : str
        Config key named in the error when no worker is tagged ``ML``.
    """

    def __init__(self, client: Any, where: str = "cluster.ml_workers") -> None:
        self.client = client
        self.resources = ml_resources(client, where)

    def blocks(self, arr: Any, chunks: Sequence[int]) -> list[Any]:
        """One future per time chunk of `arr` (persisted dask chunks or scattered numpy)."""
        import dask.array as da
        from dask.core import flatten
        from distributed import futures_of

        if isinstance(arr, da.Array):
            arr = arr.rechunk({0: tuple(chunks), **{i: -1 for i in range(1, arr.ndim)}})
            xp = self.client.persist(arr)
            by_key = {f.key: f for f in futures_of(xp)}
            return [by_key[k] for k in flatten(xp.__dask_keys__())]
        return self.client.scatter(_split(np.asarray(arr), chunks))

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, ml: bool) -> Any:
        """``client.submit``; ML tasks carry the resource restriction on the task itself."""
        return self.client.submit(
            fn, *args, key=key, pure=False, resources=dict(self.resources) if ml else None
        )

    def collect(self, small: list[Any], blocks: list[Any]) -> tuple[list[Any], list[Any]]:
        """Gather the small results; leave the signal blocks on the workers as futures."""
        return list(self.client.gather(small)), blocks

    def to_array(self, blocks: list[Any], shapes: list[tuple[int, ...]]) -> Any:
        import dask.array as da

        parts = [
            da.from_delayed(b, shape, dtype=np.float64)
            for b, shape in zip(blocks, shapes, strict=True)
        ]
        return da.concatenate(parts, axis=0)


class LocalRunner:
    """The same tasks without a cluster: dask's threaded scheduler, no graph optimization."""

    resources: dict[str, float] = {}

    def blocks(self, arr: Any, chunks: Sequence[int]) -> list[Any]:
        import dask.array as da

        if isinstance(arr, da.Array):
            arr = arr.compute(scheduler="threads")
        return _split(np.asarray(arr, dtype=np.float64), chunks)

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, ml: bool) -> Any:
        import dask

        return dask.delayed(fn, pure=False)(*args, dask_key_name=key)

    def collect(self, small: list[Any], blocks: list[Any]) -> tuple[list[Any], list[Any]]:
        import dask

        s, b = dask.compute(small, blocks, scheduler="threads", optimize_graph=False)
        return list(s), list(b)

    def to_array(self, blocks: list[Any], shapes: list[tuple[int, ...]]) -> Any:
        import dask.array as da

        return da.concatenate([da.from_array(b, chunks=b.shape) for b in blocks], axis=0)


def make_runner(client: Any, where: str = "cluster.ml_workers") -> Runner:
    """`DistributedRunner` for a client, `LocalRunner` for ``None``."""
    return LocalRunner() if client is None else DistributedRunner(client, where)
