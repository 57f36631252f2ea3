"""output.overwrite replaces only a finished run folder of admf-dask, never anything else."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import admf_dask as ad
from admf_dask.errors import ConfigError
from admf_dask.pipeline import rundir

sys.path.insert(0, str(Path(__file__).parent))
from _cli import main  # noqa: E402
from test_cli import assert_one_line_error, cli, write_pipeline  # noqa: E402


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def important(tmp_path: Path) -> Path:
    """A user's folder that is no run folder."""
    folder = tmp_path / "important"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"do not lose these\nnotes\x00\xff\n")
    return folder


def test_cli_overwrite_refuses_a_folder_that_is_no_run(tmp_path, small_pipeline, important):
    p = write_pipeline(tmp_path, small_pipeline)
    before = _tree(important)
    # in-process (tests/_cli.py): refused before anything starts
    proc = main("run", str(p), "--out", str(important), "--set", "output.overwrite=true")
    line = assert_one_line_error(proc, "--out", "not a run folder", "no run.json")
    assert str(important) in line
    assert _tree(important) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["important", "p.yaml"]


@pytest.mark.parametrize(
    "manifest",
    [
        "not json {",
        json.dumps(["run_id"]),
        json.dumps({"run_id": "20260101T000000Z-abcdef"}),  # no tool marker, no versions
        json.dumps({"tool": "other-tool", "run_id": "x", "config_hash": "0" * 16}),
        json.dumps({"tool": "admf-dask"}),  # no run id
    ],
)
def test_foreign_run_json_is_not_a_run_folder(important, manifest):
    (important / "run.json").write_text(manifest)
    before = _tree(important)
    with pytest.raises(ConfigError) as info:
        rundir.check_target(important, True, "--out")
    assert "not a run folder of admf-dask" in info.value.line
    assert "\n" not in info.value.line
    assert _tree(important) == before


def test_run_folder_written_before_the_tool_marker_is_accepted(tmp_path):
    old = tmp_path / "old"
    (old / "results.zarr").mkdir(parents=True)
    (old / "report.html").write_text("<html></html>")
    manifest = {"run_id": "r1", "config_hash": "ab" * 8, "versions": {"admf-dask": "0.1.0"}}
    (old / "run.json").write_text(json.dumps(manifest))
    assert rundir.run_folder_problem(old) is None
    (old / "notes.txt").write_text("mine")  # anything the run did not write makes it foreign
    assert "notes.txt" in rundir.run_folder_problem(old)


def test_commit_checks_the_target_again(tmp_path, important):
    # the target was replaced by a user's folder while the run computed: commit refuses it
    tmp = rundir.temp_dir_for(important, "r2")
    (tmp / "run.json").write_text(json.dumps({"tool": "admf-dask", "run_id": "r2"}))
    before = _tree(important)
    with pytest.raises(ConfigError, match="not a run folder of admf-dask"):
        rundir.commit(tmp, important, True, "--out")
    assert _tree(important) == before
    assert tmp.is_dir()  # the caller discards it
    rundir.discard(tmp)


def test_api_and_cli_overwrite_replace_a_previous_run(tmp_path, small_pipeline, client):
    small_pipeline["portfolios"]["grid"] = {"stop_loss": [None]}
    out = tmp_path / "run"
    first = ad.run(small_pipeline, client, out=out).manifest
    assert first["tool"] == "admf-dask"
    assert set(first["outputs"]) >= {"run.json", "results.zarr", "orders.parquet"}
    assert set(first["outputs"]) == {p.name for p in out.iterdir()}
    with pytest.raises(ConfigError, match="already exists"):
        ad.run(small_pipeline, client, out=out)

    # API: replaced; a user file put into the run folder makes it foreign again
    second = ad.run(small_pipeline, client, out=out, overrides=["output.overwrite=true"]).manifest
    assert second["run_id"] != first["run_id"]
    assert json.loads((out / "run.json").read_text())["run_id"] == second["run_id"]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"files the run did not write \(notes.txt\)"):
        ad.run(small_pipeline, client, out=out, overrides=["output.overwrite=true"])
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()

    # CLI: the real command replaces it too
    p = write_pipeline(tmp_path, small_pipeline)
    proc = cli("run", str(p), "--out", str(out), "--set", "output.overwrite=true", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    third = json.loads((out / "run.json").read_text())
    assert third["run_id"] not in (first["run_id"], second["run_id"])
    assert not [x for x in tmp_path.iterdir() if x.name.startswith((".run.tmp", ".run.old"))]


def test_api_overwrite_refuses_a_folder_that_is_no_run(small_pipeline, important):
    before = _tree(important)
    with pytest.raises(ConfigError) as info:
        ad.run(small_pipeline, out=important, overrides=["output.overwrite=true"])
    assert info.value.line.startswith("--out: ")
    assert _tree(important) == before


def test_shipped_pipelines_do_not_overwrite():
    for path in sorted((Path(__file__).parents[2] / "pipelines").glob("*.yaml")):
        assert ad.load_pipeline(path).output.overwrite is False, path
