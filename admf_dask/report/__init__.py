"""The HTML report of a run (issue 7): one standalone Bokeh page, plus figures for notebooks.

>>> from admf_dask.report import build_report, equity_band_figure, heatmap_figure
>>> build_report("runs/quickstart")              # writes runs/quickstart/report.html
>>> bokeh.io.show(heatmap_figure("runs/quickstart", "sharpe", "strategy", "stop_loss"))
"""

from __future__ import annotations

from admf_dask.report._build import build_report
from admf_dask.report.figures import drawdown_figure, equity_band_figure, heatmap_figure

__all__ = ["build_report", "drawdown_figure", "equity_band_figure", "heatmap_figure"]
