"""Where a run executes: a LocalCluster sized to this machine, or an existing scheduler.

Sizing is plain arithmetic (`plan_cluster`, no I/O) so it can be tested on any shape of machine;
`make_local_cluster` starts what the plan says; `session_client` keeps one cluster per Python
process so notebooks and repeated `ad.run` calls reuse workers (and their persisted features).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from admf_dask.errors import ConfigError

if TYPE_CHECKING:  # pydantic stays out of worker processes, which import the plugin from here
    from admf_dask.config.models import ClusterConfig

ML = "ML"
GPU = "GPU"


@dataclass(frozen=True)
class WorkerPlan:
    """One worker: its name, threads, memory limit in bytes and resource tags."""

    name: str
    nthreads: int
    memory_limit: int
    resources: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterPlan:
    """What `make_local_cluster` starts."""

    workers: tuple[WorkerPlan, ...]
    host: str
    dashboard_address: str | None

    @property
    def n_workers(self) -> int:
        return len(self.workers)


def detect_machine() -> dict[str, Any]:
    """Cores usable by this process, total memory in bytes and whether CUDA is present."""
    cores, memory = _cores_memory()
    return {"cores": cores, "memory": memory, "gpu": cuda_available()}


def _cores_memory() -> tuple[int, int]:
    import psutil

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return cores, int(psutil.virtual_memory().total)


def cuda_available() -> bool:
    """True when torch sees a CUDA device (import is lazy: torch is slow to import)."""
    if os.name == "posix" and not any(
        os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")
    ):
        return False  # no NVIDIA, ROCm or WSL GPU device: skip importing torch (seconds)
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch or a broken driver means no GPU
        return False


def parse_memory(text: str, where: str = "cluster.memory_limit") -> int:
    """Parse '4GiB', '512MB', '2e9' into bytes."""
    from dask.utils import parse_bytes

    try:
        value = int(parse_bytes(text))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            where, f"cannot read memory size '{text}'", "write e.g. 4GiB or 'auto'"
        ) from exc
    if value <= 0:
        raise ConfigError(where, f"memory size must be positive, got '{text}'", "write e.g. 4GiB")
    return value


def plan_cluster(cfg: ClusterConfig, cores: int, memory: int, gpu: bool = False) -> ClusterPlan:
    """Size a LocalCluster for a machine.

    Auto rules: one single-threaded worker process per core up to 4 cores (numba kernels and the
    per-batch chains want processes, not threads fighting over the GIL); above that, two threads
    per worker. Memory: 90% of RAM shared equally. The first ``ml_workers`` workers carry resource
    ``ML`` (and ``GPU`` when CUDA is present), so ML tasks land only there.
    """
    cores = max(1, int(cores))
    if cfg.threads_per_worker == "auto":
        threads = 1 if cores <= 4 else 2
        if cfg.n_workers != "auto":
            threads = max(1, cores // cfg.n_workers)
    else:
        threads = cfg.threads_per_worker
    n_workers = max(1, cores // threads) if cfg.n_workers == "auto" else cfg.n_workers
    n_ml = cfg.ml_workers
    if n_ml > n_workers:
        if cfg.n_workers == "auto":
            n_ml = n_workers
        else:
            raise ConfigError(
                "cluster.ml_workers",
                f"{n_ml} ML workers asked for but only {n_workers} workers",
                "lower cluster.ml_workers or raise cluster.n_workers",
            )
    if cfg.memory_limit == "auto":
        per_worker = int(memory * 0.9 / n_workers)
    else:
        per_worker = parse_memory(cfg.memory_limit)
    workers = []
    for i in range(n_workers):
        tags: dict[str, float] = {}
        if i < n_ml:
            tags[ML] = 1
            if gpu:
                tags[GPU] = 1
        name = f"ml-{i}" if tags else f"cpu-{i}"
        workers.append(WorkerPlan(name, threads, per_worker, tags))
    dash = cfg.dashboard_address
    if dash is not None and dash.startswith(":"):
        dash = f"{cfg.host}{dash}"  # ":0" would listen on every interface
    return ClusterPlan(tuple(workers), cfg.host, dash)


def make_local_cluster(cfg: ClusterConfig | None = None, plan: ClusterPlan | None = None):
    """Start a `distributed.LocalCluster` following `plan` (default: sized to this machine).

    Returns the cluster; its workers are named after their plan (``ml-0``, ``cpu-1``, ...) and
    run `admf_dask.cluster.plugin.WorkerSetup` (warm before their first task, also after a
    restart).
    """
    cluster, client = _start_local_cluster(cfg, plan)
    client.close()
    return cluster


def _start_local_cluster(cfg: ClusterConfig | None, plan: ClusterPlan | None):
    """`make_local_cluster`'s cluster and the client that set its workers up (still open: the
    session keeps it rather than connecting a second one)."""
    from distributed import Client, LocalCluster

    from admf_dask.cluster.plugin import WARM_MIN_MEMORY, register
    from admf_dask.config.models import ClusterConfig

    cfg = cfg or ClusterConfig()
    _main_without_pseudo_file()
    if plan is None:
        cores, memory = _cores_memory()
        plan = plan_cluster(cfg, cores, memory)
        if any(ML in w.resources for w in plan.workers):
            # only ML workers get a GPU tag: without them, torch is not imported to look for
            # one (seconds, on a machine with a GPU device)
            plan = plan_cluster(cfg, cores, memory, cuda_available())
    if _FORKSERVER_WARM and any(w.memory_limit < WARM_MIN_MEMORY for w in plan.workers):
        # a server that loaded the kernels would start these workers with that memory in use
        _start_forkserver(warm=False)
    cluster = LocalCluster(
        n_workers=0,
        threads_per_worker=1,
        processes=True,
        host=plan.host,
        dashboard_address=plan.dashboard_address,
        silence_logs=40,
    )
    # LocalCluster gives every worker the same options; write one spec per worker instead
    # (SpecCluster's public worker_spec) so only the planned workers carry the ML/GPU tags.
    for w in plan.workers:
        spec = copy.deepcopy(cluster.new_spec)
        spec["options"].update(
            nthreads=w.nthreads,
            memory_limit=w.memory_limit,
            resources=dict(w.resources),
            name=w.name,
        )
        cluster.worker_spec[w.name] = spec
    cluster.scale(len(cluster.worker_spec))  # starts what the specs say
    try:
        _wait_started(cluster, plan.n_workers, timeout=120)
        # registered with the scheduler, not in the worker options: a worker warming before it
        # registers would look lost to the cluster when a restart takes long (lost-worker-timeout)
        client = Client(cluster, set_as_default=False)
        try:
            register(client)  # returns once every worker is warm (a cold numba cache: ~30 s)
        except BaseException:
            client.close()
            raise
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def _main_without_pseudo_file() -> None:
    """Make a script read from standard input (``python - <<EOF``) able to start workers.

    Its ``__main__.__file__`` is ``'<stdin>'``, and multiprocessing (spawn, and the forkserver
    the workers are forked from) runs the main module's file again in every process it starts:
    there is no such file, so no worker started ("Nanny failed to start"). Without the pseudo
    file name they start as they do under ``python -c`` (functions of the script still reach
    the workers: cloudpickle sends them by value). A real file, a module run with ``-m`` or an
    interactive session is left alone.
    """
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    pseudo = isinstance(path, str) and path.startswith("<") and path.endswith(">")
    if pseudo and getattr(main, "__spec__", None) is None and not os.path.exists(path):
        with contextlib.suppress(AttributeError):
            del main.__file__


def start_forkserver(cfg: ClusterConfig | None = None) -> None:
    """Start this process's workers by forking a server that has imported their modules.

    The server (``multiprocessing`` forkserver) is a single-threaded process started now, so it
    imports ``distributed``, numpy, xarray, zarr and the engine (`_server.FORKSERVER_PRELOAD`)
    while this process goes on with other work; each worker is then a fork of it (already
    warm) instead of a fresh interpreter, and exits at once on close. When every worker of `cfg`
    may be warmed at start (`_server.WARM_MIN_MEMORY`; no `cfg`: assumed so) and numba's cache
    holds the kernels, the server also loads them, once for all its workers
    (`_server.FORKSERVER_WARM`). A server already running in the other mode is replaced.
    Process-wide: every later LocalCluster of this process starts its workers so, until
    `stop_forkserver`. The nanny's ``pre-spawn-environ`` (``OMP_NUM_THREADS=1`` ...) is set here
    first, as the nanny would, because forked workers get the server's environment. Call it from
    the thread that starts the cluster (its signal mask is the workers',
    `admf_dask.pipeline.interrupt.start_shielded`).
    """
    _start_forkserver(_warm_at_start(cfg))


def _start_forkserver(warm: bool) -> None:
    global _FORKSERVER_WARM, _METHOD_BEFORE
    import multiprocessing
    import sys
    from multiprocessing import forkserver

    from admf_dask.cluster._server import (
        FORKSERVER_ENVIRON,
        FORKSERVER_EXIT,
        FORKSERVER_PRELOAD,
        FORKSERVER_WARM,
    )

    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows
        return
    _main_without_pseudo_file()  # the server runs the main module's file too
    running = _forkserver_pid() is not None
    if running and _FORKSERVER_WARM is not None and _FORKSERVER_WARM != warm:
        stop_forkserver()  # started by us in the other mode
        running = False
    # dask not imported yet (the CLI, first of all): no dask setting of this process can differ
    # from the server's, so the server reads the nanny's environment itself, first of its
    # preloads (`_server.FORKSERVER_ENVIRON`), and starts without waiting for this process to
    # import dask (a quarter of a second). Else it gets this process's environment, set here.
    early = "dask" not in sys.modules and not running
    if not early:
        _set_pre_spawn_environ()
    preload = [
        *([FORKSERVER_ENVIRON] if early else []),
        *FORKSERVER_PRELOAD,
        *([FORKSERVER_WARM] if warm else []),
        FORKSERVER_EXIT,
    ]
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    forkserver.ensure_running()
    import dask

    if early:
        _set_pre_spawn_environ()  # this process's own, as before (its numpy is not imported yet)
    if not running:
        _FORKSERVER_WARM = warm
    key = "distributed.worker.multiprocessing-method"
    if _METHOD_BEFORE is None:
        _METHOD_BEFORE = (_distributed_config(key),)
    dask.config.set({key: "forkserver"})


#: preload mode of the forkserver `start_forkserver` started (None: none running)
_FORKSERVER_WARM: bool | None = None
#: the workers' start method before `start_forkserver` (put back by `stop_forkserver`)
_METHOD_BEFORE: tuple[Any] | None = None


def _warm_at_start(cfg: ClusterConfig | None) -> bool:
    """Whether every worker `cfg` plans has the memory to be warmed as it starts."""
    from admf_dask.cluster._server import WARM_MIN_MEMORY

    if cfg is None:
        return True
    try:
        cores, memory = _cores_memory()
        plan = plan_cluster(cfg, cores, memory)  # memory limits do not depend on a GPU
    except ConfigError:
        return True  # the cluster start says what is wrong
    return all(w.memory_limit >= WARM_MIN_MEMORY for w in plan.workers)


def _pre_spawn_environ() -> dict[str, Any]:
    """The nanny's ``distributed.nanny.pre-spawn-environ``."""
    return dict(_distributed_config("distributed.nanny.pre-spawn-environ") or {})


def _set_pre_spawn_environ() -> None:
    """`_pre_spawn_environ` into ``os.environ`` (variables already set are kept)."""
    for key, value in _pre_spawn_environ().items():
        os.environ.setdefault(str(key), str(value))


def _distributed_config(key: str) -> Any:
    """``dask.config.get(key)`` of a ``distributed`` setting, also before ``distributed`` is
    imported (seconds; the CLI starts the server before): its defaults from its config file."""
    import sys

    import dask

    if "distributed" in sys.modules:
        return dask.config.get(key, None)
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("distributed")
    if spec is None or spec.origin is None:  # pragma: no cover - distributed is a dependency
        return dask.config.get(key, None)
    with open(os.path.join(os.path.dirname(spec.origin), "distributed.yaml")) as fh:
        defaults = yaml.safe_load(fh)
    return dask.config.get(key, None, config=dask.config.merge(defaults, dask.config.config))


def _forkserver_pid() -> int | None:
    import sys

    mod = sys.modules.get("multiprocessing.forkserver")
    return getattr(getattr(mod, "_forkserver", None), "_forkserver_pid", None)


def _wait_started(cluster: Any, n: int, timeout: float) -> None:
    """`wait_for_workers`, failing at once when a worker could not start (not at the timeout).

    The scheduler of a LocalCluster lives in this process: its worker table is read every few
    milliseconds (``wait_for_workers`` asks the scheduler over a comm every 0.1 s, which a run's
    start waited out: 50 ms on average, docs/BENCHMARKS.md).
    """
    import time

    from distributed.core import Status

    deadline = time.monotonic() + timeout
    while True:
        failed = sorted(str(k) for k, w in cluster.workers.items() if w.status == Status.failed)
        if failed:
            raise RuntimeError(f"dask worker(s) {', '.join(failed)} failed to start (log above)")
        if _running_workers(cluster) >= n:
            return
        if time.monotonic() > deadline:
            cluster.wait_for_workers(n, timeout=0.1)  # its own error: the workers it has
            return
        time.sleep(0.005)


def _running_workers(cluster: Any) -> int:
    """Workers registered and running on `cluster`'s in-process scheduler (read from another
    thread than the scheduler's: a table changed meanwhile is read again next time)."""
    from distributed.core import Status

    try:
        workers = list(cluster.scheduler.workers.values())
    except RuntimeError:  # changed size during the copy
        return 0
    return sum(ws.status == Status.running for ws in workers)


def kernel_cache_cold() -> bool:
    """True when numba's on-disk cache lacks the engine's kernels: a first run compiles them
    (about 30 s) before the portfolio stage; later runs load them in a fraction of a second.

    Looks for the cache index files of the portfolio and metrics kernels that every run uses
    (`admf_dask.portfolio.engine.warm_kernels`), where numba puts them (``NUMBA_CACHE_DIR`` or
    ``__pycache__``); workers on this machine share that cache.
    """
    try:
        from admf_dask.metrics import _kernels as mk
        from admf_dask.portfolio import _kernels as pk
        from admf_dask.research import _kernels as rk
    except Exception:  # noqa: BLE001 - only a hint: never fail a run over it
        return False
    kernels = (pk.step_chunk, pk.carry_last_close, mk.acc_update, mk.acc_finalize, rk.cscv_best)
    for kernel in kernels:
        cache_file = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
        index = getattr(cache_file, "_index_path", None)
        if index is not None and not os.path.exists(index):
            return True
    return False


def describe_cluster(client) -> dict[str, Any]:
    """Scheduler address, dashboard link and one record per worker (run.json ``cluster``)."""
    info = client.scheduler_info(n_workers=-1)
    workers = []
    for addr, w in sorted(info.get("workers", {}).items()):
        workers.append(
            {
                "address": addr,
                "name": str(w.get("name", "")),
                "nthreads": int(w.get("nthreads", 0)),
                "memory_limit": int(w.get("memory_limit") or 0),
                "resources": dict(w.get("resources") or {}),
            }
        )
    return {
        "scheduler": client.scheduler.address,
        "dashboard": client.dashboard_link,
        "workers": workers,
    }


@dataclass
class _Session:
    key: str
    cluster: Any
    client: Any


_LOCK = threading.Lock()
_SESSION: _Session | None = None


def session_client(cfg: ClusterConfig):
    """The client of this process's session cluster, started on first use and then reused.

    With ``cfg.address`` set, connects to that scheduler instead (also reused) and registers
    `admf_dask.cluster.plugin.WorkerSetup` there. A different cluster section closes the old
    session cluster and starts a new one.
    """
    global _SESSION
    from distributed import Client

    key = repr(sorted(cfg.model_dump().items()))
    with _LOCK:
        if _SESSION is not None and _SESSION.key == key and _SESSION.client.status == "running":
            return _SESSION.client
        _close_cluster()
        if cfg.address:
            from admf_dask.cluster.reach import probe_scheduler

            probe_scheduler(cfg.address)  # a refused port at once, not after the 10 s timeout
            try:
                client = Client(cfg.address, timeout="10s", set_as_default=False)
            except OSError as exc:
                raise ConfigError(
                    "cluster.address",
                    f"cannot reach a Dask scheduler at {cfg.address} ({exc})",
                    "start one with 'dask scheduler' or fix the address",
                ) from exc
            from admf_dask.cluster.plugin import register

            register(client)
            cluster = None
        else:
            cluster, client = _start_local_cluster(cfg, None)
        _SESSION = _Session(key, cluster, client)
        return client


def close_session() -> None:
    """Close the session client and its LocalCluster, if any, and the server its workers were
    forked from (`start_forkserver`; it holds this process's stderr open, and a relay of it
    waits for its end)."""
    try:
        _close_cluster()
    finally:
        stop_forkserver()


def stop_forkserver() -> None:
    """Stop the forkserver of `start_forkserver` (a later one starts it again)."""
    global _FORKSERVER_WARM, _METHOD_BEFORE
    import sys
    import threading

    if _METHOD_BEFORE is not None:  # later clusters start their workers as before
        import dask

        if _METHOD_BEFORE[0] is not None:
            dask.config.set({"distributed.worker.multiprocessing-method": _METHOD_BEFORE[0]})
        _METHOD_BEFORE = None
    _FORKSERVER_WARM = None
    mod = sys.modules.get("multiprocessing.forkserver")
    server = getattr(mod, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    # no public API: this is the stdlib's `ForkServer._stop` (its own tests stop it so) without
    # its blocking wait. Closing the "alive" pipe asks the server to stop, but every worker forked
    # from it holds a copy of that pipe (the stdlib passes it to each child), so the server only
    # exits once the last of them has: a cluster of another caller's may outlive this call.
    with server._lock:
        with contextlib.suppress(OSError, TypeError):
            os.close(server._forkserver_alive_fd)
        address = server._forkserver_address
        server._forkserver_alive_fd = server._forkserver_pid = server._forkserver_address = None
    with contextlib.suppress(OSError, TypeError, AttributeError):
        if not mod.util.is_abstract_socket_namespace(address):
            os.unlink(address)
    if not _has_children(pid):
        # no worker depends on it: end it now, rather than after the imports it may still be
        # doing (a run that stopped before its cluster started: bad input, an interrupt)
        import signal

        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    # reaped in the background when it exits (no zombie, no wait here)
    threading.Thread(
        target=_reap, args=(pid,), name="admf-dask-forkserver-reap", daemon=True
    ).start()


def _has_children(pid: int) -> bool:
    """Whether process `pid` has child processes (when that cannot be told: True)."""
    try:
        import psutil

        return bool(psutil.Process(pid).children())
    except Exception:  # noqa: BLE001 - gone, or no /proc: leave it to end by itself
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def _close_cluster() -> None:
    global _SESSION
    s, _SESSION = _SESSION, None
    if s is None:
        return
    try:
        s.client.close()
    finally:
        if s.cluster is not None:
            s.cluster.close()


atexit.register(close_session)

__all__ = [
    "ML",
    "GPU",
    "ClusterPlan",
    "WorkerPlan",
    "close_session",
    "cuda_available",
    "describe_cluster",
    "detect_machine",
    "kernel_cache_cold",
    "make_local_cluster",
    "plan_cluster",
    "session_client",
    "start_forkserver",
]
