"""SIGTERM / Ctrl-C during a run: exit 130, the cluster shuts down, no partial output remains."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_leaves_nothing(tmp_path, small_pipeline, sig):
    small_pipeline["data"].update(symbols=40, bars=2520, chunks={"time": 252})
    small_pipeline["portfolios"]["grid"] = {
        "stop_loss": [None] + [round(0.001 * i, 3) for i in range(1, 200)]
    }
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(small_pipeline))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "admf_dask.cli", "run", str(p), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        for line in proc.stdout:
            if "features" in line or time.time() > deadline:
                break
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the run should have started its cluster"
        proc.send_signal(sig)
        rc = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130, proc.stderr.read()
    assert "interrupted" in proc.stderr.read()
    assert not out.exists()
    assert not [x for x in tmp_path.iterdir() if ".tmp-" in x.name]
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, alive
