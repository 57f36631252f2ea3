"""The Research tab's data: research.json, the stitched walk-forward equity and the best
full-sample portfolio's equity (read once, in `admf_dask.report.context.build_context`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from admf_dask.errors import InputError

#: most splits drawn in the IS-vs-OOS scatter (C(20, 10) = 184,756 would weigh on the page)
MAX_SCATTER = 20_000


@dataclass
class ResearchView:
    """What the Research tab shows."""

    summary: dict[str, Any]
    #: the stitched walk-forward equity and the best full-sample portfolio's, every bar (the
    #: tab draws them as min/max per bucket, like every long series of the report)
    wfo: np.ndarray | None = None
    best: np.ndarray | None = None


def load_research(run_dir: Path, ds: xr.Dataset) -> ResearchView | None:
    """research.json and the curves it refers to, or None when the run has no research."""
    path = Path(run_dir) / "research.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            str(path), f"not readable JSON ({exc})", "recompute it: admf-dask research RUN_DIR"
        ) from None
    view = ResearchView(summary=summary)
    if summary.get("walk_forward") and "wfo_equity" in ds:
        view.wfo = np.asarray(ds["wfo_equity"].values, dtype=np.float64)
        best = (summary.get("best") or {}).get("portfolio")
        if best is not None and 0 <= int(best) < int(ds.sizes["portfolio"]):
            col = ds["equity"].isel(portfolio=int(best)).values
            view.best = np.asarray(col, dtype=np.float64)
    return view


def scatter_rows(pbo: dict[str, Any], limit: int = MAX_SCATTER) -> np.ndarray:
    """Indices of the splits drawn in the scatter: all, or evenly spaced ones beyond ``limit``."""
    n = len(pbo.get("is_sharpe") or [])
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def as_float(values: list[Any] | None) -> np.ndarray:
    """JSON numbers (null for non-finite) as float64 with NaN."""
    return np.array([np.nan if v is None else float(v) for v in values or []], dtype=np.float64)
