"""`WorkerSetup`: every worker of a `make_local_cluster` cluster is warm before its first task,
also after ``client.restart`` and after the nanny replaces a killed worker."""

from __future__ import annotations

import os
import signal
import time

import pytest

from admf_dask.dasktools import WORKER_PLUGIN

#: seconds a restart may take (distributed's default: 4 x the connect timeout, 120 s)
RESTART_TIMEOUT = 300


def _state(dask_worker) -> dict:
    import sys

    plugin = dask_worker.plugins.get(WORKER_PLUGIN)
    kernels = sys.modules.get("admf_dask.portfolio._kernels")
    loaded = [
        name
        for name, obj in vars(kernels or object()).items()
        if getattr(obj, "signatures", None)  # numba dispatchers compiled or loaded from cache
    ]
    return {
        "plugin": type(plugin).__name__,
        "ready": getattr(plugin, "ready", False),
        "pid": os.getpid(),
        "zarr": "zarr" in sys.modules,
        "kernels": loaded,
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def _owns_models() -> bool:
    """In a task: the fold-model cache `admf_dask.ml.tasks` uses is the worker plugin's."""
    from distributed import get_worker

    from admf_dask.ml.tasks import fold_models

    return fold_models() is get_worker().plugins[WORKER_PLUGIN].models


def _by_name(client, task_timeout: float = 60) -> dict:
    """Each worker's `_state` by name, read after a task of ours ran there (`_owns_models`): a
    worker takes its first task only once set up, so this reads what that task found."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    names = {addr: w["name"] for addr, w in info.items()}
    client.run(os.getpid, workers=list(names))  # a worker gone fails here, before a task waits
    owns = {}
    for addr, name in names.items():
        fut = client.submit(_owns_models, pure=False, workers=[addr], allow_other_workers=False)
        try:
            owns[name] = fut.result(timeout=task_timeout)
        finally:
            fut.cancel()  # pinned to a worker that is gone, it would wait for it forever
    out = {names[a]: s for a, s in client.run(_state, workers=list(names)).items()}
    for name, s in out.items():
        s["owns_models"] = owns[name]
    return out


def _settled(client, done, timeout: float = 240) -> dict:
    """`_by_name` once ``done(states)`` holds. The workers a restart or a nanny brings back may
    still be replaced while they start on a loaded machine (one slow to stop is killed and its
    nanny starts another), so a read that meets a worker gone meanwhile is read again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            states = _by_name(client, task_timeout=15)  # a worker just killed: asked again
        except (KeyError, OSError) as exc:  # TimeoutError is an OSError: a worker gone meanwhile
            states = {"error": repr(exc)}
        else:
            if done(states):
                return states
        assert time.monotonic() < deadline, f"the workers did not settle in {timeout}s: {states}"
        time.sleep(0.5)


def _check_ready(states: dict) -> None:
    assert set(states) == {"ml-0", "cpu-1"}
    for name, s in states.items():
        assert s["plugin"] == "WorkerSetup" and s["ready"], (name, s)
        assert s["zarr"] and s["kernels"], (name, s)  # warmed, before any task of ours
        assert s["owns_models"], (name, s)
    assert states["ml-0"]["omp"] == "2"  # torch threads = the ML worker's threads


@pytest.fixture(scope="module")
def plugin_client():
    from distributed import Client

    from admf_dask.cluster import make_local_cluster
    from admf_dask.config.models import ClusterConfig
    from admf_dask.portfolio import warm_kernels

    # numba's cache filled here first (a cold or stale one is compiled once, in this process):
    # the workers' setups then load the kernels from it, also under the timeout of a restart,
    # instead of each compiling them there (minutes on a loaded machine)
    warm_kernels()
    cluster = make_local_cluster(
        ClusterConfig(
            n_workers=2,
            threads_per_worker=2,
            ml_workers=1,
            memory_limit="2GiB",
            dashboard_address=None,
        )
    )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def test_workers_start_warm_and_own_the_fold_model_cache(plugin_client):
    _check_ready(_by_name(plugin_client))


def test_restarted_workers_come_back_warm(plugin_client):
    before = {n: s["pid"] for n, s in _by_name(plugin_client).items()}
    # the workers count as back once set up again: the timeout covers their warm-up too
    plugin_client.restart(timeout=RESTART_TIMEOUT)
    after = _settled(plugin_client, lambda s: set(s) == set(before))
    assert all(after[n]["pid"] != before[n] for n in before)
    _check_ready(after)


def test_a_killed_worker_is_replaced_warm(plugin_client):
    states = _by_name(plugin_client)
    old = states["cpu-1"]["pid"]
    os.kill(old, signal.SIGKILL)

    def replaced(s: dict) -> bool:
        return set(s) == {"ml-0", "cpu-1"} and s["cpu-1"]["pid"] != old

    _check_ready(_settled(plugin_client, replaced))
