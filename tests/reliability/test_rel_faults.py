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
import pandas as pd
import pytest
import xarray as xr
from rel_common import base, deployment, write_yaml

ROOT = Path(__file__).resolve().parents[2]


def _cli(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "admf_dask.cli", *args, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, **kw,
    )


def _results(out: Path) -> tuple[xr.Dataset, pd.DataFrame]:
    import admf_dask as ad

    res = ad.open_run(out)
    return res.results.load(), res.orders


def _assert_same_run(a: Path, b: Path) -> None:
    ra, oa = _results(a)
    rb, ob = _results(b)
    for name in ra.data_vars:  # equity, cash, positions and every metric
        np.testing.assert_array_equal(ra[name].values, rb[name].values, err_msg=name)
    pd.testing.assert_frame_equal(oa, ob)
    assert len(oa) > 0


def big_pipeline() -> dict:
    """40 symbols x 2520 bars x 1000 portfolios in batches of 50: a portfolio stage of seconds."""
    cfg = base()
    cfg["data"] = {"source": "synthetic", "symbols": 40, "bars": 2520, "seed": 11,
                   "chunks": {"time": 252}}
    cfg["features"] = {"sma_10": {"kind": "sma", "window": 10}, "sma_50": {"kind": "sma", "window": 50}}
    cfg["strategies"] = {"trend": {"kind": "ma_crossover", "fast": "sma_10", "slow": "sma_50"}}
    cfg["portfolios"] = {
        "capital": 1_000_000, "batch_size": 50, "allow_short": True,
        "grid": {"stop_loss": [None] + [round(0.01 * i, 2) for i in range(1, 40)],
                 "rebalance_band": [round(0.002 * i, 3) for i in range(25)]},
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
            busy = {w for w, keys in processing.items() if any("portfolio-step" in str(k) for k in keys)}
            done = {w for w, keys in held.items() if any("portfolio-step" in str(k) for k in keys)}
            victims = sorted(busy & done) or (sorted(busy) if time.time() > deadline - 200 else [])
            if victims:
                info = c.scheduler_info(n_workers=-1)["workers"]
                name = str(info[victims[0]]["name"])
                os.killpg(procs[name].pid, signal.SIGKILL)
                killed.append((name, sorted(map(str, processing[victims[0]]))))
                return
            time.sleep(0.02)


def test_worker_killed_mid_run_gives_identical_results(tmp_path):
    p = write_yaml(tmp_path / "big.yaml", big_pipeline())
    workers = {f"cpu-{i}": [] for i in range(3)}
    with deployment(tmp_path, workers, memory_limit="2GiB") as (address, procs):
        calm = _cli(["run", str(p), "--out", str(tmp_path / "calm"), "--address", address])
        out, err = calm.communicate(timeout=300)
        assert calm.returncode == 0, err[-3000:]

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
        assert procs[killed[0][0]].wait(10) is not None
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
