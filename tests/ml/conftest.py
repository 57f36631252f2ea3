"""Fixtures of the ML tests: one small two-worker cluster (ML-tagged + untagged) per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ml_client():
    """`make_local_cluster` with 2 single-thread workers: ``ml-0`` (resource ML) and ``cpu-1``."""
    from distributed import Client

    from admf_dask.cluster import make_local_cluster
    from admf_dask.config.models import ClusterConfig

    cluster = make_local_cluster(
        ClusterConfig(
            n_workers=2,
            threads_per_worker=1,
            ml_workers=1,
            memory_limit="2GiB",
            dashboard_address=None,
        )
    )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
