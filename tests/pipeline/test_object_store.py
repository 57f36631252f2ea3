"""Runs written to and read from an S3-compatible store (moto's server on 127.0.0.1, s3fs)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _s3 import moto_server

import admf_dask as ad
from admf_dask.errors import ConfigError, DataError, InputError

sys.path.insert(0, str(Path(__file__).parent))
from _cli import main  # noqa: E402
from test_cli import assert_one_line_error, write_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def s3_run(s3, client, tmp_path_factory, new_small_pipeline):
    """One small run (report and research on) written locally and to the store: the tests that
    need a run on the store read it, or a server-side copy of its prefix (seconds per run)."""
    cfg = new_small_pipeline()
    cfg["output"]["report"] = True
    cfg["research"] = {"cscv_blocks": 6}
    tmp = tmp_path_factory.mktemp("s3_run")
    ad.run(copy.deepcopy(cfg), client, out=tmp / "local")
    bucket = s3.bucket()
    url = f"s3://{bucket}/runs/x"
    remote = ad.run(_to_s3(copy.deepcopy(cfg), s3), client, out=url)
    return {"local": tmp / "local", "bucket": bucket, "url": url, "remote": remote}


def _copy_run(s3, s3_run, bucket: str, prefix: str) -> str:
    """The module's run on the store copied to s3://BUCKET/PREFIX (server-side); its URL."""
    s3.fs().copy(f"{s3_run['bucket']}/runs/x", f"{bucket}/{prefix}", recursive=True)
    assert _keys(s3, bucket) == sorted(
        k.replace("runs/x/", f"{prefix}/", 1) for k in _keys(s3, s3_run["bucket"])
    )
    return f"s3://{bucket}/{prefix}"


def _keys(s3, bucket: str) -> list[str]:
    fs = s3.fs()
    return sorted(k[len(bucket) + 1 :] for k in fs.find(bucket))


def _to_s3(cfg: dict, s3) -> dict:
    cfg["output"]["storage_options"] = s3.options()
    return cfg


def _cli_env(env: dict[str, str], *args: str):
    """`test_cli.cli` with more environment variables."""
    import os
    import subprocess

    full = dict(os.environ, PYTHONWARNINGS="ignore", **env)
    cmd = [sys.executable, "-m", "admf_dask.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=full)


def _same_run(a, b, signals: bool = True) -> None:
    np.testing.assert_array_equal(a.equity.values, b.equity.values)
    np.testing.assert_array_equal(a.cash.values, b.cash.values)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.trades(), b.trades())
    if signals:  # (ad.run's signals are persisted on its client; open_run's read the store)
        np.testing.assert_array_equal(a.signals.values, b.signals.values)


def test_run_on_s3_equals_the_local_run(s3, s3_run):
    local = ad.open_run(s3_run["local"])
    bucket, url, remote = s3_run["bucket"], s3_run["url"], s3_run["remote"]
    assert str(remote.path) == url
    _same_run(local, remote, signals=False)
    # the same files, and nothing else left in the bucket (no temporary prefix, no probe marker)
    local_files = sorted(
        "runs/x/" + p.relative_to(s3_run["local"]).as_posix()
        for p in s3_run["local"].rglob("*")
        if p.is_file()
    )
    assert _keys(s3, bucket) == local_files
    assert "runs/x/report.html" in local_files
    reopened = ad.open_run(url, storage_options=s3.options())
    _same_run(local, reopened)
    assert reopened.manifest["run_id"] == remote.run_id
    saved = reopened.manifest["config"]["output"]["storage_options"]
    assert saved["secret"] == "***" and saved["endpoint_url"] == s3.endpoint


def test_overwrite_rules_on_a_store(s3, s3_run, client, small_pipeline):
    cfg = _to_s3(small_pipeline, s3)
    bucket = s3.bucket()
    url = _copy_run(s3, s3_run, bucket, "runs/x")  # a previous run at the target
    first = s3_run["remote"]
    with pytest.raises(ConfigError, match=f"'{url}' already exists"):
        ad.run(cfg, client, out=url)
    cfg["output"]["overwrite"] = True
    second = ad.run(cfg, client, out=url)
    assert second.run_id != first.run_id
    assert ad.open_run(url, storage_options=s3.options()).run_id == second.run_id
    assert all(k.startswith("runs/x/") for k in _keys(s3, bucket))
    # a prefix that is no run of ours is never replaced
    fs = s3.fs()
    fs.pipe(f"{bucket}/mine/notes.txt", b"keep")
    with pytest.raises(ConfigError) as info:
        ad.run(cfg, client, out=f"s3://{bucket}/mine")
    assert "not a run folder of admf-dask (it has no run.json)" in info.value.line
    assert fs.cat(f"{bucket}/mine/notes.txt") == b"keep"


def test_prefix_without_run_json_is_not_a_run(s3):
    bucket = s3.bucket()
    s3.fs().pipe(f"{bucket}/runs/.x.tmp-1/results.zarr/zarr.json", b"{}")
    s3.fs().pipe(f"{bucket}/runs/x/results.zarr/zarr.json", b"{}")
    for prefix in ("runs/x", "runs/.x.tmp-1"):
        with pytest.raises(InputError) as info:
            ad.open_run(f"s3://{bucket}/{prefix}", storage_options=s3.options())
        assert "not a run (no run.json" in info.value.line and "\n" not in info.value.line


def test_missing_bucket_stops_before_computing(s3, client, small_pipeline):
    with pytest.raises(ConfigError) as info:
        ad.run(_to_s3(small_pipeline, s3), client, out="s3://no-such-bucket/runs/x")
    assert info.value.line == (
        "--out: bucket 'no-such-bucket' does not exist at s3://no-such-bucket/runs/x; "
        "create it or fix --out"
    )


def test_cli_errors_are_one_line(s3, tmp_path, small_pipeline):
    # in-process: these stop before anything starts (the subprocess' exit status and stderr are
    # the ones of tests/pipeline/test_cli.py and of the cases below that run the entry point)
    cfg = _to_s3(small_pipeline, s3)
    cfg["output"]["path"] = "s3://no-such-bucket/runs/x"
    p = write_pipeline(tmp_path, cfg)
    assert_one_line_error(main("run", str(p)), "bucket 'no-such-bucket' does not exist")
    proc = main("run", str(p), "--out", "memory://runs/x")
    assert_one_line_error(proc, "--out", "memory://", "this process's memory only")
    assert_one_line_error(main("run", str(p), "--out", "htps://x/y"), "unknown URL scheme")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p.yaml"]


def test_memory_url_from_python(client, small_pipeline):
    res = ad.run(small_pipeline, client, out="memory://admf-test/runs/m")
    again = ad.open_run("memory://admf-test/runs/m")
    np.testing.assert_array_equal(res.equity.values, again.equity.values)
    json.loads(again.path.__truediv__("run.json").read_text())


def test_data_path_urls_read_like_local_files(s3, tmp_path):
    import warnings

    import xarray as xr

    from admf_dask.data import load_market_data

    bars = load_market_data({"source": "synthetic", "symbols": 3, "bars": 60}).compute()
    bars = bars[["open", "high", "low", "close", "volume"]]
    bars.attrs = {}
    with warnings.catch_warnings():  # zarr v3 notes on consolidated metadata
        warnings.simplefilter("ignore")
        bars.to_zarr(tmp_path / "p.zarr")
    frame = bars.to_dataframe().dropna().reset_index()
    frame.to_parquet(tmp_path / "p.parquet")
    frame.to_parquet(tmp_path / "parts", partition_cols=["symbol"])
    frame.to_csv(tmp_path / "p.csv", index=False)
    bucket = s3.bucket()
    fs = s3.fs()
    for name in ("p.zarr", "p.parquet", "parts", "p.csv"):
        fs.put(str(tmp_path / name), f"{bucket}/in/{name}", recursive=True)
    for source, name in (
        ("zarr", "p.zarr"),
        ("parquet", "p.parquet"),
        ("parquet", "parts"),
        ("csv", "p.csv"),
    ):
        local = load_market_data({"source": source, "path": str(tmp_path / name)})
        url = f"s3://{bucket}/in/{name}"
        remote = load_market_data({"source": source, "path": url, "storage_options": s3.options()})
        xr.testing.assert_equal(remote.compute(), local.compute())
        if source != "csv":  # read from the store by the tasks (a CSV is copied here)
            assert remote.attrs["path"] == url
    with pytest.raises(DataError) as info:
        load_market_data(
            {"source": "csv", "path": f"s3://{bucket}/in/nope.csv", "storage_options": s3.options()}
        )
    assert f"'s3://{bucket}/in/nope.csv' does not exist" in info.value.line
    with pytest.raises(DataError, match="bucket 'no-such-bucket' does not exist"):
        load_market_data(
            {
                "source": "zarr",
                "path": "s3://no-such-bucket/p.zarr",
                "storage_options": s3.options(),
            }
        )


def test_cli_report_and_research_of_a_run_on_a_store(s3, s3_run):
    bucket = s3.bucket()
    url = _copy_run(s3, s3_run, bucket, "runs/r")
    first = s3_run["remote"]
    fs = s3.fs()
    fs.rm(f"{bucket}/runs/r/report.html")  # the report command writes it again
    assert json.loads(fs.cat(f"{bucket}/runs/r/research.json"))["pbo"]["combinations"] == 20
    # the CLI takes its credentials and endpoint from the environment
    env = {"AWS_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    proc = _cli_env(env, "research", url, "--set", "research.cscv_blocks=8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{url}/research.json" in proc.stdout
    assert json.loads(fs.cat(f"{bucket}/runs/r/research.json"))["pbo"]["combinations"] == 70
    proc = _cli_env(env, "report", url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"report: {url}/report.html"
    again = ad.open_run(url, storage_options=s3.options())
    assert again.run_id == first.run_id and again.manifest["config"]["research"]["cscv_blocks"] == 8
    assert all(k.startswith("runs/r/") for k in _keys(s3, bucket))  # no temporary prefix left
    assert "runs/r/report.html" in _keys(s3, bucket)
    missing = _cli_env(env, "report", f"s3://{bucket}/runs/none")
    assert_one_line_error(missing, "not a run (it has no run.json)")


def test_a_target_that_appears_during_the_run_is_kept(s3, client, small_pipeline):
    import contextlib

    from admf_dask.pipeline.runner import LogReporter

    bucket = s3.bucket()
    fs = s3.fs()

    class Intruder(LogReporter):
        """Someone else writes at the target while the run computes."""

        @contextlib.contextmanager
        def stage(self, name):
            with super().stage(name) as note:
                if name == "write":
                    fs.pipe(f"{bucket}/runs/x/theirs.txt", b"theirs")
                yield note

    with pytest.raises(ConfigError, match="appeared during the run"):
        ad.run(_to_s3(small_pipeline, s3), client, out=f"s3://{bucket}/runs/x", reporter=Intruder())
    assert _keys(s3, bucket) == ["runs/x/theirs.txt"]  # no temporary prefix, theirs untouched
