"""Workers that really do not share the client's files: a `dask scheduler` plus two workers in a
private mount namespace (``unshare -m``) with an empty tmpfs over a folder the client sees full.

A run whose local output or input the workers cannot see stops before computing, with one line
(exit 2) and nothing written; one they do see gives the results of a local run. The workers do
not see the client's temporary folder either: a run to ``s3://`` and a Parquet input there are
written and read by the workers on the store itself.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _deploy import start_proc, start_scheduler, stop_procs, wait_for_workers, worker_command

import admf_dask as ad
from admf_dask.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline"))
from test_cli import assert_one_line_error, cli, write_pipeline  # noqa: E402

UNSHARE = shutil.which("unshare")


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative name → bytes), folders as empty names."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"")
        for p in sorted(folder.rglob("*"))
    }


@contextlib.contextmanager
def unshared_cluster(logs: Path, hidden: list[Path]) -> Iterator[str]:
    """A scheduler on 127.0.0.1 and two workers that see an empty tmpfs over each of `hidden`.

    The mounts live in the workers' own mount namespace: they end with its processes, which are
    stopped (process group) on exit.
    """
    if UNSHARE is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    logs.mkdir(exist_ok=True)
    sched, address = start_scheduler(logs)
    procs = [sched]
    try:
        mounts = " && ".join(f"mount -t tmpfs tmpfs {shlex.quote(str(h))}" for h in hidden)
        options = ["--nworkers", "2", "--nthreads", "1", "--memory-limit", "2GiB"]
        worker = shlex.join(worker_command(address, *options))
        script = f"{mounts} && exec {worker}" if hidden else f"exec {worker}"
        procs.append(start_proc([UNSHARE, "-m", "sh", "-c", script], logs / "workers.log"))
        wait_for_workers(address, 2, [logs / "workers.log"])
        from distributed import Client

        with Client(address, timeout="30s", set_as_default=False) as c:
            # the workers really do not see the client's files there
            def _names(path: str) -> list[str]:  # local: sent by value to the workers
                import os

                return sorted(os.listdir(path))

            for h in hidden:
                assert list(c.run(_names, str(h)).values()) == [[], []], h
        yield address
    finally:
        stop_procs(procs)


@dataclass(frozen=True)
class Unshared:
    """The cluster's address and the client's folders its workers see empty."""

    address: str
    hidden: Path  # for run folders
    inputs: Path  # for data files
    client_tmp: Path  # the client's TMPDIR


@pytest.fixture(scope="module")
def unshared(tmp_path_factory) -> Iterator[Unshared]:
    """One cluster for the module (each test works in folders of its own under these)."""
    root = tmp_path_factory.mktemp("unshared")
    dirs = [root / "hidden", root / "inputs", root / "client-tmp"]
    for d in dirs:
        d.mkdir()
    with unshared_cluster(root / "logs", dirs) as address:
        yield Unshared(address, *dirs)


@pytest.fixture
def pipeline(small_pipeline) -> dict:
    small_pipeline["portfolios"]["grid"] = {"stop_loss": [None, 0.05]}
    return small_pipeline


def _folder(root: Path, request) -> Path:
    d = root / request.node.name
    d.mkdir()
    return d


def _prices(path: Path) -> None:
    rng = np.random.default_rng(5)
    times = pd.bdate_range("2020-01-01", periods=200)
    rows = []
    for s in ("AAA", "BBB", "CCC", "DDD"):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(times))))
        rows.append(
            pd.DataFrame(
                {
                    "time": times,
                    "symbol": s,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": 1e6,
                }
            )
        )
    pd.concat(rows).to_parquet(path, index=False)


def test_output_the_workers_cannot_see_stops_before_computing(
    tmp_path, pipeline, unshared, request
):
    hidden = _folder(unshared.hidden, request)
    (hidden / "keep.txt").write_text("the user's file")
    p = write_pipeline(tmp_path, pipeline)
    before = _tree(hidden)
    out = hidden / "runs" / "x"  # runs/ does not exist: the marker goes in its parent
    proc = cli("run", str(p), "--out", str(out), "--address", unshared.address, timeout=120)
    assert_one_line_error(
        proc,
        "--out: workers tcp://127.0.0.1:",
        f"cannot see {out} (it is a local path on this machine)",
        "use a URL all workers can reach",
    )
    assert _tree(hidden) == before  # no marker left, no run folder, no temporary folder


def test_input_the_workers_cannot_see_stops_before_computing(tmp_path, pipeline, unshared, request):
    inputs = _folder(unshared.inputs, request)
    _prices(inputs / "prices.parquet")
    pipeline["data"] = {"source": "parquet", "path": str(inputs / "prices.parquet")}
    p = write_pipeline(tmp_path, pipeline)
    before = _tree(tmp_path)
    proc = cli("run", str(p), "--out", str(tmp_path / "out"), "--address", unshared.address)
    assert_one_line_error(
        proc, "data.path: workers", f"cannot see {inputs / 'prices.parquet'}", "URL"
    )
    assert _tree(tmp_path) == before  # no run folder, no temporary folder


def test_workers_that_see_another_file_there(tmp_path, unshared, request):
    """Same name, other bytes on the workers' side: "see a different", the marker gone."""
    from distributed import Client

    from admf_dask.cluster.reach import MARKER_PREFIX, check_reachable

    inputs = _folder(unshared.inputs, request)
    _prices(inputs / "prices.parquet")

    def _plant(path: str) -> None:  # local: sent by value to the workers
        import os

        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"not the client's file")

    with Client(unshared.address) as c:
        c.run(_plant, str(inputs / "prices.parquet"))
        with pytest.raises(ConfigError) as err:
            paths = {"output.path": tmp_path / "out", "data.path": inputs / "prices.parquet"}
            check_reachable(c, paths, "run-1", output="output.path")
    assert err.value.where == "data.path"
    assert err.value.what.startswith("workers tcp://127.0.0.1:")
    assert f"see a different {inputs / 'prices.parquet'}" in err.value.what
    assert not list(tmp_path.glob(f"{MARKER_PREFIX}*"))


def test_paths_the_workers_see_give_the_local_results(tmp_path, pipeline, unshared, client):
    """Workers in their own mount namespace that see the run's folders: the run is that of a
    local cluster (the check refuses nothing it should not)."""
    _prices(tmp_path / "prices.parquet")
    pipeline["data"] = {"source": "parquet", "path": "prices.parquet"}
    p = write_pipeline(tmp_path, pipeline)
    proc = cli("run", str(p), "--out", str(tmp_path / "remote"), "--address", unshared.address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    local = ad.run(str(p), client, out=tmp_path / "local")
    remote = ad.open_run(tmp_path / "remote")
    assert remote.manifest["cluster"]["scheduler"] == unshared.address
    np.testing.assert_array_equal(remote.equity.values, local.equity.values)
    pd.testing.assert_frame_equal(remote.metrics, local.metrics)
    pd.testing.assert_frame_equal(remote.orders, local.orders)


def _run_to_s3(
    p: Path, url: str, address: str, client_tmp: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "admf_dask.cli", "run", str(p), "--out", url, "--address", address],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TMPDIR=str(client_tmp), PYTHONWARNINGS="ignore", **(env or {})),
    )


@pytest.fixture(scope="module")
def s3():
    from _s3 import moto_server

    with moto_server() as server:
        yield server


def test_s3_run_folder_on_unshared_workers_equals_the_local_run(
    tmp_path, pipeline, unshared, client, s3, request
):
    """An ``s3://`` run folder and an ``s3://`` Parquet input, on workers that see neither the
    client's files nor its temporary folder: they read the input and write the run on the store
    themselves, and the results are those of a local run."""
    _prices(tmp_path / "prices.parquet")
    pipeline["data"] = {"source": "parquet", "path": str(tmp_path / "prices.parquet")}
    pipeline["research"] = {"enabled": True}
    local = ad.run(pipeline, client, out=tmp_path / "local")
    client_tmp = _folder(unshared.client_tmp, request)  # hidden from the workers
    bucket = s3.bucket()
    s3.fs().put(str(tmp_path / "prices.parquet"), f"{bucket}/in/prices.parquet")
    pipeline["data"] = {
        "source": "parquet",
        "path": f"s3://{bucket}/in/prices.parquet",
        "storage_options": s3.options(),
    }
    pipeline["output"]["storage_options"] = s3.options()
    url = f"s3://{bucket}/runs/x"
    proc = _run_to_s3(write_pipeline(tmp_path, pipeline), url, unshared.address, client_tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    remote = ad.open_run(url, storage_options=s3.options())
    np.testing.assert_array_equal(remote.equity.values, local.equity.values)
    np.testing.assert_array_equal(remote.cash.values, local.cash.values)
    pd.testing.assert_frame_equal(remote.metrics, local.metrics)
    pd.testing.assert_frame_equal(remote.orders, local.orders)
    pd.testing.assert_frame_equal(remote.trades(), local.trades())
    assert remote.manifest["cluster"]["scheduler"] == unshared.address
    assert remote.manifest["outputs"] == local.manifest["outputs"]
    # the run's files only: no temporary prefix, no marker of the workers' check
    names = {k.split("/")[3] for k in s3.fs().find(f"{bucket}/runs")}
    assert names == set(local.manifest["outputs"])
    assert list(client_tmp.iterdir()) == []


def test_s3_run_folder_the_workers_cannot_write(tmp_path, pipeline, unshared, s3, request):
    """Credentials on the client only (its environment): the workers cannot write to the store,
    so the run stops before computing with one line naming them; nothing in the bucket, nothing
    left in the client's temporary folder."""
    client_tmp = _folder(unshared.client_tmp, request)
    bucket = s3.bucket()
    options = {k: v for k, v in s3.options().items() if k not in ("key", "secret")}
    pipeline["output"]["storage_options"] = options
    p = write_pipeline(tmp_path, pipeline)
    creds = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}
    proc = _run_to_s3(p, f"s3://{bucket}/runs/x", unshared.address, client_tmp, creds)
    assert_one_line_error(
        proc,
        "--out: workers tcp://127.0.0.1:",
        f"cannot write to s3://{bucket}/runs/x",
        "credentials",
    )
    assert s3.fs().find(bucket) == []
    assert list(client_tmp.iterdir()) == []
