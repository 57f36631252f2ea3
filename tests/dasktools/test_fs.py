"""Locations: local paths and fsspec URLs, one-line errors for what cannot be reached."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from _s3 import moto_server

from admf_dask.dasktools import fs
from admf_dask.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


def test_local_paths_resolve_as_before(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert fs.resolve("runs/x").local_path() == (tmp_path / "runs/x").resolve()
    assert fs.resolve(f"file://{tmp_path}/y").local_path() == tmp_path / "y"
    assert fs.resolve("z", base_dir=tmp_path / "b").url == str(tmp_path / "b" / "z")
    assert fs.resolve("~/q").local_path() == Path("~/q").expanduser().resolve()
    assert not fs.is_url("runs/x") and not fs.is_url("file:///a") and fs.is_url("s3://b/x")


def test_url_keeps_scheme_options_and_pickles():
    loc = fs.resolve("memory://runs/x", {"a": 1})
    assert (loc.scheme, loc.storage_options, loc.name) == ("memory", {"a": 1}, "x")
    child = loc / "run.json"
    assert child.url == "memory://runs/x/run.json" and child.parent.url == loc.url
    assert pickle.loads(pickle.dumps(child)) == child
    child.write_bytes(b"{}")
    assert child.is_file() and loc.is_dir() and child.read_text() == "{}"
    loc.rm()
    assert not loc.exists()


def test_unknown_scheme_is_one_line():
    with pytest.raises(ConfigError) as info:
        fs.resolve("htps://host/x", where="output.path")
    line = info.value.line
    assert line.startswith("output.path: 'htps://host/x' has an unknown URL scheme 'htps://'")
    assert "did you mean 'https'" in line and "\n" not in line


def test_scheme_without_its_package_names_the_package():
    # adl:// (Azure Data Lake gen1) needs adlfs, which the dev install does not have
    with pytest.raises(ConfigError) as info:
        fs.resolve("adl://store/x", where="data.path")
    assert "not installed" in info.value.line and "pip install adlfs" in info.value.line


def test_probe_writes_nothing_that_stays(s3):
    bucket = s3.bucket()
    loc = fs.resolve(f"s3://{bucket}/runs/.x.tmp-1", s3.options())
    fs.probe(loc)
    assert s3.fs().find(bucket) == []


def test_probe_missing_bucket(s3):
    loc = fs.resolve("s3://no-such-bucket/runs/x", s3.options())
    with pytest.raises(ConfigError) as info:
        fs.probe(loc, "output.path")
    assert info.value.line == (
        "output.path: bucket 'no-such-bucket' does not exist at s3://no-such-bucket/runs/x; "
        "create it or fix output.path"
    )


def test_probe_refused_credentials(s3, monkeypatch):
    import moto.settings

    bucket = s3.bucket()
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # authenticate now
    loc = fs.resolve(f"s3://{bucket}/runs/x", s3.options(key="wrong", secret="wrong"))
    with pytest.raises(ConfigError) as info:
        fs.probe(loc, "output.path")
    line = info.value.line
    assert line.startswith(f"output.path: credentials refused by s3://{bucket}/runs/x")
    assert "AWS_ACCESS_KEY_ID" in line and "output.storage_options" in line and "\n" not in line


def test_unreachable_endpoint_is_one_line():
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    opts = {
        "key": "k",
        "secret": "s",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
    }
    with pytest.raises(ConfigError) as info:
        fs.probe(fs.resolve("s3://bucket/x", opts), "output.path")
    assert info.value.line.startswith("output.path: cannot reach s3://bucket/x")
    assert "\n" not in info.value.line


def test_check_readable(s3):
    bucket = s3.bucket()
    s3.fs().pipe(f"{bucket}/prices.csv", b"a\n")
    fs.check_readable(fs.resolve(f"s3://{bucket}/prices.csv", s3.options()), "p")
    with pytest.raises(DataError, match=r"'p' does not exist \(looked for s3://"):
        fs.check_readable(fs.resolve(f"s3://{bucket}/other.csv", s3.options()), "p")
    with pytest.raises(DataError, match="bucket 'nob' does not exist"):
        fs.check_readable(fs.resolve("s3://nob/other.csv", s3.options()), "p")


def test_redact_masks_secrets_only():
    opts = {"key": "AKIA", "secret": "s", "endpoint_url": "http://e", "client_kwargs": {"token": 1}}
    assert fs.redact(opts) == {
        "key": "***",
        "secret": "***",
        "endpoint_url": "http://e",
        "client_kwargs": {"token": "***"},
    }
