"""Cluster sizing is arithmetic: test it on machines we don't have."""

from __future__ import annotations

import pytest

from admf_dask.cluster import GPU, ML, plan_cluster
from admf_dask.config.models import ClusterConfig
from admf_dask.errors import ConfigError

GiB = 2**30


@pytest.mark.parametrize(
    "cores, mem, n, threads",
    [
        (1, 4 * GiB, 1, 1),
        (2, 24 * GiB, 2, 1),
        (4, 16 * GiB, 4, 1),
        (16, 64 * GiB, 8, 2),
        (64, 256 * GiB, 32, 2),
    ],
)
def test_auto_sizing(cores, mem, n, threads):
    plan = plan_cluster(ClusterConfig(), cores, mem)
    assert plan.n_workers == n
    assert all(w.nthreads == threads for w in plan.workers)
    assert sum(w.memory_limit for w in plan.workers) <= 0.9 * mem + n
    assert sum(w.nthreads for w in plan.workers) == cores
    assert [bool(w.resources) for w in plan.workers] == [True] + [False] * (n - 1)


def test_ml_workers_tagged_and_gpu_when_present():
    plan = plan_cluster(ClusterConfig(ml_workers=2), 8, 32 * GiB, gpu=True)
    tags = [w.resources for w in plan.workers]
    assert tags[:2] == [{ML: 1, GPU: 1}] * 2
    assert all(t == {} for t in tags[2:])
    assert [w.name for w in plan.workers][:3] == ["ml-0", "ml-1", "cpu-2"]


def test_explicit_workers_and_threads():
    plan = plan_cluster(ClusterConfig(n_workers=3, memory_limit="2GiB"), 12, 64 * GiB)
    assert plan.n_workers == 3 and plan.workers[0].nthreads == 4
    assert plan.workers[0].memory_limit == 2 * GiB
    plan = plan_cluster(ClusterConfig(n_workers=2, threads_per_worker=3), 2, 8 * GiB)
    assert [w.nthreads for w in plan.workers] == [3, 3]


def test_auto_caps_ml_workers_but_explicit_conflict_is_an_error():
    assert plan_cluster(ClusterConfig(ml_workers=5), 2, 8 * GiB).n_workers == 2
    with pytest.raises(ConfigError, match="cluster.ml_workers"):
        plan_cluster(ClusterConfig(n_workers=2, ml_workers=3), 8, 8 * GiB)


def test_bad_memory_limit():
    with pytest.raises(ConfigError, match="cluster.memory_limit"):
        plan_cluster(ClusterConfig(memory_limit="lots"), 2, 8 * GiB)


def test_loopback_by_default():
    plan = plan_cluster(ClusterConfig(), 2, 8 * GiB)
    assert plan.host == "127.0.0.1"
    assert plan.dashboard_address == "127.0.0.1:0"


def test_local_cluster_workers_match_plan(client):
    from admf_dask.cluster import describe_cluster

    info = describe_cluster(client)
    names = sorted(w["name"] for w in info["workers"])
    assert names == ["cpu-1", "ml-0"]
    tagged = [w for w in info["workers"] if w["resources"]]
    assert len(tagged) == 1 and tagged[0]["resources"] == {ML: 1}
    assert all(w["address"].startswith("tcp://127.0.0.1:") for w in info["workers"])
    assert info["dashboard"].startswith("http://127.0.0.1:")
