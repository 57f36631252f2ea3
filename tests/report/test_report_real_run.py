"""The report of a real (small) pipeline run: the run folder contract, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
from _oracles import require_chromium
from browser import Browser

import admf_dask as ad
from admf_dask.report import _aggregate as agg
from admf_dask.report import _load, build_report


@pytest.mark.slow
def test_report_of_a_real_run(small_pipeline: dict, client, tmp_path: Path) -> None:
    small_pipeline["output"] = {"path": str(tmp_path / "run"), "report": False}
    small_pipeline["portfolios"]["grid"]["allow_short"] = [False, True]
    result = ad.run(ad.load_pipeline(small_pipeline), client=client)
    run = Path(result.path)

    ds = xr.open_zarr(run / "results.zarr", chunks=None)
    data = _load.load_run(run, ds)
    assert [p.name for p in data.params] == ["stop_loss", "allow_short"]
    assert data.params[1].levels == ["false", "true"]
    worst = agg.pick_best_median_worst(data.metrics["sharpe"])[2]
    out = build_report(run, tmp_path / "again.html", chosen_portfolio=worst)
    with Browser(require_chromium()) as browser:
        page = browser.open(out)
        page.evaluate("Bokeh.documents[0].get_model_by_name('report_tabs').active = 3")
        page.wait_bokeh_idle()
        shown = page.evaluate(
            "Bokeh.documents[0].get_model_by_name('current_portfolio').data.equity.length"
        )
        assert shown == ds.sizes["time"]
        assert page.errors == [] and page.remote_requests() == []
