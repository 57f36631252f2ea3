"""Assemble ``report.html``: one standalone Bokeh document (inline JS/CSS, no network).

Every panel embeds aggregates only: quantile bands instead of 10,000 curves, one metrics row per
portfolio, and orders/prices for the handful of portfolios the Portfolio tab can show. The tabs
are built by the modules listed in `admf_dask.report.tabs.TABS` from one `ReportContext`.

The page stays bounded whatever the run's size: a line has at most `_load.DISPLAY_POINTS` points
(longer series are drawn as the min/max of buckets of bars, `_aggregate`'s module docstring), the
Portfolio tab embeds a capped number of orders and close-price columns, and the ML timeline a
capped number of tasks; each plot or note says so and where the full data is.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import xarray as xr
from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.models import Div, Tabs
from bokeh.resources import INLINE

from admf_dask.dasktools.files import atomic_write_bytes
from admf_dask.dasktools.fs import Loc
from admf_dask.errors import InputError
from admf_dask.report import _load
from admf_dask.report.context import TOP_N, ReportContext, build_context
from admf_dask.report.render import stylesheet
from admf_dask.report.tabs import TABS


def build_report(
    run_dir: str | Path,
    out: Path | None = None,
    *,
    chosen_portfolio: int | None = None,
    market_data: xr.Dataset | None = None,
    top: int = TOP_N,
    data_dir: Path | Loc | None = None,
) -> Path:
    """Write the standalone HTML report of a run folder.

    Parameters
    ----------
    run_dir : str or Path
        A run folder (``run.json``, ``results.zarr``, optional ``orders.parquet/``).
    out : Path, optional
        Where to write; default ``run_dir / "report.html"``.
    chosen_portfolio : int, optional
        Portfolio id shown first on the Portfolio tab (default: the best by sharpe).
    market_data : xarray.Dataset, optional
        The run's market data (``close`` (time, symbol)) for price lines and exposure; when
        omitted it is reloaded from the run's data config if possible, else fill prices are used.
    top : int
        How many of the best portfolios are selectable on the Portfolio tab.
    data_dir : Path or Loc, optional
        Where results.zarr and orders.parquet/ are when not in `run_dir` (a run being written
        to a store: its temporary prefix there).

    Returns
    -------
    Path
        The written file. It opens offline: Bokeh's JS and CSS are inlined.

    Raises
    ------
    InputError
        The folder is not a run folder, or ``chosen_portfolio`` is out of range.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(str(run_dir), "no such run folder", "pass the folder a run wrote (--out)")
    ds = _load.open_results(run_dir if data_dir is None else data_dir)
    try:
        ctx = build_context(run_dir, ds, chosen_portfolio, market_data, top, data_dir)
        page = render_page(ctx)
    finally:
        ds.close()
    out = Path(out) if out is not None else run_dir / "report.html"
    atomic_write_bytes(out, page.encode("utf-8"))  # never leave a half-written report behind
    return out


def render_page(ctx: ReportContext) -> str:
    """The report's HTML text: the tabs of `TABS`, styled, in one standalone page."""
    panels = [p for p in (build(ctx) for build in TABS) if p is not None]
    root = Tabs(tabs=panels, name="report_tabs", stylesheets=[stylesheet("tabs.css")])
    sheet = stylesheet("report.css")  # one model shared by every Div: the CSS is embedded once
    for d in root.select({"type": Div}):
        d.stylesheets = [sheet]
    doc = Document()
    doc.add_root(root)
    for cb in ctx.on_ready:  # e.g. fills the Portfolio tab's first selection
        doc.js_on_event("document_ready", cb)
    name = ctx.run.manifest.get("name") or ctx.run.run_dir.name
    doc.title = f"{name} · admf-dask report"
    return file_html(doc, resources=INLINE, title=doc.title, template=_page_template())


def _page_template() -> str:
    """Bokeh's page template extended with the report's background (templates/page.html); Bokeh
    renders it with its own Jinja2 environment, which escapes the title."""
    return resources.files("admf_dask.report").joinpath("templates", "page.html").read_text("utf-8")
