"""The workers' forkserver (`admf_dask.cluster.start_forkserver`): what it preloads, and its exit.

Importing this module costs nothing (the CLI starts the server before it imports anything
heavy). Imported by the server as it starts, it makes the server exit without the interpreter's
teardown: the server ends once the last worker forked from it has (EOF on its "alive" pipe), and
a normal exit would then tear down every module it preloaded (``distributed``, numpy, xarray,
zarr, numba: seconds on a busy machine) while it still holds the run's stderr, which the CLI
waits for before it exits (`admf_dask.pipeline.interrupt.StderrRelay.close`). The server has
nothing to flush or save. Imported anywhere else, it does nothing.
"""

from __future__ import annotations

import atexit
import os
import sys

#: imported by a worker's setup: what its first feature / signal / portfolio task needs
WARM_IMPORTS = ("numpy", "pandas", "xarray", "zarr", "numcodecs", "dask.array")
#: workers with a smaller memory limit are not warmed at setup (bytes)
WARM_MIN_MEMORY = 1 << 30
#: imported first by the server that workers are forked from: ``dask.array`` without scipy
FORKSERVER_ARRAYS = "admf_dask.cluster._server_arrays"
#: imported first by that server when it was started before this process imported dask: it
#: sets the nanny's environment there, before numpy is imported
FORKSERVER_ENVIRON = "admf_dask.cluster._server_environ"
#: imported by the server that workers are forked from
FORKSERVER_PRELOAD = (
    FORKSERVER_ARRAYS,
    "distributed",
    *WARM_IMPORTS,
    "pyarrow",
    "admf_dask.portfolio",
    "admf_dask.cluster.plugin",
)
#: also imported by that server when its workers may be warmed at start: loads the kernels there
FORKSERVER_WARM = "admf_dask.cluster._server_warm"
#: imported last by that server (this module): it exits without the interpreter's teardown
FORKSERVER_EXIT = "admf_dask.cluster._server"


def in_forkserver_start() -> bool:
    """True while `multiprocessing.forkserver.main` imports its preload modules (this process
    is the forkserver)."""
    tail = os.path.join("multiprocessing", "forkserver.py")
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.endswith(tail):
            return True
        frame = frame.f_back
    return False


#: imported, scipy visible, before ``dask.array`` is (`import_dask_array`): their own optional
#: dependency checks see scipy as it is
_BEFORE_ARRAYS = ("numpy", "pandas", "xarray")


def import_dask_array() -> None:
    """Import ``dask.array`` without the scipy modules it imports only to register them.

    ``dask.array`` imports ``scipy.sparse`` (to accept its matrices as chunks) and
    ``scipy.fftpack`` (for `dask.array.fft.fft_wrap`) whenever scipy is installed: about half a
    CPU-second, a fifth of what a run's client imports before its first task, for modules the
    engine never uses. Called by the processes that run only the engine's own code: the
    ``admf-dask`` command (`admf_dask.cli`) and the workers' server. There, scipy is hidden while
    ``dask.array`` (and only it: numpy, pandas and xarray are imported first) is imported;
    scipy stays importable afterwards (numba, xgboost import it), but dask arrays of
    ``scipy.sparse`` chunks are not recognized in these processes. A process that already
    imported ``dask.array`` or scipy is left as it is; library users (``import admf_dask``)
    never go through here.
    """
    import importlib

    if "dask.array" in sys.modules or "scipy" in sys.modules:
        return
    for name in _BEFORE_ARRAYS:
        importlib.import_module(name)
    _import_hiding("dask.array", "scipy")


def import_numba_arrays() -> None:
    """Import numba's NumPy array implementations without the ``scipy.linalg`` they look for.

    numba loads ``numba.np.arraymath`` with the first kernel it compiles or loads from its
    cache, and that module imports ``scipy.linalg`` (a third of a CPU-second, on the critical
    path of a run's start in the workers' server) only to decide whether the inner products of
    ``np.cov`` / ``np.correlate`` may call BLAS. The engine's kernels use none of them (and no
    ``np.dot`` / ``np.linalg``, which look for BLAS again when compiled): without scipy those
    functions use a plain loop. Called by the workers' server only
    (`admf_dask.cluster._server_warm`); a process that already imported either is left as it is.
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    import numba  # noqa: F401 - first: its own check imports the (light) scipy package

    _import_hiding("numba.np.arraymath", "scipy.linalg")


def _import_hiding(name: str, hidden: str) -> None:
    """Import `name` with ``import <hidden>`` failing; `hidden` is importable again afterwards."""
    import importlib

    sys.modules[hidden] = None  # type: ignore[assignment]  # `import hidden` -> ImportError
    try:
        importlib.import_module(name)
    finally:
        if hidden in sys.modules and sys.modules[hidden] is None:
            del sys.modules[hidden]


def _exit_now(pid: int) -> None:
    if os.getpid() != pid:  # a process forked from the server that did not exec: its own exit
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed stream: nothing left to flush
            pass
    os._exit(0)


if in_forkserver_start():
    atexit.register(_exit_now, os.getpid())
