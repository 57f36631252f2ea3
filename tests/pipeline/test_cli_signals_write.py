"""signals.zarr (`admf_dask.pipeline.runner`): a failed write fails the run with its own error and
leaves neither the run folder nor its temporary folder behind; the file holds the run's signals."""

from __future__ import annotations

import pytest
import yaml

from admf_dask import cli
from admf_dask.pipeline import runner


def test_failed_signals_write_fails_the_run_and_leaves_nothing(
    tmp_path, small_pipeline, client, monkeypatch
):
    def broken(signals):
        raise OSError("no space left on device (test)")

    monkeypatch.setattr(runner, "_public_signals", broken)
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(small_pipeline))
    out = tmp_path / "runs" / "r"
    out.parent.mkdir()
    address = client.scheduler.address
    with pytest.raises(OSError, match="no space left"):
        cli.main(["run", str(p), "--out", str(out), "--address", address, "--quiet"])
    assert not out.exists()
    assert not [x for x in (tmp_path / "runs").iterdir() if x.name.startswith(".r.tmp")]


def test_signals_zarr_holds_the_run_signals(tmp_path, small_pipeline, client):
    import xarray as xr

    import admf_dask as ad

    res = ad.run({**small_pipeline, "output": {"path": str(tmp_path / "r")}}, client=client)
    stored = xr.open_zarr(tmp_path / "r" / "signals.zarr")["signals"].load()
    xr.testing.assert_equal(stored, client.compute(res.signals).result())
