"""Research statistics through the CLI: inside ``admf-dask run``, then recomputed with
``admf-dask research RUN_DIR --set research.key=value`` on the finished folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import research_reference as ref
import xarray as xr
import yaml
from _cli import main, one_line_error

from admf_dask.pipeline.research import research
from admf_dask.pipeline.rundir import run_folder_problem

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "admf_dask.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )


def _snapshot(run: Path) -> dict[str, bytes]:
    """Every file of the folder (contents), to prove a refused command wrote nothing."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_run_then_research(tmp_path, small_pipeline):
    small_pipeline["research"] = {"cscv_blocks": 6}
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump(small_pipeline))
    run = tmp_path / "run"
    proc = cli("run", str(pipe), "--out", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]

    manifest = json.loads((run / "run.json").read_text())
    assert "research.json" in manifest["outputs"] and "research" in manifest["timings"]
    first = json.loads((run / "research.json").read_text())
    assert first["pbo"]["combinations"] == 20 and first["walk_forward"] is None
    ds = xr.open_zarr(run / "results.zarr")
    eq = ds["equity"].values
    want_psr, want_dsr = ref.psr_dsr(eq, float(ds.attrs["capital"]))
    np.testing.assert_allclose(ds["psr"].values, want_psr, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ds["dsr"].values, want_dsr, rtol=1e-9, equal_nan=True)
    want = ref.cscv(eq, float(ds.attrs["capital"]), 6)
    np.testing.assert_allclose(first["pbo"]["logits"], want["logits"], rtol=1e-12, atol=1e-12)

    proc = cli(
        "research",
        str(run),
        "--set",
        "research.cscv_blocks=8",
        "--set",
        "research.walk_forward={train: 100, test: 50}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pbo" in proc.stdout and "70 splits" in proc.stdout and "walk-forward" in proc.stdout
    second = json.loads((run / "research.json").read_text())
    assert second["pbo"]["combinations"] == 70
    windows = second["walk_forward"]["windows"]
    assert [(w["oos_start"], w["oos_end"]) for w in windows] == [
        (100, 150),
        (150, 200),
        (200, 250),
        (250, 300),
    ]
    ds = xr.open_zarr(run / "results.zarr")
    wfo = ds["wfo_equity"].values
    assert np.isnan(wfo[:100]).all() and np.isfinite(wfo[100:]).all()
    _, want_wfo = ref.walk_forward(eq, float(ds.attrs["capital"]), 100, 50, False)
    np.testing.assert_allclose(wfo, want_wfo, rtol=1e-12, equal_nan=True)
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["config"]["research"]["cscv_blocks"] == 8
    assert "research.json" in manifest["outputs"]
    assert run_folder_problem(run) is None  # still a run folder that overwrite may replace

    before = _snapshot(run)
    # refusals in-process (`main`): the entry point's exit status is the one of the calls above
    one_line_error(main("research", str(run), "--set", "research.cscv_blocks=7"), "cscv_blocks")
    one_line_error(
        main("research", str(run), "--set", "research.walk_forward={train: 300, test: 5}"),
        "research.walk_forward.train",
    )
    one_line_error(main("research", str(run), "--set", "data.bars=10"), "only research.*")
    assert _snapshot(run) == before

    # a research write killed half-way leaves its temporary store: the next one clears it
    (run / ".results.zarr.research-0dead0").mkdir()
    assert run_folder_problem(run) is not None
    res = research(run, ["research.cscv_blocks=4"])
    assert res.summary["pbo"]["combinations"] == 6 and run_folder_problem(run) is None


def test_research_refuses_what_is_not_a_run(tmp_path):
    one_line_error(main("research", str(tmp_path)), "not a run folder")
    one_line_error(main("research", str(tmp_path / "missing")), "no such folder")
    assert list(tmp_path.iterdir()) == []


def test_bad_research_settings_stop_the_run_before_anything_is_written(tmp_path, small_pipeline):
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump(small_pipeline))
    run = tmp_path / "run"
    one_line_error(
        main("run", str(pipe), "--out", str(run), "--set", "research.cscv_blocks=5"), "even"
    )
    one_line_error(
        main(
            "run",
            str(pipe),
            "--out",
            str(run),
            "--set",
            "research.cscv_blocks=20",
            "--set",
            "data.bars=12",
        ),
        "research.cscv_blocks",
        "only 12 bars",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]
    one_line_error(
        cli("validate", str(pipe), "--set", "research.walk_forward={train: 300, test: 10}"),
        "research.walk_forward.train",
        "300 bars",
    )
