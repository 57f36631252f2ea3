"""The README's existing-cluster recipe, run as written: everything it starts is loopback-only."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import psutil
from _deploy import BIN, start_proc, stop_procs, wait_for_workers, wait_scheduler

README = Path(__file__).resolve().parents[2] / "README.md"


def _recipe() -> list[list[str]]:
    """The ``dask ...`` command lines of the first bash block under "Using an existing cluster"."""
    section = README.read_text().split("## Using an existing Dask cluster", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [ln.strip().removesuffix("&").strip() for ln in block.splitlines()]
    return [shlex.split(ln) for ln in lines if ln.startswith("dask ")]


def _listening(pids: set[int]) -> list[tuple[int, str, int]]:
    return [
        (c.pid, c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]


def _tree(procs: list[subprocess.Popen]) -> set[int]:
    pids = set()
    for p in procs:
        try:
            pids |= {p.pid} | {c.pid for c in psutil.Process(p.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            continue
    return pids


def test_readme_cluster_recipe_listens_on_loopback_only(tmp_path):
    commands = _recipe()
    assert [c[:2] for c in commands] == [
        ["dask", "scheduler"],
        ["dask", "worker"],
        ["dask", "worker"],
    ]
    sched, workers = commands[0], commands[1:]
    # the recipe's fixed ports could be taken on a test machine: let the scheduler pick its own
    # and write its address; every other flag runs as written
    sched_file = tmp_path / "scheduler.json"
    sched = [a if a != "8786" else "0" for a in sched] + ["--scheduler-file", str(sched_file)]
    sched = [re.sub(r":8787$", ":0", a) for a in sched]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_proc([str(BIN / "dask"), *sched[1:]], tmp_path / "scheduler.log"))
        address = wait_scheduler(procs[0], sched_file, tmp_path / "scheduler.log")
        logs = [tmp_path / f"worker{i}.log" for i in range(len(workers))]
        for argv, log in zip(workers, logs, strict=True):
            argv = [a.replace("tcp://127.0.0.1:8786", address) for a in argv]
            procs.append(start_proc([str(BIN / "dask"), *argv[1:]], log))
        wait_for_workers(address, len(workers), logs)
        sockets = _listening(_tree(procs))
        # scheduler + its dashboard, and per worker: nanny, worker, worker dashboard
        assert len(sockets) >= 2 + 3 * len(workers), sockets
        assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets
    finally:
        stop_procs(procs)
