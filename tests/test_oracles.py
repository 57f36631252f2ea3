"""The suite's honesty rules: a missing oracle skips locally and fails under ``CI=true``; no test
skips on this package or a hard dependency; wall-clock timings live in ``benchmarks/``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# platform conditions, not tools: allowed to skip everywhere
PLATFORM_SKIPS = {"pipeline/test_interrupt.py"}


def _run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_needs_oracle.py").write_text(
        "from _oracles import require_module\n\n"
        'nope = require_module("admf_no_such_oracle")\n\n\n'
        "def test_uses_it():\n"
        "    assert nope\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_oracle_skips_locally(tmp_path):
    proc = _run_pytest(tmp_path, None)
    # 5: "no tests ran" (the one module was skipped whole); a real suite exits 0
    assert proc.returncode == 5, proc.stdout[-2000:]
    assert "1 skipped" in proc.stdout and "admf_no_such_oracle" in proc.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_oracle_fails_under_ci(tmp_path, ci):
    proc = _run_pytest(tmp_path, ci)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "CI=true and module admf_no_such_oracle" in proc.stdout
    assert "skipped" not in proc.stdout


def test_no_test_skips_around_the_helper_or_times_itself():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(TESTS).as_posix()
        if rel in ("_oracles.py", "test_oracles.py", "browser.py"):
            continue
        text = path.read_text()
        if re.search(r"importorskip|pytest\.skip\(|mark\.skip\b", text):
            offenders.append(f"{rel}: skips itself (use _oracles.require_module/require_chromium)")
        if "skipif" in text and rel not in PLATFORM_SKIPS:
            offenders.append(f"{rel}: skipif (use _oracles for tools)")
        if "perf_counter" in text:
            offenders.append(f"{rel}: times itself (wall-clock numbers belong in benchmarks/)")
    assert not offenders, offenders
