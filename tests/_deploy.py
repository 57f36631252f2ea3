"""Loopback deployments for the tests: `dask scheduler` / `dask worker` processes on 127.0.0.1.

Each process runs in a session of its own, so stopping it (`stop_proc`) ends its whole group
(a nanny and its worker, ``unshare`` and what it runs) within a bounded time. Every wait here is
bounded too and fails with the process's log, never with a bare timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def start_proc(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `args` in a session of its own, stdout and stderr to `log`; `env` adds variables."""
    with log.open("w") as out:  # the child has its own copy of the file
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )


def stop_proc(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of `proc` (`sig`, then SIGKILL after 15 s) and reap it."""
    stop_procs([proc], sig)


def stop_procs(procs: list[subprocess.Popen], sig: int = signal.SIGTERM) -> None:
    """`stop_proc` of each of `procs`, all signalled first: they shut down at the same time."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
    deadline = time.monotonic() + 15
    for p in running:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def scheduler_command(sched_file: Path) -> list[str]:
    """`dask scheduler` on a free port of 127.0.0.1 writing its address to `sched_file`."""
    return [
        str(BIN / "dask"),
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--dashboard-address",
        "127.0.0.1:0",
        "--scheduler-file",
        str(sched_file),
    ]


def wait_scheduler(proc: subprocess.Popen, sched_file: Path, log: Path, timeout: float = 60) -> str:
    """The address the scheduler `proc` writes to `sched_file`, once it has written it whole.

    Fails at once (with the log) when the scheduler exits, and after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"the scheduler exited: {log.read_text()[-3000:]}"
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
            # the file can be seen before it is written: read until it parses
            return str(json.loads(sched_file.read_text())["address"])
        assert time.monotonic() < deadline, f"no scheduler after {timeout}s: {log.read_text()}"
        time.sleep(0.1)


def start_scheduler(
    folder: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[subprocess.Popen, str]:
    """Start `scheduler_command` (log and address file in `folder`); return it and its address.

    A scheduler that does not come up is stopped before the failure is raised.
    """
    log = folder / "scheduler.log"
    sched_file = folder / "scheduler.json"
    proc = start_proc(scheduler_command(sched_file), log, env=env)
    try:
        return proc, wait_scheduler(proc, sched_file, log, timeout)
    except BaseException:
        stop_proc(proc)
        raise


def worker_command(address: str, *options: str) -> list[str]:
    """`dask worker` of the scheduler at `address` on 127.0.0.1, with more `options`."""
    return [str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", *options]


def wait_for_workers(address: str, n: int, logs: list[Path], timeout: float = 60) -> None:
    """Return once `n` workers are connected to `address`; else fail with the workers' logs."""
    from distributed import Client

    with Client(address, timeout="30s", set_as_default=False) as c:
        try:
            c.wait_for_workers(n, timeout=timeout)
        except TimeoutError:
            tails = "\n".join(f"{p.name}: {p.read_text()[-2000:]}" for p in logs)
            raise AssertionError(f"{n} workers did not connect in {timeout}s:\n{tails}") from None
