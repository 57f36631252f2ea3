"""The README's existing-cluster recipe, run as written: everything it starts is loopback-only."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent


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

    def start(argv: list[str], name: str) -> None:
        log = (tmp_path / f"{name}.log").open("w")
        procs.append(
            subprocess.Popen(
                [str(BIN / "dask"), *argv[1:]],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        start(sched, "scheduler")
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for i, argv in enumerate(workers):
            start([a.replace("tcp://127.0.0.1:8786", address) for a in argv], f"worker{i}")
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(len(workers), timeout=60)
        sockets = _listening(_tree(procs))
        # scheduler + its dashboard, and per worker: nanny, worker, worker dashboard
        assert len(sockets) >= 2 + 3 * len(workers), sockets
        assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
