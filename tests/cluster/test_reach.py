"""`admf_dask.cluster.reach` on a LocalCluster: workers that share this machine's files pass, the
marker file never stays, URLs are not local paths (workers that do not share the files:
test_unshared.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from admf_dask.cluster.reach import check_reachable, local_path, worker_inputs
from admf_dask.config.models import DataConfig


def test_local_path_and_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_path("s3://bucket/runs/x") is None
    assert local_path("memory://runs/x") is None
    assert local_path("file:///data/runs/x") == Path("/data/runs/x")
    assert local_path("runs/x") == tmp_path / "runs" / "x"
    assert local_path("x", base_dir=tmp_path / "cfg") == tmp_path / "cfg" / "x"
    assert local_path(Path("/abs")) == Path("/abs")


def test_worker_inputs_are_the_files_workers_open(tmp_path):
    (tmp_path / "p.parquet").write_bytes(b"x")
    (tmp_path / "p.csv").write_text("x")
    parquet = DataConfig(source="parquet", path="p.parquet")
    assert worker_inputs(parquet, tmp_path) == {"data.path": tmp_path / "p.parquet"}
    # the client reads a CSV table; a missing file is the loader's error; URLs are not local
    assert worker_inputs(DataConfig(source="csv", path="p.csv"), tmp_path) == {}
    assert worker_inputs(DataConfig(source="parquet", path="nope.parquet"), tmp_path) == {}
    assert worker_inputs(DataConfig(source="zarr", path="s3://b/d.zarr"), tmp_path) == {}
    assert worker_inputs(DataConfig(), tmp_path) == {}


@pytest.mark.parametrize("out", ["x", "a/b/x"])
def test_workers_that_share_the_files_pass_and_nothing_stays(client, tmp_path, out):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "p.parquet").write_bytes(b"12345")
    (tmp_path / "in" / "d.zarr").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    paths = {
        "--out": tmp_path / out,
        "data.path": tmp_path / "in" / "p.parquet",
        "zarr": tmp_path / "in" / "d.zarr",
        "elsewhere": "s3://bucket/never-looked-at",
    }
    check_reachable(client, paths, "run-1", output="--out")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: a connect to it is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_refuses_an_address_nothing_listens_at_and_passes_a_listening_one():
    import socket

    from admf_dask.cluster.reach import probe_scheduler
    from admf_dask.errors import ConfigError

    port = _closed_port()
    with pytest.raises(ConfigError, match=r"^cluster.address: cannot reach .*connection refused"):
        probe_scheduler(f"tcp://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="unknown host name"):
        probe_scheduler("tcp://no-such-host.invalid:8786", where="--address")
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        probe_scheduler(f"tcp://127.0.0.1:{srv.getsockname()[1]}")
        probe_scheduler(f"127.0.0.1:{srv.getsockname()[1]}")  # no scheme: tcp
    probe_scheduler("inproc://192.0.2.1/1/1")  # not TCP: left to distributed
