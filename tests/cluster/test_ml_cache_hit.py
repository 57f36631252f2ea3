"""Two ``admf-dask run`` processes sharing a disk cache, with an ML strategy: the first (a miss)
trains on the ML-tagged workers; the second (a hit) runs no ML task and imports no ML library,
in the command's process or in its workers (``-X importtime`` is passed on to the workers'
server, so its lines name every module any process of the run imported)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ML_LIBRARIES = ("xgboost", "torch", "sklearn")


def _pipeline(p: dict, out: Path, grid: dict) -> dict:
    p["strategies"]["xgb"] = {
        "kind": "xgboost",
        "features": ["sma_5", "vol_20"],
        "horizon": 5,
        "train_window": 150,
        "retrain_every": 150,
        "params": {"n_estimators": 5, "max_depth": 2},
    }
    p["portfolios"]["grid"] = {"strategy": ["trend", "xgb"], **grid}
    p["cluster"] = {"n_workers": 2, "threads_per_worker": 1, "ml_workers": 1}
    p["output"] = {"path": str(out), "report": False}
    return p


def _run(base: dict, tmp_path: Path, name: str, grid: dict, cache: Path) -> tuple[dict, set]:
    """One CLI run under ``-X importtime``: (run.json, top-level modules imported anywhere)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_pipeline(dict(base), tmp_path / name, grid)))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "admf_dask.cli", "run", str(path), "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=dict(os.environ, ADMF_DASK_CACHE=str(cache), PYTHONWARNINGS="ignore"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = set(
        re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +([A-Za-z_]\w*)$", proc.stderr, re.M)
    )
    return json.loads((tmp_path / name / "run.json").read_text()), imported


def test_ml_hit_runs_no_ml_task_and_imports_no_ml_library(tmp_path, small_pipeline):
    cache = tmp_path / "cache"
    first, imported1 = _run(small_pipeline, tmp_path, "first", {"stop_loss": [None, 0.05]}, cache)
    second, imported2 = _run(
        small_pipeline, tmp_path, "second", {"max_drawdown": [0.2, 0.3]}, cache
    )

    assert first["cache"] == {"features": "miss", "signals": "miss"}
    ml_workers = {
        w["address"] for w in first["cluster"]["workers"] if w["resources"].get("ML") == 1
    }
    assert len(ml_workers) == 1 and len(first["cluster"]["workers"]) == 2
    tasks = [t for t in first["trace"] if t["strategy"] == "xgb"]
    assert {t["stage"] for t in tasks} == {"train", "inference"}
    # the contract of the resource tags: every ML task ran on the ML-tagged worker
    assert {t["worker"] for t in tasks} == ml_workers
    assert all(t["run_id"] == first["run_id"] for t in tasks)
    assert "xgboost" in imported1  # the check below can fail

    assert second["cache"] == {"features": "hit", "signals": "hit"}
    assert second["cache_detail"]["signals"] == "disk"
    # its ML trace is the first run's (where its signals were computed): no task of its own
    assert all(t["run_id"] == first["run_id"] for t in second["trace"])
    assert second["signals_from"]["run_id"] == first["run_id"]
    assert not imported2 & set(ML_LIBRARIES), imported2 & set(ML_LIBRARIES)
