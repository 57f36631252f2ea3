"""Grid tab: the mean of a metric over two grid parameters (heatmap) and over each one alone;
metric and axes switch in the page (static/heatmap.js)."""

from __future__ import annotations

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    FactorRange,
    HoverTool,
    LayoutDOM,
    NumeralTickFormatter,
    Select,
    Span,
    TabPanel,
)
from bokeh.plotting import figure

from admf_dask.report import _aggregate as agg
from admf_dask.report import _load
from admf_dask.report import format as fmt
from admf_dask.report.context import ReportContext, small_codes
from admf_dask.report.figures import COLORS, PERCENT_METRICS, axis_format, metric_format, style
from admf_dask.report.heatmap import constant_param, heatmap_plot, heatmap_title
from admf_dask.report.render import script, template_div

TITLE = "Grid"
#: heatmap cells above which the per-cell numbers are hidden (they would overlap)
MAX_CELL_LABELS = 400


def build(ctx: ReportContext) -> TabPanel:
    """The Grid tab (a note instead when there is nothing to compare)."""
    return TabPanel(child=_content(ctx), title=TITLE)


def _content(ctx: ReportContext) -> LayoutDOM:
    run = ctx.run
    varying = [p for p in run.params if p.varies]
    if not run.metrics:
        return template_div("note.html", title="Grid", text="No metrics in results.zarr.")
    if not varying:
        return template_div(
            "note.html",
            title="Grid",
            text="The grid has no parameter with more than one value: nothing to compare.",
        )
    src = ctx.metrics_source
    axes = list(varying)
    if len(axes) == 1:  # one varying parameter: a one-row heatmap against a constant axis
        const = constant_param(run.n_portfolios)
        axes.append(const)
        src.data["_c_all"] = small_codes(const.codes, 1)
    metric = "sharpe" if "sharpe" in run.metrics else next(iter(run.metrics))
    px, py = axes[0], axes[1]
    values = run.metrics[metric]
    h = int(min(640, max(480, 70 + 46 * len(py.levels))))  # at least the two margins' height
    fig, heat, mapper = heatmap_plot(values, px, py, metric, width=1000, height=h)
    show = len(px.levels) * len(py.levels) <= MAX_CELL_LABELS
    heat.data["text"], heat.data["text_color"] = fmt.cell_text(heat.data["value"], metric, show)
    text_r = fig.select_one({"name": "cell_text"})
    text_r.glyph.text_color = {"field": "text_color"}
    names = [p.name for p in axes]
    msel = Select(
        title="metric", value=metric, options=list(run.metrics), width=180, name="heat_metric"
    )
    xs = Select(title="x parameter", value=px.name, options=names, width=180, name="heat_x")
    ys = Select(title="y parameter", value=py.name, options=names, width=180, name="heat_y")
    heat.name = "heat_source"
    cb = CustomJS(
        args={
            "src": src,
            "heat": heat,
            "fig": fig,
            "mapper": mapper,
            "bar": fig.right[0],
            "hover": fig.select_one(HoverTool),
            "metric": msel,
            "xs": xs,
            "ys": ys,
            "names": names,
            "levels": {p.name: p.levels for p in axes},
            "formats": {k: metric_format(k) for k in run.metrics},
            "axis_formats": {k: axis_format(k) for k in run.metrics},
            "percent": [k for k in run.metrics if k in PERCENT_METRICS],
            "max_labels": MAX_CELL_LABELS,
        },
        code=script("heatmap.js"),
    )
    for w in (msel, xs, ys):
        w.js_on_change("value", cb)
    fig.title.text = heatmap_title(metric, px.name, py.name)
    margins = [marginal_plot(values, p, metric, f"marg_{k}") for k, p in enumerate((px, py))]
    cb.args["margins"] = [(f, f.renderers[0].data_source) for f in margins]
    note = template_div(
        "note.html",
        width=1000,
        text=f"Each cell is the mean over the portfolios sharing that pair of values "
        f"({run.n_portfolios:,} portfolios, {len(run.params)} grid parameter(s)); grey cells "
        "have no finite value. Hover for the count.",
    )
    return column(row(msel, xs, ys), note, row(fig, column(*margins)))


def marginal_plot(values: np.ndarray, p: _load.Param, metric: str, name: str) -> figure:
    """Mean of the metric per value of one parameter (everything else averaged out)."""
    mean, count = agg.group_mean(values, p.codes, np.zeros_like(p.codes), len(p.levels), 1)
    src = ColumnDataSource({"x": list(p.levels), "value": mean[0], "count": count[0]})
    f = figure(
        title=f"Mean {metric} by {p.name}",
        x_range=FactorRange(factors=list(p.levels)),
        width=350,
        height=240,
        tools="save",
        toolbar_location=None,
        name=name,
    )
    style(f)
    f.min_border_left = 60
    f.xgrid.grid_line_color = None
    f.vbar(x="x", top="value", width=0.7, source=src, color=COLORS["bar1"], fill_alpha=0.85)
    f.add_layout(Span(location=0, dimension="width", line_color="#888888", line_width=1))
    f.title.text_font_size = "13px"
    f.yaxis.formatter = NumeralTickFormatter(format=axis_format(metric))
    f.add_tools(HoverTool(tooltips=[(p.name, "@x"), ("mean", "@value{0.000}"), ("n", "@count")]))
    return f
