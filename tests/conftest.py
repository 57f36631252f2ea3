"""Shared fixtures: small pipelines that run in seconds on 2 cores."""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import shutil
import tempfile

import pytest

# numba's on-disk cache is per user; keep test runs from writing into the source tree
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "admf-numba")
)

# the disk cache (cache.dir default): never the user's; one folder per test (below), so a test's
# first run is a miss whatever ran before it, in this process or in a CLI subprocess
_CACHE_ROOT = tempfile.mkdtemp(prefix="admf-test-cache-")
atexit.register(shutil.rmtree, _CACHE_ROOT, True)
os.environ["ADMF_DASK_CACHE"] = os.path.join(_CACHE_ROOT, "session")


@pytest.fixture(autouse=True)
def _own_disk_cache(request, monkeypatch):
    """``ADMF_DASK_CACHE`` is a fresh folder for each test (created on first write)."""
    name = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    monkeypatch.setenv("ADMF_DASK_CACHE", os.path.join(_CACHE_ROOT, name))


SMALL = {
    "name": "small",
    "data": {"source": "synthetic", "symbols": 6, "bars": 300, "seed": 3, "chunks": {"time": 100}},
    "features": {
        "sma_5": {"kind": "sma", "window": 5},
        "sma_20": {"kind": "sma", "window": 20},
        "vol_20": {"kind": "volatility", "window": 20},
    },
    "strategies": {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}},
    "portfolios": {
        "capital": 100000,
        "batch_size": 4,
        "vol_feature": "vol_20",
        "grid": {"stop_loss": [None, 0.05], "allow_short": [False, True]},
    },
    "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
    "output": {"path": "runs/small", "report": False},
}


@pytest.fixture
def small_pipeline() -> dict:
    """A fresh copy of a small, valid pipeline dict."""
    return copy.deepcopy(SMALL)


@pytest.fixture(scope="session")
def new_small_pipeline():
    """``new_small_pipeline()``: a fresh copy of `small_pipeline`, for module-scoped fixtures."""
    return lambda: copy.deepcopy(SMALL)


@pytest.fixture(scope="session")
def client():
    """One small LocalCluster for the whole test session (2 workers: ML-tagged + plain)."""
    from distributed import Client

    from admf_dask.cluster import make_local_cluster
    from admf_dask.config.models import ClusterConfig

    cluster = make_local_cluster(
        ClusterConfig(n_workers=2, threads_per_worker=1, ml_workers=1, memory_limit="3GiB")
    )
    c = Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()
