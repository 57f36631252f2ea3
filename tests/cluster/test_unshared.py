"""Workers that really do not share the client's files: a `dask scheduler` plus two workers in a
private mount namespace (``unshare -m``) with an empty tmpfs over a folder the client sees full.

A run whose local output or input the workers cannot see stops before computing, with one line
(exit 2) and nothing written; one they do see gives the results of a local run.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_existing_scheduler import BIN, _start, _stop

import admf_dask as ad

sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline"))
from test_cli import assert_one_line_error, cli, write_pipeline  # noqa: E402

UNSHARE = shutil.which("unshare")


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative name → bytes), folders as empty names."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"")
        for p in sorted(folder.rglob("*"))
    }


@contextlib.contextmanager
def unshared_cluster(tmp_path: Path, hidden: list[Path]) -> Iterator[str]:
    """A scheduler on 127.0.0.1 and two workers that see an empty tmpfs over each of `hidden`.

    The mounts live in the workers' own mount namespace: they end with its processes, which are
    stopped (process group) on exit.
    """
    if UNSHARE is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    tmp_path.mkdir(exist_ok=True)
    sched_file = tmp_path / "scheduler.json"
    procs = [
        _start(
            [
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
            ],
            tmp_path / "scheduler.log",
        )
    ]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), (tmp_path / "scheduler.log").read_text()
        address = json.loads(sched_file.read_text())["address"]
        mounts = " && ".join(f"mount -t tmpfs tmpfs {shlex.quote(str(h))}" for h in hidden)
        worker = shlex.join(
            [
                str(BIN / "dask"),
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--memory-limit",
                "2GiB",
            ]
        )
        script = f"{mounts} && exec {worker}" if hidden else f"exec {worker}"
        procs.append(_start([UNSHARE, "-m", "sh", "-c", script], tmp_path / "workers.log"))
        from distributed import Client

        with Client(address, timeout="30s") as c:
            try:
                c.wait_for_workers(2, timeout=60)
            except TimeoutError:
                pytest.fail((tmp_path / "workers.log").read_text()[-3000:])

            # the workers really do not see the client's files there
            def _names(path: str) -> list[str]:  # local: sent by value to the workers
                import os

                return sorted(os.listdir(path))

            for h in hidden:
                assert list(c.run(_names, str(h)).values()) == [[], []], h
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.fixture
def pipeline(tmp_path, small_pipeline) -> dict:
    small_pipeline["portfolios"]["grid"] = {"stop_loss": [None, 0.05]}
    return small_pipeline


def test_output_the_workers_cannot_see_stops_before_computing(tmp_path, pipeline):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "keep.txt").write_text("the user's file")
    p = write_pipeline(tmp_path, pipeline)
    before = _tree(tmp_path)
    with unshared_cluster(tmp_path / "logs", [hidden]) as address:
        out = hidden / "runs" / "x"  # runs/ does not exist: the marker goes in hidden/
        proc = cli("run", str(p), "--out", str(out), "--address", address, timeout=120)
    line = assert_one_line_error(
        proc, "--out: workers", "cannot see", str(out), "use a URL all workers can reach"
    )
    assert "127.0.0.1:" in line
    after = {k: v for k, v in _tree(tmp_path).items() if not k.startswith("logs")}
    assert after == before  # no marker left, no run folder, no temporary folder


def _prices(path: Path) -> None:
    rng = np.random.default_rng(5)
    times = pd.bdate_range("2020-01-01", periods=200)
    rows = []
    for s in ("AAA", "BBB", "CCC", "DDD"):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(times))))
        rows.append(
            pd.DataFrame(
                {
                    "time": times,
                    "symbol": s,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": 1e6,
                }
            )
        )
    pd.concat(rows).to_parquet(path, index=False)


def test_input_the_workers_cannot_see_stops_before_computing(tmp_path, pipeline):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _prices(inputs / "prices.parquet")
    pipeline["data"] = {"source": "parquet", "path": "inputs/prices.parquet"}
    p = write_pipeline(tmp_path, pipeline)
    before = _tree(tmp_path)
    with unshared_cluster(tmp_path / "logs", [inputs]) as address:
        proc = cli("run", str(p), "--out", str(tmp_path / "out"), "--address", address)
    assert_one_line_error(
        proc, "data.path: workers", "cannot see", str(inputs / "prices.parquet"), "URL"
    )
    after = {k: v for k, v in _tree(tmp_path).items() if not k.startswith("logs")}
    assert after == before  # no run folder, no temporary folder


def test_paths_the_workers_see_give_the_local_results(tmp_path, pipeline):
    """Workers in their own mount namespace that see the run's folders: the run is that of a
    local cluster (the check refuses nothing it should not)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _prices(inputs / "prices.parquet")
    pipeline["data"] = {"source": "parquet", "path": "inputs/prices.parquet"}
    p = write_pipeline(tmp_path, pipeline)
    with unshared_cluster(tmp_path / "logs", [elsewhere]) as address:
        proc = cli("run", str(p), "--out", str(tmp_path / "remote"), "--address", address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    local = ad.run(str(p), out=tmp_path / "local")
    remote = ad.open_run(tmp_path / "remote")
    assert remote.manifest["cluster"]["scheduler"].startswith("tcp://127.0.0.1:")
    np.testing.assert_array_equal(remote.equity.values, local.equity.values)
    pd.testing.assert_frame_equal(remote.metrics, local.metrics)
    pd.testing.assert_frame_equal(remote.orders, local.orders)
