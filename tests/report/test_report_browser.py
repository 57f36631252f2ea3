"""report.html in headless Chromium: no script errors, nothing remote, not blank, and the
interactive parts (heatmap, table filters, portfolio choice) compute what Python computes.

Set ADMF_SAVE_SCREENSHOT=1 to copy the Overview screenshot to docs/report.png.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from _oracles import require_chromium
from browser import Browser, image_stats

from admf_dask.report import _aggregate as agg
from admf_dask.report import _load, build_report
from admf_dask.report.heatmap import heatmap_data

require_chromium()  # skips this module locally without Chromium, fails it under CI=true

DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "report.png"
MODEL = "Bokeh.documents[0].get_model_by_name"


def _set(page, name: str, value: str) -> None:
    """Set a widget's value the way a user would (it fires the widget's JS callbacks)."""
    page.evaluate(f"{MODEL}({json.dumps(name)}).value = {json.dumps(value)}")
    page.wait_bokeh_idle()


def _column(page, source: str, column: str) -> list:
    return page.evaluate(f"Array.from({MODEL}({json.dumps(source)}).data[{json.dumps(column)}])")


def _bokeh_warnings(page) -> list[str]:
    """BokehJS warnings (inconsistent column lengths, unset ranges) flag broken glyphs."""
    return [w for w in page.warnings if "[bokeh" in w]


def _assert_not_blank(png: bytes, what: str) -> dict[str, float]:
    stats = image_stats(png)
    assert stats["std"] > 8 and stats["colors"] > 100, f"{what} looks blank: {stats}"
    return stats


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (a new tab per page)."""
    with Browser(width=1400, height=900) as b:
        yield b


def test_report_in_chromium(
    browser: Browser, showcase_run: Path, showcase_report: Path, tmp_path: Path
) -> None:
    ds = xr.open_zarr(showcase_run / "results.zarr", chunks=None)
    run = _load.load_run(showcase_run, ds)
    page = browser.open(showcase_report)
    assert page.errors == [], page.errors
    assert page.remote_requests() == [], page.remote_requests()

    shot = tmp_path / "report.png"
    _assert_not_blank(page.screenshot(shot), "Overview")
    if os.environ.get("ADMF_SAVE_SCREENSHOT") == "1":
        DOCS_PNG.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_PNG)

    titles = page.evaluate(f"{MODEL}('report_tabs').tabs.map(t => t.title)")
    assert titles == ["Overview", "Metrics", "Grid", "Portfolio", "ML", "Run"]
    for i, title in enumerate(titles):  # every tab renders (hidden tabs lay out lazily)
        page.evaluate(f"{MODEL}('report_tabs').active = {i}")
        page.wait_bokeh_idle()
        _assert_not_blank(page.screenshot(tmp_path / f"tab-{title}.png"), title)

    # heatmap: switch metric and axes; the JS mean must equal the Python kernel's
    _set(page, "heat_metric", "total_return")
    _set(page, "heat_x", "stop_loss")  # y was stop_loss too: the callback moves y away
    y = page.evaluate(f"{MODEL}('heat_y').value")
    assert y != "stop_loss"
    params = {p.name: p for p in run.params}
    ref = heatmap_data(run.metrics["total_return"], params["stop_loss"], params[y])
    assert _column(page, "heat_source", "x") == ref["x"]
    assert _column(page, "heat_source", "y") == ref["y"]
    got = np.array(_column(page, "heat_source", "value"), dtype=float)
    np.testing.assert_allclose(got, ref["value"], rtol=1e-5)  # float32 in the page

    # metrics table: filter by a grid value and a metric range
    _set(page, "filter_strategy", "momentum")
    _set(page, "filter_metric", "sharpe")
    _set(page, "filter_min", "0")
    keep = np.array(page.evaluate(f"Array.from({MODEL}('metrics_filter').booleans)"))
    rows = _column(page, "metrics_source", "portfolio")  # the table lists the best first
    sharpe = run.metrics["sharpe"]
    assert rows == sorted(range(run.n_portfolios), key=lambda i: -sharpe[i])
    strategy = params["strategy"]
    expected = (strategy.codes == strategy.levels.index("momentum")) & (run.metrics["sharpe"] >= 0)
    np.testing.assert_array_equal(keep, expected[rows])
    info = page.evaluate(f"{MODEL}('metrics_info').text")
    assert info.startswith(f"{expected.sum()} of {run.n_portfolios}")

    # portfolio tab: pick the worst; its equity, orders and symbol list follow
    _set(page, "portfolio_select", "2")
    _, _, worst = agg.pick_best_median_worst(run.metrics["sharpe"])
    eq = ds["equity"].isel(portfolio=worst).values
    np.testing.assert_allclose(_column(page, "current_portfolio", "equity"), eq, rtol=1e-6)
    orders, _ = _load.read_orders(showcase_run, [worst])
    assert len(_column(page, "orders_shown", "qty")) == len(orders)
    symbol = page.evaluate(f"{MODEL}('symbol_select').value")
    n_sym = int((orders["symbol"] == symbol).sum())
    markers = sum(len(_column(page, k, "time")) for k in ("buy", "sell", "stop"))
    assert markers == n_sym
    assert len(_column(page, "price_shown", "price")) == len(run.time)  # close prices

    assert page.errors == [], page.errors  # nothing thrown by the callbacks either
    assert _bokeh_warnings(page) == []


def test_bare_report_in_chromium(browser: Browser, bare_run_dir: Path, tmp_path: Path) -> None:
    """No orders, no ML: the Portfolio tab still renders without errors."""
    out = build_report(bare_run_dir, tmp_path / "bare.html")
    page = browser.open(out)
    titles = page.evaluate(f"{MODEL}('report_tabs').tabs.map(t => t.title)")
    assert "ML" not in titles
    page.evaluate(f"{MODEL}('report_tabs').active = {titles.index('Portfolio')}")
    page.wait_bokeh_idle()
    _assert_not_blank(page.screenshot(tmp_path / "portfolio.png"), "Portfolio")
    _set(page, "portfolio_select", "1")
    assert page.errors == [], page.errors
    assert page.remote_requests() == []
    assert _bokeh_warnings(page) == []
