"""The disk cache in real runs: CLI processes sharing it, session precedence, corrupt entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

import admf_dask as ad
from admf_dask.features import FEATURE_CACHE
from admf_dask.strategies import SIGNAL_CACHE

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "admf_dask.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=dict(os.environ, PYTHONWARNINGS="ignore", **env),
    )


def _equity(run_dir: Path) -> np.ndarray:
    with xr.open_zarr(run_dir / "results.zarr") as ds:
        return ds["equity"].values


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _fresh_session() -> None:
    """What a new process starts with: empty session caches."""
    FEATURE_CACHE.clear()
    SIGNAL_CACHE.clear()


def test_second_cli_run_reads_the_disk_cache(tmp_path, small_pipeline):
    cache = tmp_path / "cache"
    env = {"ADMF_DASK_CACHE": str(cache)}
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(small_pipeline))
    first = cli("run", str(p), "--out", str(tmp_path / "a"), "--quiet", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # other portfolio settings (batching only, so the equity must not change)
    second = cli(
        "run", str(p), "--out", str(tmp_path / "b"), "--quiet",
        "--set", "portfolios.batch_size=3", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    m1, m2 = _manifest(tmp_path / "a"), _manifest(tmp_path / "b")
    assert m1["cache"] == {"features": "miss", "signals": "miss"}
    assert m2["cache"] == {"features": "hit", "signals": "hit"}
    assert m2["cache_detail"]["features"] == m2["cache_detail"]["signals"] == "disk"
    assert m2["cache_detail"]["dir"] == str(cache)
    assert m2["signals_from"]["run_id"] == m1["run_id"]
    assert _equity(tmp_path / "a").tobytes() == _equity(tmp_path / "b").tobytes()

    info = cli("cache", "info", env=env, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert f"cache: {cache}" in info.stdout
    assert "entries: 2 " in info.stdout
    lines = {ln.split()[0]: ln.split()[1] for ln in info.stdout.splitlines()[2:]}
    assert lines == {"features": "1", "signals": "1", "models": "0", "market": "0"}

    (cache / "README.mine").write_text("not the cache's")
    (cache / "features" / "keep").mkdir()
    cleared = cli("cache", "clear", env=env, cwd=tmp_path)
    assert cleared.returncode == 0 and "removed 2 entries" in cleared.stdout
    assert (cache / "README.mine").read_text() == "not the cache's"
    assert (cache / "features" / "keep").is_dir()
    assert "entries: 0 " in cli("cache", "info", "--dir", str(cache), env={}, cwd=tmp_path).stdout


def test_session_first_then_disk(tmp_path, small_pipeline, client):
    _fresh_session()
    small_pipeline["cache"] = {"dir": str(tmp_path / "cache")}
    a = ad.run(small_pipeline, client=client, out=tmp_path / "a")
    assert a.manifest["cache"] == {"features": "miss", "signals": "miss"}
    assert a.manifest["cache_detail"]["written"] == {"features": 1, "signals": 1}
    b = ad.run(small_pipeline, client=client, out=tmp_path / "b")
    assert b.manifest["cache_detail"]["features"] == "session"  # in-session cache first
    _fresh_session()
    c = ad.run(small_pipeline, client=client, out=tmp_path / "c")
    assert c.manifest["cache"] == {"features": "hit", "signals": "hit"}
    assert c.manifest["cache_detail"]["features"] == "disk"
    np.testing.assert_array_equal(c.equity.values, a.equity.values)
    assert c.features.attrs == a.features.attrs
    assert list(c.features.data_vars) == list(a.features.data_vars)
    assert c.features["sma_5"].attrs == a.features["sma_5"].attrs


def test_features_from_disk_feed_vol_target_sizing(tmp_path, small_pipeline, client):
    """Disk features are read lazily, by the tasks that need them: here the sizing's vol."""
    _fresh_session()
    small_pipeline["cache"] = {"dir": str(tmp_path / "cache")}
    small_pipeline["portfolios"]["grid"]["sizing"] = ["fixed", "vol_target"]
    a = ad.run(small_pipeline, client=client, out=tmp_path / "a")
    _fresh_session()
    b = ad.run(small_pipeline, client=client, out=tmp_path / "b")
    assert b.manifest["cache_detail"]["features"] == "disk"
    np.testing.assert_array_equal(b.equity.values, a.equity.values)
    with client.as_current():  # a's features live on the cluster's workers
        np.testing.assert_array_equal(b.features["vol_20"].values, a.features["vol_20"].values)


def test_disabled_cache_writes_nothing(tmp_path, small_pipeline, client):
    _fresh_session()
    small_pipeline["cache"] = {"enabled": False, "dir": str(tmp_path / "cache")}
    r = ad.run(small_pipeline, client=client, out=tmp_path / "a")
    assert r.manifest["cache"] == {"features": "miss", "signals": "miss"}
    assert not (tmp_path / "cache").exists()
    assert not Path(os.environ["ADMF_DASK_CACHE"]).exists()


@pytest.mark.parametrize("damage", ["truncate", "scramble"])
def test_corrupt_feature_entry_is_a_miss_with_a_warning(tmp_path, small_pipeline, client, damage):
    _fresh_session()
    small_pipeline["cache"] = {"dir": str(tmp_path / "cache")}
    a = ad.run(small_pipeline, client=client, out=tmp_path / "a")
    [entry] = (tmp_path / "cache" / "features").iterdir()
    chunk = sorted((entry / "data.zarr" / "sma_20" / "c").rglob("*"))[-1]
    raw = chunk.read_bytes()
    # truncated: the manifest's sizes catch it; scrambled (same size): its checksum does
    chunk.write_bytes(raw[:5] if damage == "truncate" else bytes(255 - b for b in raw))
    _fresh_session()
    b = ad.run(small_pipeline, client=client, out=tmp_path / "b")
    assert b.manifest["cache"]["features"] == "miss"
    assert any("corrupt" in w and "features" in w for w in b.manifest["warnings"])
    np.testing.assert_array_equal(b.equity.values, a.equity.values)
    # it was rewritten: the next process hits again
    _fresh_session()
    c = ad.run(small_pipeline, client=client, out=tmp_path / "c")
    assert c.manifest["cache"]["features"] == "hit" and not c.manifest["warnings"]


def test_feature_stage_reads_disk_with_a_plain_client(tmp_path, client):
    """The stage API, outside any run (no current client): a fresh session hits the disk."""
    from admf_dask.cache import DiskCache
    from admf_dask.features import feature_stage

    data = ad.load_market_data({"source": "synthetic", "symbols": 4, "bars": 200, "seed": 11})
    specs = {"sma_5": {"kind": "sma", "window": 5}, "ema_9": {"kind": "ema", "window": 9}}
    _fresh_session()
    f1, s1 = feature_stage(data, specs, client=client, disk=DiskCache(tmp_path / "c"))
    _fresh_session()
    disk = DiskCache(tmp_path / "c")
    f2, s2 = feature_stage(data, specs, client=client, disk=disk)
    assert (s1, s2) == ("miss", "hit") and disk.hits == {"features": 1} and not disk.warnings
    xr.testing.assert_identical(client.compute(f1).result(), client.compute(f2).result())
