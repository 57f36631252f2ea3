"""Research tab (docs/RESEARCH.md): PBO by CSCV with the logit histogram, the in-sample vs
out-of-sample Sharpe ratios of the selected portfolios, and the walk-forward selection (its
windows and its stitched equity against the best full-sample portfolio). Shown when the run
folder has research.json."""

from __future__ import annotations

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    DataTable,
    HoverTool,
    Legend,
    NumberFormatter,
    Span,
    StringFormatter,
    TableColumn,
    TabPanel,
)
from bokeh.plotting import figure

from admf_dask.report import _load
from admf_dask.report.context import ReportContext
from admf_dask.report.figures import (
    COLORS,
    WIDTH,
    portfolio_label,
    style,
    style_legend,
    time_figure,
)
from admf_dask.report.render import template_div
from admf_dask.report.tabs.research_data import as_float, scatter_rows

TITLE = "Research"


def build(ctx: ReportContext) -> TabPanel | None:
    """The Research tab, or None for a run without research statistics."""
    view = getattr(ctx, "research", None)
    if view is None:
        return None
    s = view.summary
    parts = [_summary(ctx, s)]
    pbo = s.get("pbo")
    if pbo:
        parts.append(row(_logit_histogram(pbo), _scatter(pbo)))
    parts += _walk_forward(ctx, view)
    return TabPanel(child=column(*parts), title=TITLE)


def _num(x, fmt: str = "{:.3f}") -> str:
    return "n/a" if x is None or x != x else fmt.format(x)


def _summary(ctx: ReportContext, s: dict):
    pbo, best, d = s.get("pbo") or {}, s.get("best") or {}, s.get("dsr") or {}
    pid = best.get("portfolio")
    return template_div(
        "research_summary.html",
        pbo=_num(pbo.get("pbo")),
        combinations=int(pbo.get("combinations") or 0),
        blocks=pbo.get("cscv_blocks", "?"),
        median_logit=_num(pbo.get("median_logit")),
        prob_oos_loss=_num(pbo.get("prob_oos_loss")),
        best=pid if pid is not None else "?",
        best_label=portfolio_label(ctx.run.params, int(pid)) if pid is not None else "",
        best_sharpe=_num(best.get("sharpe"), "{:.4f}"),
        best_psr=_num(best.get("psr")),
        best_dsr=_num(best.get("dsr")),
        sr0=_num(d.get("sr0"), "{:.4f}"),
        n_trials=int(d.get("n") or 0),
        var_sr=_num(d.get("var_sr"), "{:.2e}"),
    )


def _logit_histogram(pbo: dict):
    lam = as_float(pbo.get("logits"))
    lam = lam[np.isfinite(lam)]
    counts, edges = np.histogram(lam, bins=40) if lam.size else (np.zeros(0), np.zeros(1))
    left, right = edges[:-1], edges[1:]
    src = ColumnDataSource(
        {
            "left": left,
            "right": right,
            "count": counts.astype(np.int64),
            "color": [COLORS["worst"] if r <= 0 else COLORS["best"] for r in right],
        },
        name="research_logits",
    )
    f = figure(
        title=f"Logits λ of the {lam.size:,} splits (red: λ ≤ 0, overfit)",
        width=WIDTH // 2 - 10,
        height=340,
        tools="save",
        toolbar_location=None,
        x_axis_label="λ = ln(ω / (1 − ω)), ω = out-of-sample rank / (N + 1)",
        y_axis_label="splits",
    )
    style(f)
    f.quad(
        left="left",
        right="right",
        bottom=0,
        top="count",
        color="color",
        fill_alpha=0.75,
        line_color="#ffffff",
        source=src,
    )
    f.add_layout(Span(location=0, dimension="height", line_color="#555", line_dash="dashed"))
    f.add_tools(HoverTool(tooltips=[("λ", "@left{0.00} to @right{0.00}"), ("splits", "@count")]))
    return f


def _scatter(pbo: dict):
    rows = scatter_rows(pbo)
    is_sr = as_float(pbo.get("is_sharpe"))[rows]
    oos_sr = as_float(pbo.get("oos_sharpe"))[rows]
    sel = np.asarray(pbo.get("selected") or [0] * len(rows), dtype=np.int64)[rows]
    src = ColumnDataSource(
        {"split": rows, "portfolio": sel, "is_sharpe": is_sr, "oos_sharpe": oos_sr},
        name="research_scatter",
    )
    shown = "" if len(rows) == len(pbo.get("is_sharpe") or []) else f" ({len(rows):,} shown)"
    f = figure(
        title=f"Best in-sample portfolio of each split, out of sample{shown}",
        width=WIDTH // 2 - 10,
        height=340,
        tools="box_zoom,reset,save",
        toolbar_location="right",
        x_axis_label="in-sample Sharpe ratio per bar (the best of the grid)",
        y_axis_label="out-of-sample Sharpe ratio per bar",
    )
    style(f)
    f.scatter("is_sharpe", "oos_sharpe", source=src, size=4, alpha=0.35, color=COLORS["median"])
    f.add_layout(Span(location=0, dimension="width", line_color="#555", line_dash="dashed"))
    f.add_tools(
        HoverTool(
            tooltips=[
                ("split", "@split"),
                ("portfolio", "#@portfolio"),
                ("in-sample", "@is_sharpe{0.0000}"),
                ("out-of-sample", "@oos_sharpe{0.0000}"),
            ]
        )
    )
    return f


def _walk_forward(ctx: ReportContext, view) -> list:
    wf = view.summary.get("walk_forward")
    if not wf:
        return [
            template_div(
                "note.html",
                title="Walk-forward selection",
                text="Off for this run: set research.walk_forward (train and test bars), e.g. "
                "admf-dask research RUN_DIR --set 'research.walk_forward={train: 504, test: 63}'.",
            )
        ]
    wins = wf.get("windows") or []
    cols = ["is_from", "is_to", "oos_from", "oos_to", "portfolio", "is_sharpe", "oos_sharpe"]
    data = {"window": list(range(len(wins)))}
    for c in cols:
        data[c] = [w.get(c) for w in wins]
    for c in ("is_sharpe", "oos_sharpe"):
        data[c] = as_float(data[c])
    fmt = {"is_sharpe": "0.0000", "oos_sharpe": "0.0000"}
    table = DataTable(
        source=ColumnDataSource(data, name="research_wf_windows"),
        columns=[
            TableColumn(
                field=c,
                title=c.replace("_", " "),
                formatter=NumberFormatter(format=fmt[c], text_align="right")
                if c in fmt
                else StringFormatter(),
            )
            for c in ("window", *cols)
        ],
        width=WIDTH,
        height=min(320, 30 + 25 * len(wins)),
        index_position=None,
        sortable=True,
        reorderable=False,
        row_height=24,
        name="research_wf_table",
    )
    m = wf.get("metrics") or {}
    anchored = ", anchored" if wf.get("anchored") else ""
    text = (
        f"{len(wins)} windows (train {wf.get('train')} bars, test {wf.get('test')}{anchored}); "
        f"the stitched out-of-sample path: total return {_num(m.get('total_return'), '{:.1%}')}, "
        f"annual return {_num(m.get('annual_return'), '{:.1%}')}, sharpe "
        f"{_num(m.get('sharpe'), '{:.2f}')}, max drawdown {_num(m.get('max_drawdown'), '{:.1%}')}"
        ". Switching between portfolios costs nothing here."
    )
    parts = [template_div("note.html", title="Walk-forward selection", text=text), table]
    if view.wfo is not None:
        parts.append(_equity_figure(ctx, view))
    return parts


def _equity_figure(ctx: ReportContext, view):
    best = view.summary.get("best", {}).get("portfolio")
    data = {"time": np.asarray(ctx.run.time), "wfo": view.wfo}
    if view.best is not None:
        data["best"] = view.best
    # long runs: min/max per bucket of bars (spikes and troughs exact), as the other tabs draw
    src = ColumnDataSource(_load.display_columns(data), name="research_wf_equity")
    f = time_figure(
        "Walk-forward equity (stitched out-of-sample path) vs the best full-sample portfolio",
        WIDTH,
        360,
        y_label="equity",
        y_format="0,0",
    )
    items = [("walk-forward", [f.line("time", "wfo", source=src, color=COLORS["chosen"], width=2)])]
    if view.best is not None:
        r = f.line("time", "best", source=src, color=COLORS["best"], width=1.5, alpha=0.8)
        items.append((f"best full sample #{best} (chosen with hindsight)", [r]))
    f.add_tools(
        HoverTool(
            tooltips=[("date", "@time{%F}"), ("walk-forward", "@wfo{0,0}")]
            + ([("best", "@best{0,0}")] if view.best is not None else []),
            formatters={"@time": "datetime"},
            mode="vline",
        )
    )
    lg = Legend(items=items, orientation="horizontal")
    style_legend(lg)
    f.add_layout(lg, "above")
    return f
