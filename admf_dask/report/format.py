"""Numbers, dates, durations and sizes as the report's text shows them (plain text: the templates
escape it)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from admf_dask.report import _load
from admf_dask.report.figures import PERCENT_METRICS

#: what a missing or non-finite value reads as
MISSING = "–"


def seconds(s: Any) -> str:
    """``0.42 s`` below a minute, ``2.5 min`` above; a non-number as it is."""
    try:
        v = float(s)
    except (TypeError, ValueError):
        return str(s)
    return f"{v:.2f} s" if v < 60 else f"{v / 60:.1f} min"


def number(v: float, metric: str) -> str:
    """A metric value: percent for returns and drawdowns, a count for ``n_orders``."""
    if not np.isfinite(v):
        return MISSING
    if metric in PERCENT_METRICS:
        return f"{v:.1%}"
    return f"{v:,.0f}" if metric == "n_orders" else f"{v:.2f}"


def period(run: _load.RunData) -> str:
    """First and last bar date of the run."""
    if len(run.time) == 0:
        return MISSING
    return f"{run.time[0]:%Y-%m-%d} → {run.time[-1]:%Y-%m-%d}"


def nbytes(v: Any) -> str:
    """A byte count in binary units (``2.0 GiB``)."""
    try:
        b = float(v)
    except (TypeError, ValueError):
        return str(v or MISSING)
    if not math.isfinite(b) or b <= 0:
        return MISSING
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if b < 1024:
            return f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} PiB"


def cell_text(values: np.ndarray, metric: str, show: bool) -> tuple[list[str], list[str]]:
    """Heatmap cell labels (3 significant digits) and their colour (dark on light cells).

    The Grid tab's JavaScript (static/heatmap.js) computes the same after a switch.
    """
    lo, hi = (np.nanmin(values), np.nanmax(values)) if np.isfinite(values).any() else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    texts, colors = [], []
    for v in values:
        if not np.isfinite(v) or not show:
            texts.append("")
        elif metric in PERCENT_METRICS:
            texts.append(f"{float(f'{v * 100:.3g}'):g}%")
        else:
            texts.append(f"{float(f'{v:.3g}'):g}")
        colors.append("#222222" if np.isfinite(v) and (v - lo) / span > 0.62 else "#ffffff")
    return texts, colors
