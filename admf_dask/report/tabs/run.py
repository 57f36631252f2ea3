"""Run tab: what ran on which data (identifiers, grid, cache, prices), time per stage, the cluster,
versions, all warnings and the resolved configuration."""

from __future__ import annotations

import json
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, TabPanel
from bokeh.plotting import figure

from admf_dask.report import _load
from admf_dask.report import format as fmt
from admf_dask.report.context import ReportContext
from admf_dask.report.figures import COLORS, WIDTH, style
from admf_dask.report.render import template_div

TITLE = "Run"
#: symbols and grid values listed by name (the rest are counted)
MAX_SYMBOLS, MAX_LEVELS = 20, 12


def build(ctx: ReportContext) -> TabPanel:
    """The Run tab."""
    m = ctx.run.manifest
    right: list[Any] = []
    tf = stage_times(m.get("timings") or {})
    if tf is not None:
        right.append(tf)
    cluster = m.get("cluster") or {}
    workers = cluster.get("workers") or []
    right.append(
        template_div(
            "run_cluster.html",
            width=WIDTH - 700,
            scheduler=cluster.get("scheduler", fmt.MISSING),
            dashboard=cluster.get("dashboard", fmt.MISSING),
            n_workers=len(workers),
            workers=[_worker_row(w) for w in workers if isinstance(w, dict)],
            versions=list((m.get("versions") or {}).items()),
        )
    )
    parts: list[Any] = [row(summary(ctx.run, ctx.n_orders, ctx.price_note), column(*right))]
    warns = m.get("warnings") or []
    if warns:
        parts.append(template_div("run_warnings.html", warnings=warns))
    cfg = m.get("config")
    if cfg:
        config = json.dumps(cfg, indent=2, default=str)
        parts.append(template_div("run_config.html", config=config))
    return TabPanel(child=column(*parts), title=TITLE)


def summary(run: _load.RunData, n_orders: int, price_note: str) -> Any:
    """The left column: the run's identifiers, data, grid, cache outcome and folder."""
    m = run.manifest
    data = m.get("data") or {}
    return template_div(
        "run_summary.html",
        width=680,
        name=m.get("name", fmt.MISSING),
        run_id=m.get("run_id", fmt.MISSING),
        config_hash=m.get("config_hash", fmt.MISSING),
        source=data.get("source", fmt.MISSING),
        fingerprint=str(data.get("fingerprint", fmt.MISSING))[:24],
        period=fmt.period(run),
        n_bars=len(run.time),
        n_symbols=len(run.symbols),
        symbols=run.symbols[:MAX_SYMBOLS],
        more_symbols=max(0, len(run.symbols) - MAX_SYMBOLS),
        n_portfolios=run.n_portfolios,
        grid=[
            {"name": p.name, "levels": p.levels[:MAX_LEVELS], "more": len(p.levels) > MAX_LEVELS}
            for p in run.params
        ],
        n_orders=n_orders,
        cache=list((m.get("cache") or {}).items()),
        price_note=price_note,
        folder=run.run_dir,
    )


def stage_times(timings: dict[str, Any]) -> figure | None:
    """Bars of the seconds per pipeline stage (None when the manifest has no timings)."""
    seconds = {
        str(k): float(v)
        for k, v in timings.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    stages = [k for k in seconds if k != "total"]
    if not stages:
        return None
    src = ColumnDataSource({"stage": stages, "seconds": [seconds[k] for k in stages]})
    total = seconds.get("total")
    tf = figure(
        title="Time per stage" + (f" (total {fmt.seconds(total)})" if total else ""),
        y_range=FactorRange(*reversed(stages)),
        width=560,
        height=50 + 34 * len(stages),
        tools="save",
        toolbar_location=None,
        x_axis_label="seconds",
    )
    style(tf)
    tf.ygrid.grid_line_color = None
    tf.hbar(y="stage", right="seconds", height=0.65, source=src, color=COLORS["bar1"])
    tf.add_tools(HoverTool(tooltips=[("stage", "@stage"), ("seconds", "@seconds{0.000}")]))
    tf.x_range.start = 0
    return tf


def _worker_row(w: dict[str, Any]) -> list[Any]:
    resources = ", ".join(f"{k}={v}" for k, v in (w.get("resources") or {}).items())
    return [
        w.get("name", ""),
        w.get("address", ""),
        w.get("nthreads", ""),
        fmt.nbytes(w.get("memory_limit")),
        resources or fmt.MISSING,
    ]
