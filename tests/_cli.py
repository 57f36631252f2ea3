"""In-process CLI for tests: ``admf-dask ARGS`` through `admf_dask.cli.main`, and the
one-line error check (README "Errors": exit 2, one ``error: ...`` line on stderr)."""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import subprocess


def main(*args: str) -> subprocess.CompletedProcess:
    """``admf-dask ARGS`` in this process, stdout and stderr captured.

    The CLI sets up the package logger and a SIGTERM handler for its process; both are put back
    afterwards, so the next test sees the test session's own.
    """
    from admf_dask.cli import main as cli_main

    logger = logging.getLogger("admf_dask")
    saved = (logger.handlers[:], logger.propagate, logger.level, signal.getsignal(signal.SIGTERM))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = cli_main(list(args))
    finally:
        logger.handlers[:], logger.propagate, logger.level = saved[:3]
        signal.signal(signal.SIGTERM, saved[3])
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2 and exactly one ``error: ...`` line on stderr holding every needle; the line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
