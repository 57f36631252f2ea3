"""A run against a separately started `dask scheduler` + `dask worker` on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from _deploy import start_proc, start_scheduler, stop_procs, wait_for_workers, worker_command


@pytest.fixture
def deployment(tmp_path):
    """`dask scheduler` and two `dask worker` processes (one tagged ML) on loopback."""
    sched, address = start_scheduler(tmp_path)
    procs = [sched]
    try:
        for name, extra in (("ml-0", ["--resources", "ML=1"]), ("cpu-1", [])):
            options = ["--nthreads", "1", "--nworkers", "1", "--name", name]
            options += ["--memory-limit", "3GiB", *extra]
            procs.append(start_proc(worker_command(address, *options), tmp_path / f"{name}.log"))
        wait_for_workers(address, 2, [tmp_path / "ml-0.log", tmp_path / "cpu-1.log"])
        yield address
    finally:
        stop_procs(procs)


def test_run_on_existing_scheduler(tmp_path, small_pipeline, deployment):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(small_pipeline))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "admf_dask.cli",
            "run",
            str(p),
            "--out",
            str(out),
            "--address",
            deployment,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["cluster"]["scheduler"] == deployment
    names = sorted(w["name"] for w in manifest["cluster"]["workers"])
    assert names == ["cpu-1", "ml-0"]
    # the scheduler outlives the run: the CLI only disconnects from an existing cluster
    from distributed import Client

    def _plugin_ready(dask_worker) -> bool:  # local: sent by value to the workers
        from admf_dask.dasktools import WORKER_PLUGIN

        return bool(getattr(dask_worker.plugins.get(WORKER_PLUGIN), "ready", False))

    with Client(deployment, timeout="10s") as c:
        assert len(c.scheduler_info()["workers"]) == 2
        # the run registered the worker plugin there: every worker is set up, and stays so
        # after a restart (the scheduler hands it to the workers that come back)
        assert set(c.run(_plugin_ready).values()) == {True}
        c.restart()
        assert len(c.run(_plugin_ready)) == 2 and set(c.run(_plugin_ready).values()) == {True}


def test_unreachable_address_is_a_clear_error(tmp_path, small_pipeline):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(small_pipeline))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "admf_dask.cli",
            "run",
            str(p),
            "--out",
            str(tmp_path / "o"),
            "--address",
            "tcp://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("error: cluster.address: cannot reach")
    assert not (tmp_path / "o").exists()
