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
#: imported by the server that workers are forked from
FORKSERVER_PRELOAD = (
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
