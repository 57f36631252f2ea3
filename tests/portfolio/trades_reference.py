"""A slow, plain-Python reading of docs/TRADES.md: trades re-derived from an order ledger.

Written from the contract with Python floats, dicts and loops (pandas only to read the input).
The one choice §2c leaves open is when a running sum of fills is "back to 0": a fill that leaves
``|q| <= CLOSE_RTOL * (largest |q| of the trade)`` closes it (the kernel makes the same choice,
see admf_dask/portfolio/_trades.py: the sum of rounded ``qty`` can miss 0 by a few ulps).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

CLOSE_RTOL = 1e-10

COLUMNS = [
    "portfolio",
    "symbol",
    "side",
    "entry_time",
    "exit_time",
    "n_fills",
    "entry_price",
    "exit_price",
    "pnl",
    "cost",
    "return",
    "bars",
    "mfe",
    "mae",
]


def reference_trades(orders: pd.DataFrame, closes: pd.DataFrame) -> pd.DataFrame:
    """Trades of an order ledger.

    Parameters
    ----------
    orders : DataFrame
        ``portfolio, time, symbol, qty, price, commission``; the fills of one (portfolio,
        symbol) in the order they happened.
    closes : DataFrame
        Closes, index = the bar times (in order), one column per symbol; nan = missing.

    Returns
    -------
    DataFrame
        One row per trade, the columns of §2c (``exit_time`` None while open at the last bar).
    """
    bar_of = {t: i for i, t in enumerate(closes.index)}
    times = list(closes.index)
    last_bar = len(times) - 1
    col = {c: [float(x) for x in closes[c].tolist()] for c in closes.columns}
    rows: list[dict[str, Any]] = []
    book: dict[tuple, list[tuple]] = {}
    for r in orders.itertuples(index=False):
        book.setdefault((r.portfolio, r.symbol), []).append(
            (bar_of[r.time], float(r.qty), float(r.price), float(r.commission))
        )

    def emit(key, side, fills, exit_bar, q):
        # fills: (bar, qty part, px, commission part, grew)
        p, s = key
        grow = [(abs(d), px) for _, d, px, _, g in fills if g]
        shrink = [(abs(d), px) for _, d, px, _, g in fills if not g]
        cost = sum(a * px for a, px in grow)
        entry_price = cost / sum(a for a, _ in grow)
        exit_price = (
            sum(a * px for a, px in shrink) / sum(a for a, _ in shrink) if shrink else math.nan
        )
        pnl = 0.0
        for _, d, px, fee, _ in fills:
            pnl += -d * px - fee
        entry_bar = fills[0][0]
        if exit_bar is None:
            last = [c for c in col[s] if math.isfinite(c)]
            pnl += q * last[-1] if last else 0.0
            window = col[s][entry_bar : last_bar + 1]
            bars = last_bar - entry_bar
        else:
            window = col[s][entry_bar:exit_bar]
            bars = exit_bar - entry_bar
        moves = [side * (c / entry_price - 1.0) for c in window if math.isfinite(c)]
        rows.append(
            {
                "portfolio": p,
                "symbol": s,
                "side": side,
                "entry_time": times[entry_bar],
                "exit_time": None if exit_bar is None else times[exit_bar],
                "n_fills": len(fills),
                "entry_price": entry_price,
                "exit_price": exit_price,
                "pnl": pnl,
                "cost": cost,
                "return": pnl / cost,
                "bars": bars,
                "mfe": max([0.0, *moves]),
                "mae": min([0.0, *moves]),
            }
        )

    for key, seq in book.items():
        q = 0.0
        peak = 0.0
        side = 0
        fills: list[tuple] = []
        for t, d, px, fee in seq:
            if side == 0:  # opens
                side = 1 if d > 0 else -1
                q, peak, fills = d, abs(d), [(t, d, px, fee, True)]
                continue
            qn = q + d
            if abs(qn) <= CLOSE_RTOL * peak:  # back to 0: closes
                fills.append((t, d, px, fee, False))
                emit(key, side, fills, t, 0.0)
                q, side, fills = 0.0, 0, []
            elif (qn > 0) == (side > 0):  # same side: grows or shrinks
                fills.append((t, d, px, fee, d * side > 0))
                q = qn
                peak = max(peak, abs(qn))
            else:  # flips: -q closes this trade, the rest opens the next one
                qc, qo = -q, qn
                fc = fee * abs(qc) / (abs(qc) + abs(qo))
                fo = fee * abs(qo) / (abs(qc) + abs(qo))
                fills.append((t, qc, px, fc, False))
                emit(key, side, fills, t, 0.0)
                side = 1 if qo > 0 else -1
                q, peak, fills = qo, abs(qo), [(t, qo, px, fo, True)]
        if side != 0:
            emit(key, side, fills, None, q)
    out = pd.DataFrame(rows, columns=COLUMNS)
    floats = ["entry_price", "exit_price", "pnl", "cost", "return", "mfe", "mae"]
    return out.astype({c: "float64" for c in floats})


def reference_trade_metrics(trades: pd.DataFrame, portfolios: list) -> dict[str, list[float]]:
    """§2c's per-portfolio metrics, one list per metric in the order of ``portfolios``."""
    out: dict[str, list[float]] = {
        k: [] for k in ("n_trades", "win_rate", "profit_factor", "expectancy", "avg_bars")
    }
    for p in portfolios:
        mine = trades[trades["portfolio"] == p]
        closed = mine[mine["exit_time"].notna()]
        pnl = [float(x) for x in closed["pnl"]]
        out["n_trades"].append(len(mine))
        if not pnl:
            for k in ("win_rate", "profit_factor", "expectancy", "avg_bars"):
                out[k].append(math.nan)
            continue
        pos = sum(x for x in pnl if x > 0)
        neg = sum(x for x in pnl if x < 0)
        out["win_rate"].append(sum(1 for x in pnl if x > 0) / len(pnl))
        out["profit_factor"].append(math.inf if neg == 0 else pos / abs(neg))
        out["expectancy"].append(sum(pnl) / len(pnl))
        out["avg_bars"].append(sum(int(b) for b in closed["bars"]) / len(pnl))
    return out
