"""The report's tabs: one module per tab, shown in the order of `TABS`.

Each tab module exposes ``TITLE`` and ``build(ctx: ReportContext) -> TabPanel | None`` (None: the
tab does not apply to this run, like ML for a run without ML strategies). ``ctx`` holds everything
loaded once for all tabs (`admf_dask.report.context.ReportContext`): the run, its score,
highlighted and selectable portfolios, orders and prices.

Adding a tab
------------
1. Write ``admf_dask/report/tabs/<name>.py`` with ``TITLE = "<Title>"`` and ``build(ctx)``,
   returning ``TabPanel(child=..., title=TITLE)``. Keep the module under ~400 lines; move data
   preparation into a sibling module as ``portfolio_data.py`` does.
2. HTML goes in ``admf_dask/report/templates/<name>*.html`` (Jinja2, autoescaped: pass raw
   values, never pre-escaped or pre-built HTML) and is made a Div with
   ``render.template_div("<name>.html", **values)``; short grey lines use ``note.html``.
   Every Div gets the report's stylesheet (``static/report.css``) when the page is assembled.
3. JavaScript for a ``CustomJS`` goes in ``admf_dask/report/static/<name>.js`` and is read with
   ``render.script("<name>.js")``; the models it touches are its ``args``. A callback that must
   run once when the page opens is appended to ``ctx.on_ready``.
4. Give widgets and sources the browser tests look up a ``name=`` (unique in the document).
5. Register the module's ``build`` in `TABS` below, at the position the tab should appear.
6. Test it in ``tests/report/`` (test_report_build.py for the document's content,
   test_report_browser.py for what its JavaScript computes in Chromium).

New data the tab needs from the run folder is loaded in `admf_dask.report._load` and added to
`ReportContext` (built once in `context.build_context`), so that tabs never reopen files.
"""

from __future__ import annotations

from collections.abc import Callable

from bokeh.models import TabPanel

from admf_dask.report.context import ReportContext
from admf_dask.report.tabs import grid, metrics, ml, overview, portfolio, research, run, trades

#: builds a tab from the report's context; None leaves the tab out
TabBuilder = Callable[[ReportContext], TabPanel | None]

#: the tabs in page order
TABS: list[TabBuilder] = [
    overview.build,
    metrics.build,
    grid.build,
    portfolio.build,
    trades.build,
    research.build,
    ml.build,
    run.build,
]

__all__ = ["TABS", "TabBuilder"]
