"""The worker plugin every admf-dask cluster runs: workers that come up (or back) ready.

`register` hands `WorkerSetup` to the scheduler (`admf_dask.cluster.make_local_cluster` does,
and `admf_dask.cluster.session_client` on an existing scheduler, ``cluster.address``): it runs
on every worker there, and the scheduler gives it to each worker that connects later, so a
worker restarted by its nanny or by ``client.restart`` runs it again, once registered and
before it takes a task (a worker only reads the scheduler's messages after its plugins are set
up). Its `setup`

* imports what the first tasks use and loads the engine's numba kernels from numba's cache (a
  cold cache compiles them once, about 30 s), on a thread of its own while the worker's event
  loop keeps answering the scheduler, and synchronously with respect to tasks: none runs until
  it is done, so no task races these imports (docs/ARCHITECTURE.md, Cluster);
* gives torch the worker's thread count on ML-tagged workers (without importing torch there: a
  run that only reads cached signals never needs it);
* owns the worker's fold-model cache (`models`, see `admf_dask.ml.tasks`), emptied on teardown.

Warming is an optimization: whatever fails in it is logged, never fatal to the worker.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from admf_dask.cluster._server import (  # noqa: F401 - the plugin's settings, named here too
    FORKSERVER_EXIT,
    FORKSERVER_PRELOAD,
    FORKSERVER_WARM,
    WARM_IMPORTS,
    WARM_MIN_MEMORY,
)
from admf_dask.dasktools import WORKER_PLUGIN
from admf_dask.dasktools.lru import LRU

log = logging.getLogger("admf_dask")

#: fold models a worker keeps deserialized (the inference tasks of one fold arrive together)
FOLD_MODELS = 8
ML_TAG = "ML"


def _distributed_plugin_base() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    return WorkerPlugin


def warm_worker() -> None:
    """Import what tasks use and load the engine's kernels (`admf_dask.portfolio.warm_kernels`)."""
    import importlib

    for name in WARM_IMPORTS:
        importlib.import_module(name)
    from admf_dask.portfolio import warm_kernels

    warm_kernels()


def set_torch_threads(nthreads: int) -> None:
    """Torch's intra-op threads = the worker's threads (the nanny sets OMP_NUM_THREADS=1).

    Before torch is imported, through the environment it reads at import; after, directly.
    """
    n = str(max(1, int(nthreads)))
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = n
    elif torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))


class WorkerSetup(_distributed_plugin_base()):
    """`distributed.WorkerPlugin` warming a worker and holding its fold-model cache.

    Parameters
    ----------
    warm : bool
        Import and load the kernels at setup (tests of the plugin itself may skip it).

    Attributes
    ----------
    models : LRU
        Fold models deserialized on this worker, keyed by model id (`admf_dask.ml.tasks`).
    ready : bool
        Setup finished (with or without a warning).
    """

    name = WORKER_PLUGIN
    idempotent = True  # registering again (a second run on the same scheduler) is a no-op

    def __init__(self, warm: bool = True) -> None:
        self.warm = warm
        self.models = LRU(FOLD_MODELS, serialize_builds=True)
        self.ready = False

    async def setup(self, worker: Any) -> None:
        import asyncio

        resources = dict(getattr(worker.state, "total_resources", {}) or {})
        if resources.get(ML_TAG):
            set_torch_threads(worker.state.nthreads)
        limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        if self.warm and limit is not None and limit < WARM_MIN_MEMORY:
            # the imports alone take a few hundred MB: a small worker loads them in its first
            # task, where running out of memory is the run's one clear error, not a restart loop
            log.info("worker %s: %d bytes of memory, not warmed at start", worker.name, limit)
        elif self.warm:
            try:
                # off the event loop (a cold compile would starve the worker's connections);
                # awaited, so the worker starts no task before it is done
                await asyncio.get_running_loop().run_in_executor(None, warm_worker)
            except Exception as exc:  # noqa: BLE001 - an optimization must not kill a worker
                log.warning("worker %s: warm-up failed (%s)", worker.name, exc)
        self.ready = True

    def teardown(self, worker: Any) -> None:
        self.models.clear()

    def __getstate__(self) -> dict[str, Any]:  # sent to workers: the cache stays behind
        return {"warm": self.warm}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)


def register(client: Any) -> None:
    """Register `WorkerSetup` with the scheduler of `client` (no-op when it already has it).

    Warming is an optimization: a worker lost while it sets up (it is restarted, and set up
    again) must not fail the run, which then says what went wrong in its tasks."""
    try:
        client.register_plugin(WorkerSetup(), name=WORKER_PLUGIN)
    except Exception as exc:  # noqa: BLE001
        log.debug("worker setup not registered on every worker (%s)", exc)
