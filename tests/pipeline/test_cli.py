"""The CLI contract: exit 0 / 2 (one error line, no traceback) and an atomic run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "admf_dask.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=env,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def write_pipeline(tmp_path: Path, cfg: dict, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_validate_ok():
    proc = cli("validate", "pipelines/quickstart.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "is valid" in proc.stdout


def test_schema_prints_the_pipeline_schema(tmp_path):
    proc = cli("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert {"data", "features", "strategies", "portfolios"} <= set(schema["properties"])
    assert "feature_sma" in schema["$defs"] and "strategy_xgboost" in schema["$defs"]
    out = tmp_path / "schema.json"
    proc = cli("schema", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == schema
    assert_one_line_error(cli("schema", "--out", str(tmp_path / "no" / "s.json")), "--out")


def test_validate_with_bad_set():
    proc = cli("validate", "pipelines/quickstart.yaml", "--set", "data.bars=-3")
    assert_one_line_error(proc, "data.bars")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["frobnicate"], "invalid choice"),
        (["run"], "required"),
        (["validate", "x.yaml", "--bogus"], "unrecognized"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2(args, needle):
    assert_one_line_error(cli(*args), needle)


def test_missing_pipeline_file(tmp_path):
    assert_one_line_error(cli("run", str(tmp_path / "none.yaml")), "not found")


def test_report_on_non_run_folder(tmp_path):
    assert_one_line_error(cli("report", str(tmp_path)), "run folder")


def test_run_writes_complete_folder(tmp_path, small_pipeline):
    p = write_pipeline(tmp_path, small_pipeline)
    out = tmp_path / "out"
    temp = tmp_path / "temp"  # the process's temp dir: multiprocessing's folder is removed
    temp.mkdir()
    args = ("run", str(p), "--out", str(out), "--set", "portfolios.grid.stop_loss=[null]")
    proc = cli(*args, env={"TMPDIR": str(temp)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(temp.glob("pymp-*")), list(temp.iterdir())
    assert "dashboard: http://127.0.0.1:" in proc.stdout
    assert "…" not in proc.stdout  # the closing table fits the 80 columns of a pipe
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["config"]["portfolios"]["grid"]["stop_loss"] == [None]
    assert set(manifest["timings"]) >= {
        "data",
        "features",
        "signals",
        "portfolio",
        "write",
        "total",
    }
    assert manifest["data"]["fingerprint"]
    assert len(manifest["config_hash"]) == 16
    assert all(w["address"].startswith("tcp://127.0.0.1") for w in manifest["cluster"]["workers"])
    assert (out / "results.zarr").is_dir() and (out / "signals.zarr").is_dir()
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".out.tmp")]
    # never over an existing folder
    again = cli("run", str(p), "--out", str(out))
    assert_one_line_error(again, "already exists")
    assert json.loads((out / "run.json").read_text())["run_id"] == manifest["run_id"]


def test_failing_run_leaves_nothing(tmp_path, small_pipeline):
    # a replay file whose symbols are unknown fails in the signals stage, after data and features
    sig = tmp_path / "sig.csv"
    sig.write_text("time,symbol,signal\n2010-01-04,NOPE,1\n")
    small_pipeline["strategies"]["replay"] = {"kind": "signals", "path": "sig.csv"}
    p = write_pipeline(tmp_path, small_pipeline)
    out = tmp_path / "runs" / "fail"
    proc = cli("run", str(p), "--out", str(out))
    assert_one_line_error(proc, "NOPE")
    assert not out.exists()
    assert not any(x.name.startswith(".fail.tmp") for x in (tmp_path / "runs").iterdir())


def test_output_path_that_is_a_file(tmp_path, small_pipeline):
    p = write_pipeline(tmp_path, small_pipeline)
    f = tmp_path / "afile"
    f.write_text("keep me")
    assert_one_line_error(cli("run", str(p), "--out", str(f)), "is a file")
    assert f.read_text() == "keep me"


def _metrics_frame():
    """Metrics like `RunResult.metrics` of a run with a wide grid and big numbers."""
    import numpy as np
    import pandas as pd

    n = 5
    return pd.DataFrame(
        {
            "total_return": np.array([1.2351, -0.0321, 0.5, np.nan, 12.0]),
            "annual_return": np.array([0.1234, -0.004, 0.05, 0.0, 0.9]),
            "sharpe": np.array([2.3456, -0.1, 1.0, 0.0, 3.0]),
            "max_drawdown": np.array([-0.2351, -0.5, -0.1, 0.0, -0.05]),
            "n_orders": np.array([1234567, 12, 99999, 0, 100000000]),
            "calmar": np.zeros(n),
            "strategy": ["trend", "mine", "trend*0.5+mine*0.5", "trend", "mine"],
            "stop_loss": np.array([np.nan, 0.05, 0.1, np.nan, 0.05]),
            "allow_short": [False, True, False, True, True],
            "max_drawdown_limit": np.array([np.nan, 0.2, 0.3, 0.2, np.nan]),
        },
        index=pd.Index(range(1000, 1000 + n), name="portfolio"),
    )


@pytest.mark.parametrize("width", [80, 120])
def test_summary_table_fits_the_terminal(width):
    from rich.console import Console

    from admf_dask.cli import summary_table

    grid = ["strategy", "stop_loss", "allow_short", "max_drawdown"]
    console = Console(width=width, record=True, color_system=None)
    console.print(summary_table(_metrics_frame(), grid, width))
    text = console.export_text()
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width
    header = next(line for line in text.splitlines() if "sharpe" in line)
    cells = [c.strip() for c in header.strip("┃│ ").split("┃")]
    # the most wanted columns are there at 80 already, with short whole headers
    assert cells[:4] == ["id", "sharpe", "ret", "maxdd"], cells
    shown = {"id", "sharpe", "ret", "maxdd", "strategy", "stop", "short", "ddhalt", "ann", "orders"}
    assert set(cells) <= shown, cells
    assert "123.5%" in text and "2.35" in text and "-23.5%" in text  # formatted numbers
    if width == 120:
        assert cells[4:] == ["strategy", "stop", "short", "ddhalt", "ann", "orders"], cells
        assert "1,234,567" in text and "100,000,000" in text
    else:
        assert "not shown" in text  # what was left out is named


def _numba_cache_but_one(dest: Path, pipeline: Path, client) -> None:
    """``dest``: this session's numba cache of the package's kernels, warm for ``pipeline``, less
    one kernel that every run loads (`admf_dask.cluster.kernel_cache_cold` checks it): a run
    finds the cache cold and compiles that one kernel, not all of them (minutes on a loaded
    machine)."""
    import importlib
    import shutil

    import admf_dask as ad
    from admf_dask.metrics import _kernels as mk

    # the session cluster's workers write this session's cache (loaded if already there)
    ad.run(pipeline, client=client, out=dest.parent / "warm")
    dirs = set()
    for path in (ROOT / "admf_dask").rglob("*.py"):
        if "\nimport numba" in path.read_text() or "\nfrom numba" in path.read_text():
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for obj in vars(importlib.import_module(name)).values():
                cache_path = getattr(getattr(obj, "_cache", None), "_cache_path", None)
                if isinstance(cache_path, str) and os.path.isdir(cache_path):
                    dirs.add(Path(cache_path))
    for d in dirs:
        shutil.copytree(d, dest / d.name)
    index = Path(mk.acc_finalize._cache._cache_file._index_path)
    gone = [f for f in (dest / index.parent.name).iterdir() if f.name.startswith(index.stem + ".")]
    assert len(gone) >= 2, gone  # the index and its compiled data
    for f in gone:
        f.unlink()


@pytest.mark.slow
def test_cold_numba_cache_is_announced_once(tmp_path, small_pipeline, client):
    # a numba cache without one of the kernels: the first run compiles it (a fresh cache: all of
    # them, tens of seconds) and says so once; the next run finds it cached and says nothing
    p = write_pipeline(tmp_path, small_pipeline)
    _numba_cache_but_one(tmp_path / "numba", p, client)
    env = dict(os.environ, PYTHONWARNINGS="ignore", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    note = "compiling kernels, first run only"
    outs = []
    for name in ("first", "second"):
        proc = subprocess.run(
            [sys.executable, "-m", "admf_dask.cli", "run", str(p), "--out", str(tmp_path / name)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(proc.stdout)
    assert outs[0].count(note) == 1, outs[0]
    assert note not in outs[1], outs[1]
