"""Metrics tab: one sortable row per portfolio, filtered in the page by grid value and metric range
(static/metrics_filter.js)."""

from __future__ import annotations

from bokeh.layouts import column, row
from bokeh.models import (
    BooleanFilter,
    CDSView,
    CustomJS,
    DataTable,
    NumberFormatter,
    Select,
    StringFormatter,
    TableColumn,
    TabPanel,
    TextInput,
)

from admf_dask.report.context import ReportContext
from admf_dask.report.figures import WIDTH, metric_format
from admf_dask.report.render import div, script, template_div

TITLE = "Metrics"


def build(ctx: ReportContext) -> TabPanel:
    """The Metrics tab (its rows: `ReportContext.metrics_source`, shared with the Grid tab)."""
    run, src = ctx.run, ctx.metrics_source
    columns = [TableColumn(field="portfolio", title="#", width=60)]
    for p in run.params:
        fmt = (
            NumberFormatter(format="0[.][0000]", nan_format="none", text_align="right")
            if p.numeric
            else StringFormatter()
        )
        columns.append(TableColumn(field=p.name, title=p.name, formatter=fmt, width=110))
    for k in run.metrics:
        columns.append(
            TableColumn(
                field=k,
                title=k,
                width=95,
                formatter=NumberFormatter(format=metric_format(k), text_align="right"),
            )
        )
    filt = BooleanFilter(name="metrics_filter")
    table = DataTable(
        source=src,
        view=CDSView(filter=filt),
        columns=columns,
        width=WIDTH,
        height=620,
        sortable=True,
        reorderable=False,
        index_position=None,
        row_height=24,
        name="metrics_table",
    )
    selects = [
        Select(
            title=p.name,
            value="(all)",
            options=["(all)", *p.levels],
            width=140,
            name=f"filter_{p.name}",
        )
        for p in run.params
        if p.varies
    ]
    metric_names = list(run.metrics) or ["portfolio"]
    msel = Select(
        title="metric",
        value=metric_names[0],
        options=metric_names,
        width=150,
        name="filter_metric",
    )
    lo = TextInput(title="≥", placeholder="e.g. 0.5", width=110, name="filter_min")
    hi = TextInput(title="≤", placeholder="e.g. 2", width=110, name="filter_max")
    # plain text: the filter callback rewrites it
    info = div(
        f"{run.n_portfolios:,} of {run.n_portfolios:,} portfolios", width=300, name="metrics_info"
    )
    cb = CustomJS(
        args={
            "src": src,
            "filt": filt,
            "selects": selects,
            "names": [p.name for p in run.params if p.varies],
            "levels": {p.name: p.levels for p in run.params},
            "msel": msel,
            "lo": lo,
            "hi": hi,
            "info": info,
        },
        code=script("metrics_filter.js"),
    )
    for w in (*selects, msel):
        w.js_on_change("value", cb)
    for w in (lo, hi):
        w.js_on_change("value", cb)
        w.js_on_change("value_input", cb)
    note = template_div(
        "note.html",
        tag="span",
        text="Click a header to sort; filter by grid parameter and by a metric range (returns "
        "and drawdowns are fractions: 0.1 = 10 %).",
    )
    return TabPanel(child=column(row(*selects, msel, lo, hi, info), note, table), title=TITLE)
