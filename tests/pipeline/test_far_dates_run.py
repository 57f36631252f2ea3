"""A market past 2262-04-11 (docs/TIME.md): its time axis is datetime64[s], and a run over it is
the run of the same market on dates that fit datetime64[ns], bar for bar."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd

import admf_dask as ad


def _run(cfg: dict, start: str, client, out):
    cfg["data"].update(calendar_start=start, bars=780)  # three years of business days
    cfg["portfolios"]["benchmark"] = "S000"
    cfg["output"]["report"] = True
    return ad.run(cfg, client, out=out)


def _bars(stamps: pd.Series, times: np.ndarray) -> np.ndarray:
    """The bar index of each time (each is a bar of `times`)."""
    values = stamps.to_numpy()
    i = np.searchsorted(times, values.astype(times.dtype))
    np.testing.assert_array_equal(times[i], values)
    return i


def test_time_axis_past_2262_is_seconds_and_the_run_is_the_ns_one(small_pipeline, client, tmp_path):
    far = _run(copy.deepcopy(small_pipeline), "2260-01-01", client, tmp_path / "far")
    near = _run(small_pipeline, "2010-01-01", client, tmp_path / "near")
    t_far, t_near = far.equity["time"].values, near.equity["time"].values
    assert t_far.dtype == np.dtype("datetime64[s]") and t_near.dtype == np.dtype("datetime64[ns]")
    assert str(t_far[0]) == "2260-01-02T00:00:00" and str(t_far[-1]) == "2262-12-26T00:00:00"
    assert t_far.size == t_near.size == 780
    # accounting does not depend on the dates: equity, cash and every metric are the same
    np.testing.assert_array_equal(far.equity.values, near.equity.values)
    np.testing.assert_array_equal(far.results["cash"].values, near.results["cash"].values)
    pd.testing.assert_frame_equal(far.metrics, near.metrics)
    # orders and trades: the same rows, on the same bars
    o_far, o_near = far.orders, near.orders
    # (Parquet has no seconds unit: the files hold whole seconds as timestamp[ms])
    assert o_far["time"].dtype == np.dtype("datetime64[ms]") and len(o_far) == len(o_near) > 0
    np.testing.assert_array_equal(_bars(o_far["time"], t_far), _bars(o_near["time"], t_near))
    cols = [c for c in o_far.columns if c != "time"]
    pd.testing.assert_frame_equal(o_far[cols], o_near[cols])
    tr_far, tr_near = far.trades(), near.trades()
    assert len(tr_far) == len(tr_near) > 0
    for c in ("entry_time", "exit_time"):
        assert tr_far[c].dtype == np.dtype("datetime64[ms]")
        closed = tr_far[c].notna().to_numpy()
        np.testing.assert_array_equal(closed, tr_near[c].notna().to_numpy())
        np.testing.assert_array_equal(
            _bars(tr_far[c][closed], t_far), _bars(tr_near[c][closed], t_near)
        )
    cols = [c for c in tr_far.columns if c not in ("entry_time", "exit_time")]
    pd.testing.assert_frame_equal(tr_far[cols], tr_near[cols])
    # run.json: the first and last bars' dates (daily bars: the date only)
    manifest = json.loads((tmp_path / "far" / "run.json").read_text())
    assert manifest["data"]["start"] == "2260-01-02" and manifest["data"]["end"] == "2262-12-26"
    assert (tmp_path / "far" / "report.html").stat().st_size > 0
    # the run folder reads back with its dates
    again = ad.open_run(tmp_path / "far")
    np.testing.assert_array_equal(again.equity["time"].values, t_far)
    assert str(again.orders["time"].iloc[-1]) > "2262-04-11"
