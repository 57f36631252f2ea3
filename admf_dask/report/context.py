"""What every tab of the report reads: the loaded run, its score, highlighted and selectable
portfolios, orders and prices (`ReportContext`, built once by `build_context`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from bokeh.models import ColumnDataSource, CustomJS

from admf_dask.dasktools.fs import Loc
from admf_dask.errors import InputError
from admf_dask.report import _aggregate as agg
from admf_dask.report import _load
from admf_dask.report.figures import Line, highlighted_lines, portfolio_label

#: Portfolio tab: how many top portfolios (by the score) besides best/median/worst
TOP_N = 5


@dataclass
class Choice:
    """A portfolio selectable on the Portfolio tab."""

    role: str
    pid: int
    label: str


@dataclass
class ReportContext:
    """The inputs of the tabs; each tab's ``build(ctx)`` reads what it needs from here.

    Attributes
    ----------
    run : RunData
        Manifest, grid parameters, metrics, time axis and symbols of the run.
    ds : xarray.Dataset
        ``results.zarr`` (open while the tabs are built; read lazily, never whole).
    score_name, score : str, numpy.ndarray
        The ranking metric (sharpe, else total return) per portfolio.
    pick : numpy.ndarray
        ``score`` with duplicate portfolios set to NaN: the best/median/worst lists pick from it.
    band : Band
        Quantiles of all equity curves over time.
    lines : list of Line
        The highlighted best, median and worst curves.
    choices : list of Choice
        The portfolios selectable on the Portfolio tab.
    orders : pandas.DataFrame or None
        Orders of the choices (None: the run wrote none); ``n_orders``: all orders of the run.
    prices : Closes or None
        Close prices of the traded symbols on the run's bars, read block by block
        (`_load.Closes`), with ``price_note`` saying where they came from.
    top : int
        How many top portfolios are selectable.
    on_ready : list of CustomJS
        Callbacks the page runs once when the document is ready (a tab appends its own).
    research : ResearchView or None
        research.json with the walk-forward and best full-sample curves (Research tab).
    benchmark : tuple of (str, numpy.ndarray) or None
        ``portfolios.benchmark`` and its buy-and-hold equity per bar (`_load.benchmark_equity`),
        drawn on the equity charts; None without a benchmark.
    """

    run: _load.RunData
    ds: xr.Dataset
    score_name: str
    score: np.ndarray
    pick: np.ndarray
    band: _load.Band
    lines: list[Line]
    choices: list[Choice]
    orders: pd.DataFrame | None
    n_orders: int
    prices: _load.Closes | None
    price_note: str
    top: int = TOP_N
    on_ready: list[CustomJS] = field(default_factory=list)
    #: research.json and its curves (`tabs.research_data.ResearchView`), None without research
    research: Any = None
    benchmark: tuple[str, np.ndarray] | None = None

    @cached_property
    def metrics_source(self) -> ColumnDataSource:
        """One row per portfolio (shared by the Metrics table and the Grid heatmap's JS)."""
        return metrics_source(self.run, self.score)


def build_context(
    run_dir: Path,
    ds: xr.Dataset,
    chosen_portfolio: int | None,
    market_data: xr.Dataset | None,
    top: int,
    data_dir: Path | Loc | None = None,
) -> ReportContext:
    """Load and rank what the tabs show (the same inputs for every tab); `data_dir`: where
    orders.parquet/ is when not in `run_dir` (a run being written to a store)."""
    from admf_dask.report.tabs.research_data import load_research  # tabs import this module

    run = _load.load_run(run_dir, ds)
    if chosen_portfolio is not None and not 0 <= chosen_portfolio < run.n_portfolios:
        raise InputError(
            "chosen_portfolio",
            f"portfolio {chosen_portfolio} is out of range",
            f"pick an id in 0…{run.n_portfolios - 1}",
        )
    score_name, score_values = score(run, ds)
    band = _load.equity_band(ds["equity"])
    pick = _load.distinct_score(run, ds, score_values)  # best/worst: one portfolio per duplicate
    lines = highlighted_lines(ds["equity"], pick, run.params, score_name)
    picked = choices(run, score_values, score_name, chosen_portfolio, top, pick)
    orders, n_orders = _load.read_orders(
        run_dir if data_dir is None else data_dir, [c.pid for c in picked]
    )
    prices, price_note = (None, "the run wrote no orders")
    if orders is not None:
        traded = sorted(set(orders["symbol"]))
        prices, price_note = _load.load_prices(run.manifest, traded, market_data, run.time.values)
    return ReportContext(
        run=run,
        ds=ds,
        score_name=score_name,
        score=score_values,
        pick=pick,
        band=band,
        lines=lines,
        choices=picked,
        orders=orders,
        n_orders=n_orders,
        prices=prices,
        price_note=price_note,
        top=top,
        research=load_research(run_dir, ds),
        benchmark=_load.benchmark_equity(run.manifest, run.time.values, market_data, prices),
    )


def score(run: _load.RunData, ds: xr.Dataset) -> tuple[str, np.ndarray]:
    """The ranking metric: sharpe, else total return (from the metrics or from the curves)."""
    for name in ("sharpe", "total_return"):
        v = run.metrics.get(name)
        if v is not None and np.isfinite(v).any():
            return name, v
    first, last = (np.asarray(ds["equity"].isel(time=i).values, np.float64) for i in (0, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return "total_return", last / first - 1.0


def choices(
    run: _load.RunData,
    score: np.ndarray,
    score_name: str,
    chosen: int | None,
    top: int,
    pick: np.ndarray | None = None,
) -> list[Choice]:
    """Best, median, worst and top portfolios by ``pick`` (default ``score``; NaN: not picked)."""
    pick = score if pick is None else pick
    best, median, worst = agg.pick_best_median_worst(pick)
    roles: list[tuple[str, int]] = []
    if chosen is not None:
        roles.append(("chosen", chosen))
    roles += [("best", best), ("median", median), ("worst", worst)]
    roles += [(f"top {k + 1}", int(p)) for k, p in enumerate(agg.top_n(pick, top)) if k > 0]
    merged: dict[int, list[str]] = {}
    for role, pid in roles:
        merged.setdefault(pid, []).append(role)
    out = []
    for pid, rs in merged.items():
        grid = portfolio_label(run.params, pid, max_len=60)
        s = score[pid]
        label = f"{' / '.join(rs)} · #{pid}" + (f" · {grid}" if grid else "")
        if np.isfinite(s):
            label += f" · {score_name} {s:.2f}"
        out.append(Choice(rs[0], pid, label))
    return out


def small_codes(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Level codes in the smallest integer type that holds them (they are embedded per row)."""
    return codes.astype(np.int8 if n_levels < 128 else np.int16 if n_levels < 32768 else np.int32)


def metrics_source(run: _load.RunData, score: np.ndarray) -> ColumnDataSource:
    """One row per portfolio, best score first: id, grid values, level codes (for the JS filters
    and the heatmap), metrics.

    float32 and small integer codes: at 10,000 portfolios this source is most of the data.
    """
    n = run.n_portfolios
    order = np.concatenate([agg.top_n(score, n), np.flatnonzero(~np.isfinite(score))])
    data: dict[str, Any] = {"portfolio": order.astype(np.int32)}
    for p in run.params:
        data[p.name] = (
            np.asarray(p.values, np.float32)[order]
            if p.numeric
            else [p.levels[c] for c in p.codes[order]]  # labels: 'none' for missing
        )
        data[f"_c_{p.name}"] = small_codes(p.codes[order], len(p.levels))
    for k, v in run.metrics.items():
        data[k] = np.asarray(v, np.float32)[order]
    return ColumnDataSource(data, name="metrics_source")
