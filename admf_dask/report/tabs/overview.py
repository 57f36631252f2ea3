"""Overview tab: headline cards, the equity band with best/median/worst, drawdowns, and the score's
distribution."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import Div, NumeralTickFormatter, Span, TabPanel
from bokeh.plotting import figure

from admf_dask.report import _load
from admf_dask.report import format as fmt
from admf_dask.report.context import ReportContext
from admf_dask.report.figures import (
    COLORS,
    WIDTH,
    Line,
    _band_plot,
    _drawdown_plot,
    axis_format,
    band_source,
    style,
)
from admf_dask.report.render import template_div

TITLE = "Overview"


def build(ctx: ReportContext) -> TabPanel:
    """The Overview tab."""
    run, lines = ctx.run, ctx.lines
    bench_symbol, bench = ctx.benchmark or (None, None)
    src = band_source(run.time.values, ctx.band, lines, benchmark=bench)
    eq = _band_plot(
        src,
        ctx.band,
        lines,
        title=f"Equity: best, median and worst of {run.n_portfolios:,} portfolios by "
        f"{ctx.score_name}, over the distribution of all",
        width=WIDTH,
        height=420,
        benchmark=bench_symbol,
    )
    dd = _drawdown_plot(src, lines, x_range=eq.x_range, width=WIDTH - 470, height=260)
    hist = histogram(ctx.score, ctx.score_name, lines, width=460)
    top = header(run, ctx.score_name, ctx.score, lines, ctx.n_orders)
    return TabPanel(child=column(top, eq, row(dd, hist)), title=TITLE)


def header(
    run: _load.RunData, score_name: str, score: np.ndarray, lines: Sequence[Line], n_orders: int
) -> Div:
    """Run name, identifiers, cards (sizes, the highlighted portfolios' score, run time) and
    the first warnings."""
    m = run.manifest
    data = m.get("data") or {}
    cards = [
        ("Portfolios", f"{run.n_portfolios:,}", ""),
        ("Symbols", f"{len(run.symbols):,}", ""),
        ("Bars", f"{len(run.time):,}", ""),
    ]
    for ln, cls in zip(lines, ("good", "mid", "bad"), strict=False):
        value = fmt.number(float(score[ln.portfolio]), score_name)
        cards.append((f"{ln.role} {score_name}", value, cls))
    if "max_drawdown" in run.metrics and lines:
        dd = float(run.metrics["max_drawdown"][lines[0].portfolio])
        # that portfolio's drawdown, not the best drawdown of all
        cards.append(
            (f"max DD of {lines[0].role} {score_name}", fmt.number(dd, "max_drawdown"), "")
        )
    cards.append(("Orders", f"{n_orders:,}" if n_orders else fmt.MISSING, ""))
    total = (m.get("timings") or {}).get("total")
    if total is not None:
        cards.append(("Run time", fmt.seconds(total), ""))
    return template_div(
        "overview_header.html",
        name=m.get("name") or (m.get("config") or {}).get("name") or run.run_dir.name,
        run_id=m.get("run_id", fmt.MISSING),
        source=data.get("source", fmt.MISSING),
        period=fmt.period(run),
        config_hash=str(m.get("config_hash", fmt.MISSING))[:12],
        cards=[{"key": k, "value": v, "cls": c} for k, v, c in cards],
        warnings=[str(w) for w in m.get("warnings") or []],
    )


def histogram(values: np.ndarray, name: str, lines: Sequence[Line], width: int) -> figure:
    """Histogram of the score over all portfolios, a vertical line per highlighted portfolio."""
    v = values[np.isfinite(values)]
    fig = figure(
        title=f"Distribution of {name} ({v.size:,} portfolios)",
        width=width,
        height=260,
        tools="save",
        toolbar_location=None,
        x_axis_label=name,
        y_axis_label="portfolios",
    )
    style(fig)
    if v.size:
        counts, edges = np.histogram(v, bins=min(40, max(5, int(np.sqrt(v.size)))))
        fig.quad(
            top=counts,
            bottom=0,
            left=edges[:-1],
            right=edges[1:],
            fill_color=COLORS["band"],
            fill_alpha=0.55,
            line_color="#ffffff",
        )
        for ln in lines:
            x = values[ln.portfolio]
            if np.isfinite(x):
                fig.add_layout(
                    Span(
                        location=float(x),
                        dimension="height",
                        line_color=COLORS.get(ln.role, "#333"),
                        line_width=2,
                    )
                )
        fig.xaxis.formatter = NumeralTickFormatter(format=axis_format(name))
    fig.y_range.start = 0
    return fig
