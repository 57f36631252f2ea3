"""Faults on a real deployment (``dask scheduler`` + ``dask worker`` processes on 127.0.0.1).

* A worker SIGKILLed (nanny and worker: its whole process group) in the middle of the portfolio
  stage: the run still completes, and its equity, cash, metrics and orders equal those of an
  undisturbed run (the portfolio tasks are idempotent: a retried chain recomputes its state from
  the persisted inputs and rewrites the same Zarr regions and Parquet files).
* Workers whose nanny kills them for memory: the CLI ends with one ``error:`` line naming the
  worker memory limit and how to fix it (exit 1: the input was valid), no traceback, no folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from rel_common import base, deployment, write_yaml

ROOT = Path(__file__).resolve().parents[2]


def _cli(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "admf_dask.cli", *args, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        **kw,
    )


def _assert_same_run(a: Path, b: Path) -> None:
    """Equal results.zarr variables, and the same order files with equal tables."""
    import pyarrow.parquet as pq

    ra = xr.open_zarr(a / "results.zarr").load()
    rb = xr.open_zarr(b / "results.zarr").load()
    assert set(ra.data_vars) == set(rb.data_vars)
    for name in ra.data_vars:  # equity, cash, positions and every metric
        np.testing.assert_array_equal(ra[name].values, rb[name].values, err_msg=name)
    files = sorted(f.name for f in (a / "orders.parquet").iterdir())
    assert files == sorted(f.name for f in (b / "orders.parquet").iterdir())
    n = 0
    for name in files:  # one file per batch x time chunk: same names, same rows, same order
        ta, tb = (
            pq.read_table(a / "orders.parquet" / name),
            pq.read_table(b / "orders.parquet" / name),
        )
        assert ta.equals(tb), name
        n += ta.num_rows
    assert n == int(ra["n_orders"].sum()) > 0


def big_pipeline() -> dict:
    """40 symbols x 2520 bars x 1000 portfolios in batches of 50: a portfolio stage of seconds."""
    cfg = base()
    cfg["data"] = {
        "source": "synthetic",
        "symbols": 40,
        "bars": 2520,
        "seed": 11,
        "chunks": {"time": 252},
    }
    cfg["features"] = {
        "sma_10": {"kind": "sma", "window": 10},
        "sma_50": {"kind": "sma", "window": 50},
    }
    cfg["strategies"] = {"trend": {"kind": "ma_crossover", "fast": "sma_10", "slow": "sma_50"}}
    cfg["portfolios"] = {
        "capital": 1_000_000,
        "batch_size": 50,
        "allow_short": True,
        "grid": {
            "stop_loss": [None] + [round(0.01 * i, 2) for i in range(1, 40)],
            "rebalance_band": [round(0.002 * i, 3) for i in range(25)],
        },
    }
    return cfg


def _kill_mid_portfolio(address: str, procs: dict, killed: list, stop: threading.Event) -> None:
    """Wait for portfolio tasks, then SIGKILL (process group) a worker that holds finished
    portfolio states and is running another one: both its results and its work are lost."""
    from distributed import Client

    with Client(address, timeout="30s", set_as_default=False) as c:
        deadline = time.time() + 240
        while not stop.is_set() and time.time() < deadline:
            processing = c.processing()
            held = c.has_what()
            busy = {
                w for w, keys in processing.items() if any("portfolio-step" in str(k) for k in keys)
            }
            done = {w for w, keys in held.items() if any("portfolio-step" in str(k) for k in keys)}
            victims = sorted(busy & done) or (sorted(busy) if time.time() > deadline - 200 else [])
            if victims:
                info = c.scheduler_info(n_workers=-1)["workers"]
                name = str(info[victims[0]]["name"])
                os.killpg(procs[name].pid, signal.SIGKILL)
                killed.append((name, victims[0] in done, sorted(map(str, processing[victims[0]]))))
                return
            time.sleep(0.02)


def test_worker_killed_mid_run_gives_identical_results(tmp_path):
    p = write_yaml(tmp_path / "big.yaml", big_pipeline())
    workers = {f"cpu-{i}": [] for i in range(3)}
    with deployment(tmp_path, workers, memory_limit="2GiB") as (address, procs):
        # the undisturbed reference, from this process (the API; the CLI runs the faulted one)
        from distributed import Client

        import admf_dask as ad

        with Client(address, timeout="30s", set_as_default=False) as c:
            ad.run(p, client=c, out=tmp_path / "calm")

        killed: list = []
        stop = threading.Event()
        killer = threading.Thread(target=_kill_mid_portfolio, args=(address, procs, killed, stop))
        killer.start()
        try:
            hit = _cli(["run", str(p), "--out", str(tmp_path / "hit"), "--address", address])
            out, err = hit.communicate(timeout=300)
        finally:
            stop.set()
            killer.join(30)
        assert killed, "the worker was never killed: the portfolio stage ended too soon"
        name, _held_states, running = killed[0]
        assert any("portfolio-step" in k for k in running), killed  # its running work is lost
        assert procs[name].wait(10) is not None
        assert hit.returncode == 0, err[-3000:]
        _assert_same_run(tmp_path / "calm", tmp_path / "hit")


def test_worker_out_of_memory_is_one_clear_line(tmp_path):
    """A worker whose limit its first real task passes: the nanny kills it each time."""
    p = write_yaml(tmp_path / "p.yaml", base())
    no_pause = {  # the nanny's kill is the only memory action (a paused worker would just wait)
        "DASK_DISTRIBUTED__WORKER__MEMORY__TARGET": "False",
        "DASK_DISTRIBUTED__WORKER__MEMORY__SPILL": "False",
        "DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE": "False",
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
    }
    with deployment(tmp_path, {"small-0": []}, memory_limit="200MiB", env=no_pause) as (address, _):
        proc = _cli(["run", str(p), "--out", str(tmp_path / "out"), "--address", address])
        out, err = proc.communicate(timeout=240)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 1, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    line = lines[0]
    assert "Traceback" not in err and "KilledWorker" not in line
    assert "out of memory" in line and "memory limit (200.00 MiB)" in line, line
    assert "--memory-limit" in line and "portfolios.batch_size" in line, line
    assert not (tmp_path / "out").exists()
    assert not [x for x in tmp_path.iterdir() if ".tmp-" in x.name]


# ----------------------------------------------------------------------------- translation


class FakeClient:
    """What `faults` asks a client: status, scheduler address, events, workers."""

    def __init__(self, events=(), status="running", limit=2**30):
        self.status = status
        self.scheduler = type("S", (), {"address": "tcp://127.0.0.1:8786"})()
        self._events = list(events)
        self._limit = limit

    def get_events(self, topic):
        return tuple(self._events) if topic == "worker-restart-memory" else ()

    def scheduler_info(self, n_workers=-1):
        return {"workers": {"tcp://127.0.0.1:4001": {"memory_limit": self._limit}}}


def _killed(limit=512 * 2**20):
    from distributed.core import Status
    from distributed.scheduler import KilledWorker, WorkerState

    ws = WorkerState(
        address="tcp://127.0.0.1:4001",
        pid=1,
        name="cpu-1",
        nthreads=1,
        memory_limit=limit,
        local_directory="/tmp",
        nanny=None,
        server_id="x",
        status=Status.running,
    )
    return KilledWorker(("portfolio-step-abc-b3-c0", 0), ws, 3)


def test_killed_worker_with_memory_kills_names_the_limit():
    from admf_dask.pipeline.faults import explain

    now = time.time()
    events = [(now, {"worker": "tcp://127.0.0.1:4001", "pid": 7, "rss": 600 * 2**20})] * 2
    fault = explain(_killed(), FakeClient(events), since=now - 5)
    assert fault.where == "worker tcp://127.0.0.1:4001"
    assert "out of memory" in fault.line and "memory limit (512.00 MiB)" in fault.line
    assert (
        "restarted by their nanny 2 time(s)" in fault.line and "failed on 4 workers" in fault.line
    )
    assert "--memory-limit" in fault.line and "\n" not in fault.line
    # events from before the run are another run's
    assert "out of memory" not in explain(_killed(), FakeClient(events), since=now + 5).line


def test_killed_worker_without_memory_kills_points_at_the_logs():
    from admf_dask.pipeline.faults import explain

    line = explain(_killed(), FakeClient()).line
    assert "died while running it" in line and "512.00 MiB" in line and "worker logs" in line


def test_lost_worker_scheduler_and_other_errors():
    from distributed.comm.core import CommClosedError

    from admf_dask.pipeline.faults import ClusterFault, explain, translating

    line = explain(CommClosedError("Stream is closed"), FakeClient()).line
    assert line.startswith("cluster tcp://127.0.0.1:8786: a worker went away")
    line = explain(CommClosedError("Stream is closed"), FakeClient(status="closed")).line
    assert "lost the Dask scheduler" in line
    assert explain(ValueError("a bug"), FakeClient()) is None
    assert explain(OSError("disk"), FakeClient()) is None  # not the cluster's doing
    with pytest.raises(ClusterFault) as info, translating(FakeClient()):
        raise _killed()
    assert isinstance(info.value.__cause__, Exception)
    with pytest.raises(ValueError), translating(FakeClient()):
        raise ValueError("a bug stays a bug")
