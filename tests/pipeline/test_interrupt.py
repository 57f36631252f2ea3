"""Ctrl-C / SIGTERM at every moment of a CLI run: exit 130 and one stderr line, nothing left.

Each case starts ``admf-dask run`` in its own session (like a terminal's foreground job), waits
for a moment of the run (a stage line on stdout, plus a delay) and sends SIGINT to the whole
process group (what a terminal's Ctrl-C does: the worker processes get it too) or SIGTERM to the
process. The contract (see the CLI's docstring):

* a signal before the run folder is committed: exit 130, stderr exactly one line
  ``error: interrupted; ...``, no run folder, no hidden ``.NAME.tmp-*`` folder;
* a signal after the commit: the run finishes, exit 0, a complete run folder, empty stderr;
* either way: no process of the run's session is left.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# SIGINT to the process group (a terminal's Ctrl-C), SIGTERM to the process, Ctrl-C twice
PG, TERM, TWICE = "ctrl-c", "sigterm", "ctrl-c-twice"

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")

# (moment, extra delay in seconds, how); the moments are stdout lines of the run in order
# ("" = as soon as the CLI handles signals: imports, data, cluster start). A delay must land
# before the commit unless `may_finish` says otherwise: the commit comes ~2.8 s after the start
# and ~0.7 s after "✓ data" on a quiet 2-core machine (features and signals from the disk cache)
CASES = [
    ("", 0.0, PG),
    ("", 0.7, TERM),
    ("", 1.5, PG),
    ("", 2.0, PG),
    ("admf-dask run", 0.0, PG),  # cluster up: data stage
    ("admf-dask run", 0.0, TERM),
    ("✓ data", 0.0, PG),  # features
    ("✓ data", 0.0, TWICE),  # a second Ctrl-C during the cleanup
    ("✓ data", 0.3, TERM),
    ("✓ features", 0.0, PG),  # signals
    ("✓ features", 0.0, TERM),
    ("✓ signals", 0.0, PG),  # portfolio: warm-up, then the batches
    ("✓ signals", 0.0, TWICE),
    ("✓ signals", 0.2, TERM),
    ("✓ signals", 0.5, PG),
    ("✓ portfolio", 0.0, PG),  # write: signals.zarr, run.json, report
    ("✓ portfolio", 0.0, TERM),
    ("✓ write", 0.0, PG),  # right at the commit
    ("✓ write", 0.02, TERM),
    ("✓ write", 0.05, PG),
    ("portfolios →", 0.0, PG),  # committed: the summary
    ("portfolios →", 0.0, TERM),
]


def may_finish(moment: str, delay: float) -> bool:
    """Whether the run may have committed before the signal (then it finishes with exit 0)."""
    return moment in ("✓ write", "portfolios →") or (
        delay > 0 and moment in ("✓ signals", "✓ portfolio")
    )


STAGE_OF = {
    "": "startup",
    "admf-dask run": "data",
    "✓ data": "features",
    "✓ features": "signals",
    "✓ signals": "portfolio",
    "✓ portfolio": "write",
    "✓ write": "commit",
    "portfolios →": "summary",
}


@pytest.fixture
def pipeline(tmp_path, small_pipeline) -> Path:
    """A run of a few seconds: 20 symbols × 1260 bars, 24 portfolios in 3 batches."""
    small_pipeline["data"].update(symbols=20, bars=1260, chunks={"time": 252})
    small_pipeline["portfolios"].update(
        batch_size=8, grid={"stop_loss": [None] + [round(0.01 * i, 2) for i in range(1, 24)]}
    )
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(small_pipeline))
    return p


def _handles_signals(pid: int) -> bool:
    """The CLI installed its handlers: SIGTERM is caught (Python leaves it at the default)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _reader(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def _session_processes(sid: int) -> list[psutil.Process]:
    """Processes of session `sid` still running (zombies waiting for init to reap them are gone)."""
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (OSError, psutil.Error):
            pass
    return out


@pytest.mark.parametrize(
    "moment, delay, how", CASES, ids=[f"{STAGE_OF[m]}+{d}s-{h}" for m, d, h in CASES]
)
def test_interrupt_at_any_moment(tmp_path, pipeline, moment, delay, how):
    out = tmp_path / "runs" / "out"
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "admf_dask.cli", "run", str(pipeline), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    stdout: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not _handles_signals(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, "CLI did not start"
            time.sleep(0.01)
        while moment:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"run ended before {moment!r}: {''.join(stdout)}"
            stdout.append(line)
            if moment in line:
                break
        time.sleep(delay)
        if how == TERM:
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        if how == TWICE:
            time.sleep(0.3)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=90)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # nothing of the run's session survives it (workers, nannies, resource tracker)
    alive = _session_processes(proc.pid)
    deadline = time.monotonic() + 20
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = _session_processes(proc.pid)
    for p in alive:
        p.kill()
    assert not alive, alive

    leftovers = [x.name for x in out.parent.iterdir()] if out.parent.exists() else []
    assert not [n for n in leftovers if n.startswith(".")], leftovers
    if rc == 130:
        assert err.endswith("\n") and len(err.splitlines()) == 1, err
        assert err.startswith("error: interrupted; "), err
        assert not out.exists(), "an interrupted run left its folder"
    else:
        # only a signal after the commit may let the run finish
        assert rc == 0 and may_finish(moment, delay), (rc, err)
        assert err == "", err
        assert (out / "run.json").is_file() and (out / "results.zarr").is_dir()
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)
