"""`RunResult` of ``ad.run``: with the caller's client its features and signals are dask
collections of that client; with the run's own session client (the caller holds none) they are
read through it (`through_client`), whichever client is the default one then (none, or one of
another cluster); a closed one is one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import admf_dask as ad
from admf_dask.errors import InputError
from admf_dask.pipeline.results import through_client


def _read(res) -> dict:
    return {
        "features": {k: res.features[k].values for k in res.features.data_vars},
        "signals": res.signals.values,
        "one": res.features["sma_5"].isel(symbol=[1, 3], time=slice(50, 60)).values,
        "equity": res.equity.values,
        "metrics": res.metrics,
        "orders": res.orders,
        "trades": res.trades(),
    }


def test_features_and_signals_read_through_the_runs_client(tmp_path, small_pipeline, client):
    from distributed import Client, LocalCluster

    own = Client(client.cluster, set_as_default=False)  # the run's; closed below
    try:
        res = ad.run(small_pipeline, own, out=tmp_path / "run")
    except BaseException:
        own.close()
        raise
    data = ad.load_market_data(small_pipeline["data"])
    want = ad.compute_features(data, small_pipeline["features"]).compute()
    saved = ad.open_run(tmp_path / "run")
    # the caller's client: dask collections it computes
    assert res.features["sma_5"].chunks is not None
    np.testing.assert_array_equal(own.compute(res.features["sma_5"]).result(), want["sma_5"])
    # as a run on its own session client gives them (`ad.run` without a client)
    res.features = through_client(res.features, own, "features")
    res.signals = through_client(res.signals, own, "signals")
    assert isinstance(res.features, xr.Dataset) and isinstance(res.signals, xr.DataArray)
    assert res.features.attrs == want.attrs

    got = _read(res)  # no default client: the threaded scheduler holds none of it
    for k in want.data_vars:
        np.testing.assert_array_equal(got["features"][k], want[k].values)
    np.testing.assert_array_equal(got["one"], want["sma_5"].values[50:60][:, [1, 3]])
    np.testing.assert_array_equal(got["signals"], saved.signals.values)
    np.testing.assert_array_equal(got["equity"], saved.equity.values)
    assert len(got["orders"]) == saved.manifest["portfolios"]["n_orders"] > 0

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as other,
        Client(other) as default,  # the default client, of a cluster that never saw the run
    ):
        assert default is Client.current()
        again = _read(res)
    for k in want.data_vars:
        np.testing.assert_array_equal(again["features"][k], got["features"][k])
    np.testing.assert_array_equal(again["signals"], got["signals"])
    np.testing.assert_array_equal(again["equity"], got["equity"])
    pd.testing.assert_frame_equal(again["metrics"], got["metrics"])
    pd.testing.assert_frame_equal(again["orders"], got["orders"])
    pd.testing.assert_frame_equal(again["trades"], got["trades"])

    own.close()  # the run's cluster memory is gone with its client: one line says how to read
    for name in ("features", "signals"):
        obj = getattr(res, name)
        with pytest.raises(InputError, match=rf"^RunResult.{name}: .*client is closed") as e:
            (obj["sma_5"] if name == "features" else obj).values  # noqa: B018
        assert "\n" not in str(e.value) and "ad.open_run" in str(e.value)
    # what the run wrote stays readable
    np.testing.assert_array_equal(res.equity.values, got["equity"])
    pd.testing.assert_frame_equal(res.metrics, got["metrics"])
    pd.testing.assert_frame_equal(res.orders, got["orders"])
    pd.testing.assert_frame_equal(res.trades(), got["trades"])


def test_the_closing_table_reads_the_metrics_the_run_computed(tmp_path, small_pipeline, client):
    # the CLI's closing table takes the run's own metrics (no read back of results.zarr): they
    # must be what res.metrics reads, column for column (the research columns excepted)
    res = ad.run(small_pipeline, client=client, out=tmp_path / "run")
    read = res.metrics
    mine = res._closing_metrics()
    assert {"psr", "dsr"} <= set(read.columns) - set(mine.columns)
    pd.testing.assert_frame_equal(mine, read[list(mine.columns)])
    # an opened run has no such copy: the same frame, read
    opened = ad.open_run(tmp_path / "run")
    pd.testing.assert_frame_equal(opened._closing_metrics(), read)
    assert opened.signals is not None and res.signals is not None
