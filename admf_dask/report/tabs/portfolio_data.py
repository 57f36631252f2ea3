"""What the Portfolio tab embeds for its few selectable portfolios: equity, drawdown and exposure
series, their orders (capped) and the close prices of the most traded symbols."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from admf_dask.data.dates import as_time
from admf_dask.portfolio.enums import REASON_NAMES
from admf_dask.report import _aggregate as agg
from admf_dask.report import _load
from admf_dask.report import format as fmt
from admf_dask.report.context import Choice
from admf_dask.report.render import render

#: embedded order rows across all selectable portfolios (the rest are counted, not drawn)
MAX_ORDER_ROWS = 20_000
#: symbols whose close prices are embedded (most traded by the selectable portfolios first)
MAX_PRICE_SYMBOLS = 30
#: metrics named in the selected portfolio's info line
INFO_METRICS = ("sharpe", "total_return", "max_drawdown", "n_orders", "turnover")


@dataclass
class PortfolioData:
    """The Portfolio tab's embedded data (column dicts of ColumnDataSources)."""

    series: dict[str, Any]  # time, eq_k, dd_k, gross_k, net_k (k: choice index)
    orders: dict[str, Any]  # columns choice, sym, time, qty, price, commission, reason (codes)
    prices: dict[str, Any]  # time and one close column per embedded symbol
    symbols: list[str]  # symbol names (orders.sym codes)
    reasons: list[str]  # reason names (orders.reason codes)
    symbols_by_choice: list[list[str]]  # symbols with embedded orders, most traded first
    infos: list[str]  # one HTML line per choice
    has_close: bool  # exposure marked at close prices (else at fill prices)


def choice_info(run: _load.RunData, c: Choice, n_orders: int, shown: int) -> str:
    """The HTML line above the selected portfolio's plots."""
    return str(
        render(
            "portfolio_info.html",
            pid=c.pid,
            role=c.role,
            params=[(p.name, p.levels[p.codes[c.pid]]) for p in run.params],
            metrics=[
                (k, fmt.number(float(v[c.pid]), k))
                for k, v in run.metrics.items()
                if k in INFO_METRICS
            ],
            n_orders=n_orders,
            shown=shown,
        )
    )


def portfolio_data(
    run: _load.RunData,
    ds: xr.Dataset,
    choices: list[Choice],
    orders: pd.DataFrame | None,
    prices: _load.Closes | None,
    benchmark: np.ndarray | None = None,
) -> PortfolioData:
    """Equity, drawdown and exposure of each choice; its orders (capped) and close prices; the
    ``benchmark`` equity line (column ``benchmark``) when given.

    The series are computed block by block of bars (the closes' blocks, `_load.Closes`) and
    reduced to their display points as they come (`_load.DisplaySink`): memory does not grow
    with bars × symbols.
    """
    ids = [c.pid for c in choices]
    times = run.time.values
    n_t = len(times)
    symbols = list(run.symbols)
    if orders is not None:
        symbols += sorted(set(orders["symbol"]) - set(symbols))
    sym_pos = {s: i for i, s in enumerate(symbols)}
    reasons = list(REASON_NAMES)  # orders.parquet's dictionary (docs/ACCOUNTING.md, exits)
    if orders is not None:
        reasons += sorted(set(orders["reason"]) - set(reasons))
    # the closes' columns in `symbols`; a symbol without a finite close is marked at its fills
    price_pos = np.array([sym_pos[s] for s in prices.symbols], np.int64) if prices else None
    use_close = np.zeros(len(symbols), bool)
    if prices is not None:
        use_close[price_pos] = prices.finite_any()
    per_choice_cap = max(500, MAX_ORDER_ROWS // max(len(choices), 1))
    kept_frames, symbols_by_choice, infos = [], [], []
    streams: list[agg.ExposureStream | None] = []
    traded_count: dict[str, int] = {}
    for k, c in enumerate(choices):
        sub = orders[orders["portfolio"] == c.pid] if orders is not None else None
        n_sub = 0 if sub is None else len(sub)
        if sub is not None and n_sub:
            when = as_time(sub["time"].values, times)  # the bars' unit: docs/TIME.md
            t_idx = np.clip(np.searchsorted(times, when, side="right") - 1, 0, n_t - 1)
            s_idx = sub["symbol"].map(sym_pos).to_numpy()
            # mark at the close; a symbol without close prices at its last fill price
            qty, fill = sub["qty"].values, sub["price"].values
            streams.append(
                agg.ExposureStream(
                    t_idx, s_idx, qty, fill, len(symbols), use_close if prices else None
                )
            )
            counts = sub["symbol"].value_counts(sort=True)
            keep_syms, total = [], 0
            for s, cnt in counts.items():  # whole symbols, most traded first, up to the cap
                if keep_syms and total + cnt > per_choice_cap:
                    continue
                keep_syms.append(str(s))
                total += int(cnt)
            kept = sub[sub["symbol"].isin(keep_syms)].head(per_choice_cap).assign(choice=k)
            kept_frames.append(kept)
            symbols_by_choice.append(keep_syms)
            for s, cnt in counts.items():
                traded_count[str(s)] = traded_count.get(str(s), 0) + int(cnt)
            infos.append(choice_info(run, c, n_sub, len(kept)))
        else:
            streams.append(None)
            symbols_by_choice.append([])
            infos.append(choice_info(run, c, 0, 0))
    # close prices of the most traded symbols only: 100 symbols × 2,520 bars would dominate the file
    shown: list[str] = []
    if prices is not None:
        ranked = sorted(traded_count, key=lambda s: -traded_count[s]) or list(prices.symbols)
        shown = [s for s in ranked[:MAX_PRICE_SYMBOLS] if use_close[sym_pos[s]]]

    series, price_sink = _load.DisplaySink(n_t), _load.DisplaySink(n_t)  # long runs: min/max
    eq_da = ds["equity"].transpose("time", "portfolio")
    uniq = sorted(set(ids))
    col_of = [uniq.index(i) for i in ids]
    peak = np.full(len(ids), np.nan)  # running peak of each choice's equity (drawdown)
    for a, b, close in _blocks(prices, n_t):
        if close is not None:  # the closes in the layout of `symbols` (NaN: not loaded)
            wide = np.full((b - a, len(symbols)), np.nan)
            wide[:, price_pos] = close
            close = wide
        if benchmark is not None:
            series.add("benchmark", a, np.asarray(benchmark[a:b], np.float64))
        eq = np.asarray(eq_da.isel(time=slice(a, b), portfolio=uniq).values, np.float64)
        for k in range(len(choices)):
            e = eq[:, col_of[k]]
            pk = np.fmax.accumulate(np.r_[peak[k], e])[1:]  # fmax: a NaN bar keeps the peak
            peak[k] = pk[-1]
            with np.errstate(divide="ignore", invalid="ignore"):
                dd = e / pk - 1.0  # `agg.drawdown` of the whole curve, block by block
            series.add(f"eq_{k}", a, e.astype(np.float32))
            series.add(f"dd_{k}", a, dd.astype(np.float32))
            if streams[k] is not None:
                gross, net = _exposure_blocks(streams[k], a, e, close)
                series.add(f"gross_{k}", a, gross.astype(np.float32))
                series.add(f"net_{k}", a, net.astype(np.float32))
        for s in shown:
            price_sink.add(s, a, close[:, sym_pos[s]].astype(np.float32))  # type: ignore[index]

    allo = pd.concat(kept_frames, ignore_index=True) if kept_frames else None
    odata: dict[str, Any] = {
        k: [] for k in ("choice", "sym", "time", "qty", "price", "commission", "reason")
    }
    if allo is not None:
        odata = {
            "choice": allo["choice"].to_numpy(np.int32),
            "sym": allo["symbol"].map(sym_pos).to_numpy(np.int32),
            "time": allo["time"].values,
            "qty": allo["qty"].to_numpy(np.float64),
            "price": allo["price"].to_numpy(np.float64),
            "commission": (
                allo["commission"].to_numpy(np.float64)
                if "commission" in allo
                else np.zeros(len(allo))
            ),
            "reason": allo["reason"].map({r: i for i, r in enumerate(reasons)}).to_numpy(np.int32),
        }
    return PortfolioData(
        series=series.columns(times),
        orders=odata,
        prices=price_sink.columns(times),
        symbols=symbols,
        reasons=reasons,
        symbols_by_choice=symbols_by_choice,
        infos=infos,
        has_close=prices is not None,
    )


#: bars per exposure step: its temporaries are a few (bars × symbols) float64 arrays
EXPOSURE_BLOCK = 16_384
#: bars per block when there are no closes to read
BLOCK = 65_536


def _blocks(prices: _load.Closes | None, n_t: int) -> Any:
    """``(a, b, closes of bars a:b or None)`` over the run's bars, in time order."""
    if prices is not None:
        yield from prices.blocks()
        return
    for a in range(0, n_t, BLOCK):
        yield a, min(n_t, a + BLOCK), None


def _exposure_blocks(
    stream: agg.ExposureStream, a: int, eq: np.ndarray, close: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """`ExposureStream.step` over bars ``a : a + len(eq)`` in steps of `EXPOSURE_BLOCK`."""
    gross, net = np.empty(len(eq)), np.empty(len(eq))
    for i in range(0, len(eq), EXPOSURE_BLOCK):
        j = min(len(eq), i + EXPOSURE_BLOCK)
        gross[i:j], net[i:j] = stream.step(a + i, eq[i:j], None if close is None else close[i:j])
    return gross, net
