"""What the Portfolio tab embeds for its few selectable portfolios: equity, drawdown and exposure
series, their orders (capped) and the close prices of the most traded symbols."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

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
    prices: pd.DataFrame | None,
    benchmark: np.ndarray | None = None,
) -> PortfolioData:
    """Equity, drawdown and exposure of each choice; its orders (capped) and close prices; the
    ``benchmark`` equity line (column ``benchmark``) when given."""
    ids = [c.pid for c in choices]
    eq = _load.equity_columns(ds["equity"], ids)
    times = run.time.values
    n_t = len(times)
    pdata: dict[str, Any] = {"time": times}
    if benchmark is not None:
        pdata["benchmark"] = np.asarray(benchmark, np.float64)
    symbols = list(run.symbols)
    if orders is not None:
        symbols += sorted(set(orders["symbol"]) - set(symbols))
    sym_pos = {s: i for i, s in enumerate(symbols)}
    price_mat = None
    if prices is not None:
        price_mat = prices.reindex(index=pd.DatetimeIndex(times), columns=symbols).to_numpy(
            np.float64
        )
    reasons = list(REASON_NAMES)  # orders.parquet's dictionary (docs/ACCOUNTING.md, exits)
    if orders is not None:
        reasons += sorted(set(orders["reason"]) - set(reasons))
    per_choice_cap = max(500, MAX_ORDER_ROWS // max(len(choices), 1))
    kept_frames, symbols_by_choice, infos = [], [], []
    traded_count: dict[str, int] = {}
    for k, c in enumerate(choices):
        pdata[f"eq_{k}"] = eq[:, k].astype(np.float32)
        pdata[f"dd_{k}"] = agg.drawdown(eq[:, k]).astype(np.float32)
        sub = orders[orders["portfolio"] == c.pid] if orders is not None else None
        n_sub = 0 if sub is None else len(sub)
        if sub is not None and n_sub:
            when = sub["time"].values.astype("datetime64[ns]")
            t_idx = np.clip(np.searchsorted(times, when, side="right") - 1, 0, n_t - 1)
            s_idx = sub["symbol"].map(sym_pos).to_numpy()
            # mark at the close; a symbol without close prices at its last fill price (in blocks
            # of bars: a long run never holds shares and marks of every bar × symbol)
            qty, fill = sub["qty"].values, sub["price"].values
            gross, net = agg.exposure_from_orders(
                t_idx, s_idx, qty, fill, len(symbols), eq[:, k], price_mat
            )
            pdata[f"gross_{k}"] = gross.astype(np.float32)
            pdata[f"net_{k}"] = net.astype(np.float32)
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
            symbols_by_choice.append([])
            infos.append(choice_info(run, c, 0, 0))
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
    # close prices of the most traded symbols only: 100 symbols × 2,520 bars would dominate the file
    price_cols: dict[str, Any] = {"time": times}
    if prices is not None:
        ranked = sorted(traded_count, key=lambda s: -traded_count[s]) or list(prices.columns)
        for s in ranked[:MAX_PRICE_SYMBOLS]:
            col = price_mat[:, sym_pos[s]]  # type: ignore[index]
            if np.isfinite(col).any():
                price_cols[s] = col.astype(np.float32)

    return PortfolioData(
        series=_load.display_columns(pdata),  # long runs: min/max per bucket of bars
        orders=odata,
        prices=_load.display_columns(price_cols),
        symbols=symbols,
        reasons=reasons,
        symbols_by_choice=symbols_by_choice,
        infos=infos,
        has_close=price_mat is not None,
    )
