"""Bad input to ``admf-dask run`` / ``validate`` is rejected before the arrays are imported or a
cluster starts, and leaves no process behind: the workers' server, started first of all, is
stopped before it forked a worker (`admf_dask.cli._precheck`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from admf_dask import cli

BAD = [
    ("portfolios.capitl=5", "error: portfolios.capitl: unknown key 'capitl'"),
    ("data.bars=abc", "error: data.bars: Input should be a valid integer"),
    ("data.bars", "error: --set: 'data.bars' has no '='"),
]


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (zombies have none)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass  # gone, or not ours to read
    return found


def _imported(stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reports."""
    return {ln.rsplit("|", 1)[1].strip() for ln in stderr.splitlines() if ln.startswith("import ")}


@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_set_fails_before_the_arrays_and_leaves_no_process(tmp_path, command):
    item, line = BAD[0]
    extra = ["--out", str(tmp_path / "o")] if command == "run" else []
    marker = f"ADMF_TEST_PRECHECK={uuid.uuid4().hex}"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "admf_dask.cli", command]
        + ["pipelines/quickstart.yaml", *extra, "--set", item],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, marker.split("=")[0]: marker.split("=")[1]},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith("import ")]
    assert len(errors) == 1 and errors[0].startswith(line), errors
    imported = _imported(proc.stderr)
    assert "admf_dask.config.models" in imported  # the check ran in this process
    assert not {"dask.array", "distributed"} & imported
    assert not (tmp_path / "o").exists()
    # the workers' server (and multiprocessing's resource tracker) end with the command
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_with(marker)


@pytest.mark.parametrize(("item", "line"), BAD)
def test_in_process_bad_set_starts_no_cluster(tmp_path, capsys, item, line):
    import admf_dask.cluster as cluster

    cluster.close_session()
    out = tmp_path / "o"
    assert cli.main(["run", "pipelines/quickstart.yaml", "--out", str(out), "--set", item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err
    assert cluster._SESSION is None  # no session client was made
    assert not out.exists()
