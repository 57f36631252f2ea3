"""The HTML report of a run: one standalone Bokeh page, plus figures for notebooks.

Layout: `page` assembles the tabs of `tabs.TABS` (one module per tab) from one
`context.ReportContext`; HTML comes from ``templates/`` (Jinja2, autoescaped, `render`), CSS and
the in-page JavaScript from ``static/``; `format` holds the number and date formatting.

>>> from admf_dask.report import build_report, equity_band_figure, heatmap_figure
>>> build_report("runs/quickstart")              # writes runs/quickstart/report.html
>>> bokeh.io.show(heatmap_figure("runs/quickstart", "sharpe", "strategy", "stop_loss"))
"""

from __future__ import annotations

from admf_dask.report.figures import drawdown_figure, equity_band_figure
from admf_dask.report.heatmap import heatmap_figure
from admf_dask.report.page import build_report

__all__ = ["build_report", "drawdown_figure", "equity_band_figure", "heatmap_figure"]
