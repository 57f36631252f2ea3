"""Portfolio tab: equity, exposure (or drawdown), prices with fills and the order list of one
selectable portfolio at a time (static/portfolio.js switches them in the page).

The embedded data comes from `portfolio_data`; the callback also runs once at document_ready
(`ReportContext.on_ready`) to fill the first selection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    DataTable,
    DateFormatter,
    HoverTool,
    Legend,
    NumberFormatter,
    Select,
    TableColumn,
    TabPanel,
)

from admf_dask.report._load import bars_per_point
from admf_dask.report.context import TOP_N, ReportContext
from admf_dask.report.figures import (
    COLORS,
    WIDTH,
    downsample_text,
    style_legend,
    time_figure,
)
from admf_dask.report.render import div, script, template_div
from admf_dask.report.tabs.portfolio_data import portfolio_data

#: exit reason -> (marker, colour) on the price chart
EXIT_MARKERS: dict[str, tuple[str, str]] = {
    "stop": ("x", COLORS["stop"]),
    "trailing": ("cross", "#b07aa1"),
    "take_profit": ("star", "#1a9850"),
    "time": ("square_x", "#4d4d4d"),
    "halt": ("asterisk", "#d73027"),
}

TITLE = "Portfolio"


def build(ctx: ReportContext) -> TabPanel:
    """The Portfolio tab; registers its update callback in ``ctx.on_ready``."""
    child, cb = layout(ctx)
    ctx.on_ready.append(cb)
    return TabPanel(child=child, title=TITLE)


def layout(ctx: ReportContext) -> tuple[Any, CustomJS]:
    """The tab's content and its update callback."""
    run, choices, orders = ctx.run, ctx.choices, ctx.orders
    bench_symbol, bench = ctx.benchmark or (None, None)
    d = portfolio_data(run, ctx.ds, choices, orders, ctx.prices, bench)
    pdata, symbols_by_choice, price_cols = d.series, d.symbols_by_choice, d.prices
    times = run.time.values
    n_t = len(times)
    has_orders = any(symbols_by_choice)
    pdata_src = ColumnDataSource(pdata)
    # the shown portfolio's series; starts as the first choice (document_ready refills it)
    cur = ColumnDataSource(
        {
            "time": pdata["time"],  # the displayed bars (fewer than ``times`` on long runs)
            "equity": pdata["eq_0"],
            "dd": pdata["dd_0"],
            "gross": pdata.get("gross_0", np.zeros(len(pdata["time"]), np.float32)),
            "net": pdata.get("net_0", np.zeros(len(pdata["time"]), np.float32)),
        },
        name="current_portfolio",
    )
    orders_src = ColumnDataSource(d.orders)
    prices_src = ColumnDataSource(price_cols)
    first = symbols_by_choice[0][0] if symbols_by_choice and symbols_by_choice[0] else None
    price_view = ColumnDataSource(
        {"time": price_cols["time"], "price": price_cols[first]}
        if first in price_cols
        else {"time": [], "price": []},
        name="price_shown",
    )
    empty = {"time": [], "price": [], "qty": [], "reason": []}
    buy, sell = (ColumnDataSource(dict(empty), name=n) for n in ("buy", "sell"))
    # one marker per kind of exit (order reasons other than signal, docs/ACCOUNTING.md, exits)
    exits = {
        k: ColumnDataSource(dict(empty), name=k if k == "stop" else f"exit_{k}")
        for k in EXIT_MARKERS
    }
    table_src = ColumnDataSource(
        {k: [] for k in ("time", "symbol", "qty", "price", "value", "commission", "reason")},
        name="orders_shown",
    )

    choice_sel = Select(
        title="portfolio",
        value="0",
        options=[(str(k), c.label) for k, c in enumerate(choices)],
        width=620,
        name="portfolio_select",
    )
    sym_sel = Select(
        title="symbol",
        value="",
        options=[""],
        width=160,
        name="symbol_select",
        visible=has_orders,
    )
    info = div("", width=WIDTH)  # the callback fills it

    eqf = time_figure(
        "Equity of the selected portfolio", WIDTH // 2 - 10, 250, y_label="equity", y_format="0,0"
    )
    eq_r = eqf.line("time", "equity", source=cur, color=COLORS["chosen"], line_width=1.8)
    if bench is not None:
        eqf.line(
            "time",
            "benchmark",
            source=pdata_src,
            color=COLORS["benchmark"],
            line_width=1.4,
            legend_label=f"benchmark {bench_symbol}",
        )
        style_legend(eqf.legend[0])
        eqf.legend.location = "top_left"
    eqf.add_tools(
        HoverTool(
            renderers=[eq_r] if bench is not None else "auto",  # not the benchmark's line
            tooltips=[("date", "@time{%F}"), ("equity", "@equity{0,0}"), ("drawdown", "@dd{0.0%}")],
            formatters={"@time": "datetime"},
            mode="vline",
        )
    )
    side = time_figure(
        (
            "Exposure (fraction of equity)"
            + ("" if d.has_close else ", marked at last fill prices")
            if has_orders
            else "Drawdown of the selected portfolio"
        ),
        WIDTH // 2 - 10,
        250,
        y_format="0%",
        x_range=eqf.x_range,
    )
    if has_orders:
        side.line(
            "time", "gross", source=cur, color=COLORS["gross"], line_width=1.6, legend_label="gross"
        )
        side.line(
            "time", "net", source=cur, color=COLORS["net"], line_width=1.2, legend_label="net"
        )
        side.legend.location = "top_left"
        side.legend.orientation = "horizontal"
        side.legend.background_fill_alpha = 0.6
        style_legend(side.legend[0])
        tips = [("date", "@time{%F}"), ("gross", "@gross{0.0%}"), ("net", "@net{0.0%}")]
    else:  # no orders: nothing to mark, so show how deep the selected portfolio fell
        side.varea("time", 0, "dd", source=cur, fill_color=COLORS["worst"], fill_alpha=0.35)
        side.line("time", "dd", source=cur, color=COLORS["worst"], line_width=1.2)
        tips = [("date", "@time{%F}"), ("drawdown", "@dd{0.0%}")]
    side.add_tools(HoverTool(tooltips=tips, formatters={"@time": "datetime"}, mode="vline"))
    pf = time_figure("Price", WIDTH, 320, y_label="price", x_range=eqf.x_range)
    pf.line("time", "price", source=price_view, color="#555555", line_width=1.2)
    marker_tips = HoverTool(
        tooltips=[
            ("date", "@time{%F}"),
            ("qty", "@qty{0,0.[00]}"),
            ("price", "@price{0,0.00}"),
            ("reason", "@reason"),
        ],
        formatters={"@time": "datetime"},
    )
    rs = [
        pf.scatter("time", "price", source=buy, marker="triangle", size=9, color=COLORS["buy"]),
        pf.scatter(
            "time", "price", source=sell, marker="inverted_triangle", size=9, color=COLORS["sell"]
        ),
        *(
            pf.scatter("time", "price", source=exits[k], marker=m, size=10, color=c, line_width=2)
            for k, (m, c) in EXIT_MARKERS.items()
        ),
    ]
    marker_tips.renderers = rs
    pf.add_tools(marker_tips)
    legend = Legend(
        items=[
            ("buy", [rs[0]]),
            ("sell", [rs[1]]),
            *((k.replace("_", "-"), [r]) for k, r in zip(EXIT_MARKERS, rs[2:], strict=True)),
        ],
        location="top_left",
        orientation="horizontal",
    )
    style_legend(legend)
    pf.add_layout(legend)
    table = DataTable(
        source=table_src,
        columns=[
            TableColumn(field="time", title="time", formatter=DateFormatter(format="%Y-%m-%d")),
            TableColumn(field="symbol", title="symbol"),
            *(
                TableColumn(
                    field=f, title=f, formatter=NumberFormatter(format=fmt, text_align="right")
                )
                for f, fmt in (
                    ("qty", "0,0.[00]"),
                    ("price", "0,0.00"),
                    ("value", "0,0"),
                    ("commission", "0,0.00"),
                )
            ),
            TableColumn(field="reason", title="reason"),
        ],
        width=WIDTH,
        height=260,
        sortable=True,
        reorderable=False,
        index_position=None,
        row_height=24,
    )
    cb = CustomJS(
        args={
            "choice": choice_sel,
            "sym": sym_sel,
            "pdata": pdata_src,
            "cur": cur,
            "info": info,
            "infos": d.infos,
            "orders": orders_src,
            "symbols_by_choice": symbols_by_choice,
            "symbol_names": d.symbols,
            "reason_names": d.reasons,
            "table": table_src,
            "buy": buy,
            "sell": sell,
            "exit_kinds": list(EXIT_MARKERS),
            "exit_sources": list(exits.values()),
            "prices": prices_src,
            "price_view": price_view,
            "price_fig": pf,
        },
        code=script("portfolio.js"),
    )
    choice_sel.js_on_change("value", cb)
    sym_sel.js_on_change("value", cb)
    notes = [f"Selectable: the {TOP_N} best by the score and the median and worst portfolio."]
    if len(pdata["time"]) < n_t:
        notes.append(downsample_text(bars_per_point(n_t)))
    if orders is None:
        notes.append("This run wrote no orders (output.orders: false or none traded).")
    elif not d.has_close:
        notes.append(f"Close prices: {ctx.price_note}; positions are marked at fill prices.")
    parts: list[Any] = [
        row(choice_sel, sym_sel),
        info,
        row(eqf, side),
    ]
    if has_orders:
        parts += [pf, table]
    parts.append(template_div("note.html", text=" ".join(notes)))
    return column(*parts), cb
