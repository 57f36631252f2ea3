"""ML tab: out-of-sample quality per walk-forward fold, and where each model task ran (shown
only for runs with ML strategies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    DataTable,
    FactorRange,
    HoverTool,
    Legend,
    NumberFormatter,
    Span,
    StringFormatter,
    TableColumn,
    TabPanel,
)
from bokeh.plotting import figure
from bokeh.transform import dodge

from admf_dask.report.context import ReportContext
from admf_dask.report.figures import COLORS, WIDTH, style, style_legend
from admf_dask.report.render import template_div

TITLE = "ML"
#: most ML tasks drawn on the timeline (the longest; run.json's trace has them all)
MAX_TASKS = 5_000


def build(ctx: ReportContext) -> TabPanel | None:
    """The ML tab, or None for a run without ML strategies."""
    m = ctx.run.manifest
    if not has_ml(m):
        return None
    parts = _folds(m) + _trace(m)
    if not parts:
        parts.append(
            template_div(
                "note.html",
                text="ML strategies are configured but the run recorded no fold quality or trace.",
            )
        )
    return TabPanel(child=column(*parts), title=TITLE)


def has_ml(m: dict[str, Any]) -> bool:
    """Whether the run has ML strategies (configured, or fold records or a trace written)."""
    kinds = {"xgboost", "lstm", "mlp"}
    strategies = (m.get("config") or {}).get("strategies") or {}
    in_config = any(isinstance(s, dict) and s.get("kind") in kinds for s in strategies.values())
    return bool(m.get("ml")) or bool(m.get("trace")) or in_config


def _to_seconds(values: Sequence[Any]) -> np.ndarray:
    """Trace times as epoch seconds: numbers pass through, strings are parsed as timestamps."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = float(v)
        elif v is not None:
            try:
                out[i] = pd.Timestamp(v).timestamp()
            except (ValueError, TypeError):
                pass
    return out


def _folds(m: dict[str, Any]) -> list[Any]:
    """Per-fold quality: a table and bars of IC / rank IC and accuracy / AUC."""
    rows = [
        {"strategy": str(name), **rec}
        for name, recs in (m.get("ml") or {}).items()
        for rec in (recs or [])
        if isinstance(rec, dict)
    ]
    if not rows:
        return []
    df = pd.DataFrame(rows)
    df["fold"] = df.get("fold", pd.Series(range(len(df)))).astype(str)
    cols = [
        c
        for c in (
            "strategy",
            "fold",
            "train_start",
            "train_end",
            "predict_start",
            "predict_end",
            "n_train",
            "n_eval",
            "status",
            "ic",
            "rank_ic",
            "accuracy",
            "auc",
        )
        if c in df
    ]
    tdf = df[cols].copy()
    for c in ("train_start", "train_end", "predict_start", "predict_end"):
        if c in tdf:
            tdf[c] = pd.to_datetime(tdf[c], errors="coerce").dt.strftime("%Y-%m-%d")
    numfmt = {
        "n_train": "0,0",
        "n_eval": "0,0",
        "ic": "0.0000",
        "rank_ic": "0.0000",
        "accuracy": "0.00%",
        "auc": "0.000",
    }
    table = DataTable(
        source=ColumnDataSource(tdf),
        columns=[
            TableColumn(
                field=c,
                title=c,
                formatter=NumberFormatter(format=numfmt[c], text_align="right")
                if c in numfmt
                else StringFormatter(),
            )
            for c in cols
        ],
        width=WIDTH,
        height=min(320, 30 + 25 * len(tdf)),
        index_position=None,
        sortable=True,
        reorderable=False,
        row_height=24,
    )
    parts = [template_div("heading.html", title="Walk-forward folds: out-of-sample quality"), table]
    df["x"] = list(zip(df["strategy"], df["fold"], strict=True))
    factors = list(dict.fromkeys(df["x"]))
    src = ColumnDataSource(
        {
            "x": df["x"].tolist(),
            **{
                c: pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
                for c in ("ic", "rank_ic", "accuracy", "auc")
                if c in df
            },
        }
    )
    figs = []
    for title, pair, ref in (
        ("IC and rank IC per fold", ("ic", "rank_ic"), 0.0),
        ("Accuracy and AUC per fold", ("accuracy", "auc"), 0.5),
    ):
        have = [c for c in pair if c in df]
        if not have:
            continue
        f = figure(
            title=title,
            x_range=FactorRange(*factors),
            width=WIDTH // 2 - 10,
            height=300,
            tools="save",
            toolbar_location=None,
        )
        style(f)
        f.xgrid.grid_line_color = None
        items = []
        for j, (c, color) in enumerate(zip(have, (COLORS["bar1"], COLORS["bar2"]), strict=False)):
            off = (j - (len(have) - 1) / 2) * 0.36
            r = f.vbar(
                x=dodge("x", off, range=f.x_range),
                top=c,
                width=0.34,
                source=src,
                color=color,
            )
            items.append((c, [r]))
        f.add_layout(Span(location=ref, dimension="width", line_color="#888", line_dash="dashed"))
        f.add_tools(HoverTool(tooltips=[("fold", "@x")] + [(c, f"@{c}{{0.000}}") for c in have]))
        lg = Legend(items=items, orientation="horizontal")
        style_legend(lg)
        f.add_layout(lg, "above")
        f.xaxis.major_label_orientation = 0.0
        figs.append(f)
    if figs:
        parts.append(row(*figs))
    return parts


def _trace(m: dict[str, Any]) -> list[Any]:
    """Where and how long each ML task ran: one bar per task on its worker's row."""
    trace = [t for t in (m.get("trace") or []) if isinstance(t, dict)]
    if not trace:
        return []
    tr = pd.DataFrame(trace)
    start = _to_seconds(tr.get("start", pd.Series([None] * len(tr))).tolist())
    stop = _to_seconds(tr.get("stop", pd.Series([None] * len(tr))).tolist())
    t0 = np.nanmin(start) if np.isfinite(start).any() else 0.0
    tr["left"], tr["right"] = start - t0, stop - t0
    tr["duration"] = stop - start
    tr["worker"] = tr.get("worker", pd.Series(["?"] * len(tr))).astype(str)
    if "worker_name" in tr:  # 'ml-0 · tcp://…' reads better than the address alone
        named = tr["worker_name"].fillna("").astype(str)
        tr["worker"] = np.where(named != "", named + " · " + tr["worker"], tr["worker"])
    tr["stage"] = tr.get("stage", pd.Series(["task"] * len(tr))).astype(str)
    tr["color"] = [COLORS.get(s, "#888888") for s in tr["stage"]]
    for c in ("key", "model_id", "fold", "strategy"):
        tr[c] = tr[c].astype(str) if c in tr else ""
    tr = tr[np.isfinite(tr["left"]) & np.isfinite(tr["right"])]
    busy = tr.groupby("worker")["duration"].sum()  # of every task, drawn or not
    n_tasks = len(tr)
    if n_tasks > MAX_TASKS:  # a bounded page: the longest tasks are the ones worth seeing
        tr = tr.nlargest(MAX_TASKS, "duration", keep="first").sort_index()
    workers = sorted(tr["worker"].unique())
    f = figure(
        title="Where and how long models ran (one bar per ML task)",
        y_range=FactorRange(*workers),
        width=WIDTH,
        height=int(min(420, 110 + 44 * len(workers))),
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        active_scroll=None,
        x_axis_label="seconds since the first ML task started",
    )
    style(f)
    f.ygrid.grid_line_color = None
    items = []
    for stage in sorted(tr["stage"].unique()):
        sub = tr[tr["stage"] == stage]
        r = f.hbar(
            y="worker",
            left="left",
            right="right",
            height=0.6,
            color="color",
            fill_alpha=0.8,
            line_color="#ffffff",
            source=ColumnDataSource(
                sub[
                    [
                        "worker",
                        "left",
                        "right",
                        "duration",
                        "stage",
                        "strategy",
                        "key",
                        "model_id",
                        "fold",
                        "color",
                    ]
                ]
            ),
        )
        items.append((stage, [r]))
    f.add_tools(
        HoverTool(
            tooltips=[
                ("stage", "@stage"),
                ("strategy", "@strategy"),
                ("worker", "@worker"),
                ("model", "@model_id"),
                ("fold", "@fold"),
                ("key", "@key"),
                ("duration", "@duration{0.000} s"),
            ]
        )
    )
    lg = Legend(items=items, orientation="horizontal")
    style_legend(lg)
    f.add_layout(lg, "above")
    return [
        template_div(
            "ml_workers.html",
            n_tasks=n_tasks,
            shown=len(tr),
            busy=[(str(w), float(v)) for w, v in busy.items()],
        ),
        f,
    ]
