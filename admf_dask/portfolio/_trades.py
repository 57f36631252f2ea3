"""Numba kernels of the trade ledger (docs/TRADES.md, docs/TRADES.md): ndarrays in, ndarrays out.

Trades are derived from the order records of one time chunk at a time. What a trade still open at
the chunk's end needs later (its side, shares, fill sums, pnl so far, the extreme closes since its
entry) stays in a per-(portfolio, symbol) `TradeState` that the calls update in place, so
consecutive calls over consecutive chunks give exactly the trades of one call over the whole
series. Per-portfolio accumulators of the closed trades give the trade metrics at the end.

Order records may come in any order across (portfolio, symbol) pairs, but the fills of one pair
must be in the order they happened (time, then record order within a bar: an intrabar exit follows
the fill at the open of the same bar). Each pair is independent, so nothing else is assumed.

MFE / MAE: for a fixed entry price ``e > 0``, ``side * (C/e - 1)`` is monotone in ``C`` (and so is
its rounded value), so the max / min over a trade's bars only needs the max and min finite close
of its symbol over ``[entry bar, exit bar - 1]``. Closes are shared by every portfolio of a batch:
a sparse table per chunk answers any bar range of a symbol in O(1), and a trade that crosses a
chunk border carries its running extremes in the state. The entry price is the final weighted
mean of the growing fills, so mfe / mae are computed from the extremes when the trade closes.

When is a position back to 0? A fill's ``qty`` is ``Q - q`` of the accounting kernel, rounded; the
running sum of a trade's ``qty`` can miss 0 by a few ulps of its size. A fill that leaves
``|q| <= CLOSE_RTOL * (largest |q| of the trade)`` closes the trade (q = 0); anything smaller is
rounding noise of the sum, not a position.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

#: a fill that leaves |q| at most this share of the trade's largest |q| brings q back to 0
CLOSE_RTOL = 1e-10

#: one trade (``trades.parquet`` before bars become times): ``exit_bar`` -1 while open
TRADE_DTYPE = np.dtype(
    [
        ("portfolio", np.int32),
        ("symbol", np.int32),
        ("side", np.int8),
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("n_fills", np.int32),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("pnl", np.float64),
        ("cost", np.float64),
        ("return", np.float64),
        ("bars", np.int64),
        ("mfe", np.float64),
        ("mae", np.float64),
    ]
)

#: per-portfolio trade metrics, in `finalize_trades` order
TRADE_METRIC_NAMES: tuple[str, ...] = (
    "n_trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_bars",
)


# columns of the trade tables of `trades_chunk` / `open_trades` (rows of ``ints`` / ``floats``)
TI_PORTFOLIO = 0
TI_SYMBOL = 1
TI_SIDE = 2
TI_ENTRY = 3
TI_EXIT = 4  # -1 while open
TI_FILLS = 5
TI_BARS = 6
N_TI = 7
TFL_ENTRY_PRICE = 0
TFL_EXIT_PRICE = 1
TFL_PNL = 2
TFL_COST = 3
TFL_RETURN = 4
TFL_MFE = 5
TFL_MAE = 6
N_TFL = 7
INT_COLUMNS = ("portfolio", "symbol", "side", "entry_bar", "exit_bar", "n_fills", "bars")
FLOAT_COLUMNS = ("entry_price", "exit_price", "pnl", "cost", "return", "mfe", "mae")


class TradeState(NamedTuple):
    """Open trades of a batch per (portfolio, symbol), and closed-trade accumulators per portfolio.

    Attributes
    ----------
    side : int8 (P, S)
        0 flat, 1 long, -1 short.
    q : float64 (P, S)
        Shares of the open trade (running sum of its fills' qty).
    q_peak : float64 (P, S)
        Largest |q| of the open trade (the scale of `CLOSE_RTOL`).
    entry_bar, n_fills : int64 (P, S)
        Global bar of the opening fill; fills so far.
    grow_value, grow_qty, shrink_value, shrink_qty : float64 (P, S)
        Σ|qty|·px and Σ|qty| of the fills that grew |q| / that shrank it.
    pnl : float64 (P, S)
        Σ ``-qty*px - commission`` of its fills so far.
    c_max, c_min : float64 (P, S)
        Max / min finite close of its symbol from the entry bar to the end of the last chunk
        (-inf / +inf: none yet).
    n_closed, n_win : int64 (P,)
        Closed trades; those with pnl > 0.
    sum_pos, sum_neg, sum_pnl, sum_bars : float64 (P,)
        Σ positive pnl, Σ negative pnl, Σ pnl, Σ bars of the closed trades.
    """

    side: np.ndarray
    q: np.ndarray
    q_peak: np.ndarray
    entry_bar: np.ndarray
    n_fills: np.ndarray
    grow_value: np.ndarray
    grow_qty: np.ndarray
    shrink_value: np.ndarray
    shrink_qty: np.ndarray
    pnl: np.ndarray
    c_max: np.ndarray
    c_min: np.ndarray
    n_closed: np.ndarray
    n_win: np.ndarray
    sum_pos: np.ndarray
    sum_neg: np.ndarray
    sum_pnl: np.ndarray
    sum_bars: np.ndarray

    @classmethod
    def new(cls, n_portfolios: int, n_symbols: int) -> TradeState:
        """No trade open, nothing closed."""
        P, S = int(n_portfolios), int(n_symbols)

        def f8(v: float = 0.0) -> np.ndarray:
            return np.full((P, S), v)

        return cls(
            side=np.zeros((P, S), np.int8),
            q=f8(),
            q_peak=f8(),
            entry_bar=np.zeros((P, S), np.int64),
            n_fills=np.zeros((P, S), np.int64),
            grow_value=f8(),
            grow_qty=f8(),
            shrink_value=f8(),
            shrink_qty=f8(),
            pnl=f8(),
            c_max=f8(-np.inf),
            c_min=f8(np.inf),
            n_closed=np.zeros(P, np.int64),
            n_win=np.zeros(P, np.int64),
            sum_pos=np.zeros(P),
            sum_neg=np.zeros(P),
            sum_pnl=np.zeros(P),
            sum_bars=np.zeros(P),
        )

    def copy(self) -> TradeState:
        """A deep copy (tasks never mutate the state they were given)."""
        return TradeState(*(a.copy() for a in self))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self)


def table_levels(n_bars: int) -> int:
    """L of `fill_range_tables` for a chunk of ``n_bars`` bars (the bit length, at least 1)."""
    return max(1, int(n_bars).bit_length())


@njit(cache=True, nogil=True, error_model="numpy")
def fill_range_tables(close, hi, lo):
    """Sparse tables of the max and min finite close per symbol over bar ranges of a chunk.

    Written into given buffers: fresh 2 x L x T x S tables paid a page fault per 4 KB, ~85% of
    building them (docs/TRADES.md: a thread's tasks reuse their buffers).

    Parameters
    ----------
    close : ndarray float64 (T, S)
    hi, lo : ndarray float64 (L, T, S), ``L = table_levels(T)``
        Out: ``hi[k, i, s]`` = max finite close of s over bars ``[i, i + 2**k)`` (-inf: none;
        rows past ``T - 2**k`` are unused); ``lo`` the same with min (+inf: none).
    """
    T, S = close.shape
    L = hi.shape[0]
    for t in range(T):
        for s in range(S):
            c = close[t, s]
            if math.isfinite(c):
                hi[0, t, s] = c
                lo[0, t, s] = c
            else:
                hi[0, t, s] = -np.inf
                lo[0, t, s] = np.inf
    for k in range(1, L):
        h = 1 << (k - 1)
        for t in range(T - (1 << k) + 1):
            for s in range(S):
                a = hi[k - 1, t, s]
                b = hi[k - 1, t + h, s]
                hi[k, t, s] = a if a >= b else b
                a = lo[k - 1, t, s]
                b = lo[k - 1, t + h, s]
                lo[k, t, s] = a if a <= b else b


# _range_query, _excursions and _emit are inlined in numba's IR: a call that takes arrays pays an
# atomic incref / decref per array (~25 ns each on a shared VM), which was most of trades_chunk
@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _range_query(hi, lo, s, a, b):
    # (max, min) finite close of s over chunk bars [a, b] (a <= b)
    n = b - a + 1
    k = 0
    while (2 << k) <= n:
        k += 1
    j = b - (1 << k) + 1
    x = hi[k, a, s]
    y = hi[k, j, s]
    m = lo[k, a, s]
    z = lo[k, j, s]
    return (x if x >= y else y), (m if m <= z else z)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _excursions(side, ep, c_max, c_min):
    # (mfe, mae) of side * (C/ep - 1) from the extreme finite closes (none: -inf / +inf)
    if c_max < c_min:  # no finite close in the trade's range
        return 0.0, 0.0
    if side > 0:
        up = c_max / ep - 1.0
        down = c_min / ep - 1.0
    else:
        up = -(c_min / ep - 1.0)
        down = -(c_max / ep - 1.0)
    return max(0.0, up), min(0.0, down)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _emit(
    out_i,
    out_f,
    n,
    p,
    s,
    side,
    entry_bar,
    exit_bar,
    n_fills,
    g_val,
    g_qty,
    s_val,
    s_qty,
    pnl,
    last_bar,
    c_max,
    c_min,
):
    # one trade into the column buffers; returns its bars
    ep = g_val / g_qty
    xp = s_val / s_qty if s_qty > 0.0 else np.nan
    mfe, mae = _excursions(side, ep, c_max, c_min)
    bars = (exit_bar if exit_bar >= 0 else last_bar) - entry_bar
    out_i[TI_PORTFOLIO, n] = p
    out_i[TI_SYMBOL, n] = s
    out_i[TI_SIDE, n] = side
    out_i[TI_ENTRY, n] = entry_bar
    out_i[TI_EXIT, n] = exit_bar
    out_i[TI_FILLS, n] = n_fills
    out_i[TI_BARS, n] = bars
    out_f[TFL_ENTRY_PRICE, n] = ep
    out_f[TFL_EXIT_PRICE, n] = xp
    out_f[TFL_PNL, n] = pnl
    out_f[TFL_COST, n] = g_val
    out_f[TFL_RETURN, n] = pnl / g_val
    out_f[TFL_MFE, n] = mfe
    out_f[TFL_MAE, n] = mae
    return bars


@njit(cache=True, nogil=True, error_model="numpy")
def trades_chunk(
    portfolio,
    bar,
    symbol,
    qty,
    price,
    commission,
    close,
    t0,
    hi,
    lo,
    out_i,
    out_f,
    side,
    q,
    q_peak,
    entry_bar,
    n_fills,
    grow_value,
    grow_qty,
    shrink_value,
    shrink_qty,
    pnl,
    c_max,
    c_min,
    n_closed,
    n_win,
    sum_pos,
    sum_neg,
    sum_pnl,
    sum_bars,
):
    """Fold one chunk's fills into the open trades; emit the trades they close (docs/TRADES.md).

    Parameters
    ----------
    portfolio, bar, symbol : ndarray int (n,)
        Batch-local portfolio, global bar index and symbol of each fill; the fills of one
        (portfolio, symbol) in the order they happened.
    qty, price, commission : ndarray float64 (n,)
        Signed shares, fill price, commission of each fill (qty != 0).
    close : ndarray float64 (T, S)
        The chunk's closes (nan: missing).
    t0 : int
        Global bar index of the chunk's first bar.
    hi, lo : ndarray float64 (L, T, S)
        Out: buffers for `fill_range_tables` of ``close`` (``L = table_levels(T)``).
    out_i, out_f : ndarray int32 (N_TI, >= n), float64 (N_TFL, >= n)
        Buffers the trades are written to (a fill closes at most one trade); smaller ones are
        replaced by fresh ones.
    side … c_min : ndarray (P, S)
        In/out: the open-trade fields of `TradeState`.
    n_closed … sum_bars : ndarray (P,)
        In/out: the closed-trade accumulators of `TradeState`.

    Returns
    -------
    ints : ndarray int32 (N_TI, m)
        Rows ``TI_*`` (portfolio, symbol, side, entry_bar, exit_bar, n_fills, bars) of the m
        closed trades.
    floats : ndarray float64 (N_TFL, m)
        Rows ``TFL_*`` (entry_price, exit_price, pnl, cost, return, mfe, mae).

    Notes
    -----
    Trades come out in the order of their closing fills. At the end, the running extremes of
    the trades still open cover their bars up to the chunk's last bar.
    """
    T, S = close.shape
    fill_range_tables(close, hi, lo)
    nrec = qty.shape[0]
    if out_i.shape[1] < nrec or out_f.shape[1] < nrec:  # a fill closes at most one trade
        out_i = np.empty((N_TI, nrec), dtype=np.int32)
        out_f = np.empty((N_TFL, nrec))
    m = 0
    for r in range(nrec):
        p = portfolio[r]
        s = symbol[r]
        t = bar[r]
        d = qty[r]
        px = price[r]
        fee = commission[r]
        sd = side[p, s]
        if sd == 0:
            side[p, s] = 1 if d > 0.0 else -1
            q[p, s] = d
            q_peak[p, s] = abs(d)
            entry_bar[p, s] = t
            n_fills[p, s] = 1
            grow_value[p, s] = abs(d) * px
            grow_qty[p, s] = abs(d)
            shrink_value[p, s] = 0.0
            shrink_qty[p, s] = 0.0
            pnl[p, s] = -d * px - fee
            c_max[p, s] = -np.inf
            c_min[p, s] = np.inf
            continue
        q0 = q[p, s]
        qn = q0 + d
        flat = abs(qn) <= CLOSE_RTOL * q_peak[p, s]
        if not flat and (qn > 0.0) == (sd > 0):
            # grows or shrinks, same side
            n_fills[p, s] += 1
            pnl[p, s] += -d * px - fee
            if d * sd > 0.0:
                grow_value[p, s] += abs(d) * px
                grow_qty[p, s] += abs(d)
                if abs(qn) > q_peak[p, s]:
                    q_peak[p, s] = abs(qn)
            else:
                shrink_value[p, s] += abs(d) * px
                shrink_qty[p, s] += abs(d)
            q[p, s] = qn
            continue
        # closes (all of d) or flips (-q0 closes, the rest opens)
        if flat:
            dc = d
            fc = fee
        else:
            dc = -q0
            fc = fee * abs(dc) / (abs(dc) + abs(qn))
        b0 = entry_bar[p, s]
        cmx = c_max[p, s]
        cmn = c_min[p, s]
        a = b0 - t0 if b0 > t0 else 0
        if t - 1 - t0 >= a:
            x, y = _range_query(hi, lo, s, a, t - 1 - t0)
            if x > cmx:
                cmx = x
            if y < cmn:
                cmn = y
        tp = pnl[p, s] + (-dc * px - fc)
        bars = _emit(
            out_i,
            out_f,
            m,
            p,
            s,
            sd,
            b0,
            t,
            n_fills[p, s] + 1,
            grow_value[p, s],
            grow_qty[p, s],
            shrink_value[p, s] + abs(dc) * px,
            shrink_qty[p, s] + abs(dc),
            tp,
            t,
            cmx,
            cmn,
        )
        m += 1
        n_closed[p] += 1
        if tp > 0.0:
            n_win[p] += 1
            sum_pos[p] += tp
        elif tp < 0.0:
            sum_neg[p] += tp
        sum_pnl[p] += tp
        sum_bars[p] += bars
        if flat:
            side[p, s] = 0
            q[p, s] = 0.0
        else:
            do = qn
            fo = fee * abs(do) / (abs(dc) + abs(do))
            side[p, s] = 1 if do > 0.0 else -1
            q[p, s] = do
            q_peak[p, s] = abs(do)
            entry_bar[p, s] = t
            n_fills[p, s] = 1
            grow_value[p, s] = abs(do) * px
            grow_qty[p, s] = abs(do)
            shrink_value[p, s] = 0.0
            shrink_qty[p, s] = 0.0
            pnl[p, s] = -do * px - fo
            c_max[p, s] = -np.inf
            c_min[p, s] = np.inf

    # extremes of the trades still open, through the chunk's last bar
    P = side.shape[0]
    for p in range(P):
        for s in range(S):
            if side[p, s] != 0:
                b0 = entry_bar[p, s]
                a = b0 - t0 if b0 > t0 else 0
                if a <= T - 1:
                    x, y = _range_query(hi, lo, s, a, T - 1)
                    if x > c_max[p, s]:
                        c_max[p, s] = x
                    if y < c_min[p, s]:
                        c_min[p, s] = y
    return out_i[:, :m], out_f[:, :m]


@njit(cache=True, nogil=True, error_model="numpy")
def open_trades(
    last_close,
    last_bar,
    side,
    q,
    entry_bar,
    n_fills,
    grow_value,
    grow_qty,
    shrink_value,
    shrink_qty,
    pnl,
    c_max,
    c_min,
):
    """The trades still open at the last bar, marked at the last finite close (docs/TRADES.md).

    ``pnl`` adds ``q * last close`` (0 for a symbol never priced, as the equity marks it), the
    exit bar is -1, ``bars`` counts to ``last_bar``, mfe / mae cover the closes to the last bar.
    Returns the same two tables as `trades_chunk`, in (portfolio, symbol) order.
    """
    P, S = side.shape
    m = 0
    for p in range(P):
        for s in range(S):
            if side[p, s] != 0:
                m += 1
    out_i = np.empty((N_TI, m), dtype=np.int32)
    out_f = np.empty((N_TFL, m))
    k = 0
    for p in range(P):
        for s in range(S):
            sd = side[p, s]
            if sd == 0:
                continue
            lc = last_close[s]
            mark = q[p, s] * lc if math.isfinite(lc) else 0.0
            _emit(
                out_i,
                out_f,
                k,
                p,
                s,
                sd,
                entry_bar[p, s],
                -1,
                n_fills[p, s],
                grow_value[p, s],
                grow_qty[p, s],
                shrink_value[p, s],
                shrink_qty[p, s],
                pnl[p, s] + mark,
                last_bar,
                c_max[p, s],
                c_min[p, s],
            )
            k += 1
    return out_i, out_f


@njit(cache=True, nogil=True)
def arrow_columns(ints, p0, times_ns, port, side, entry, exit_):
    """The integer columns of trades.parquet that are not rows of ``ints`` as they are, in one
    pass into given buffers (numpy's casts and gathers walked the trades once per column).

    Parameters
    ----------
    ints : ndarray int32 (N_TI, m)
        A `TradeTable`'s integer rows.
    p0 : int
        Global index of the batch's first portfolio.
    times_ns : ndarray int64 (T,)
        Bar times of the run (indexed by global bar).
    port : ndarray int64 (>= m,)
        Out: global portfolio.
    side : ndarray int8 (>= m,)
    entry, exit_ : ndarray int64 (>= m,)
        Out: entry / exit bar times (exit: 0 while open).

    Returns
    -------
    int
        How many trades are still open.
    """
    n_open = 0
    for i in range(ints.shape[1]):
        port[i] = ints[TI_PORTFOLIO, i] + p0
        side[i] = ints[TI_SIDE, i]
        entry[i] = times_ns[ints[TI_ENTRY, i]]
        x = ints[TI_EXIT, i]
        if x >= 0:
            exit_[i] = times_ns[x]
        else:
            exit_[i] = 0
            n_open += 1
    return n_open


class TradeTable(NamedTuple):
    """Trades as two column-major tables (each row of ``ints`` / ``floats`` one column,
    contiguous: what a Parquet writer takes without a copy).

    Attributes
    ----------
    ints : int32 (N_TI, m)
        Rows ``TI_*``: portfolio (batch-local), symbol, side, entry_bar, exit_bar (-1: open),
        n_fills, bars.
    floats : float64 (N_TFL, m)
        Rows ``TFL_*``: entry_price, exit_price, pnl, cost, return, mfe, mae.
    """

    ints: np.ndarray
    floats: np.ndarray

    def __len__(self) -> int:
        return int(self.ints.shape[1])

    def column(self, name: str) -> np.ndarray:
        """One column by its `TRADE_DTYPE` name."""
        if name in INT_COLUMNS:
            return self.ints[INT_COLUMNS.index(name)]
        return self.floats[FLOAT_COLUMNS.index(name)]

    def records(self) -> np.ndarray:
        """The trades as one `TRADE_DTYPE` array."""
        out = np.empty(len(self), dtype=TRADE_DTYPE)
        for name in TRADE_DTYPE.names:
            out[name] = self.column(name)
        return out

    @classmethod
    def concat(cls, parts: list[TradeTable]) -> TradeTable:
        if not parts:
            return cls(np.empty((N_TI, 0), np.int32), np.empty((N_TFL, 0)))
        return cls(
            np.concatenate([t.ints for t in parts], axis=1),
            np.concatenate([t.floats for t in parts], axis=1),
        )


def step_trades(
    state: TradeState,
    portfolio: np.ndarray,
    bar: np.ndarray,
    symbol: np.ndarray,
    qty: np.ndarray,
    price: np.ndarray,
    commission: np.ndarray,
    close: np.ndarray,
    t0: int,
    out: tuple[np.ndarray, np.ndarray] | None = None,
    tables: tuple[np.ndarray, np.ndarray] | None = None,
) -> TradeTable:
    """Fold one chunk's order records into ``state`` (in place); return the trades they close.

    Parameters
    ----------
    state : TradeState
        After the previous chunk.
    portfolio, bar, symbol, qty, price, commission : ndarray (n,)
        The chunk's fills (see `trades_chunk` for the order they must be in); views such as the
        fields of an order-record array are read in place.
    close : ndarray (T, S)
        The chunk's closes.
    t0 : int
        Global index of the chunk's first bar.
    out : (ndarray int32 (N_TI, n), ndarray float64 (N_TFL, n)), optional
        Reused buffers for the trades (the table is a view of them); default: fresh ones.
    tables : (ndarray, ndarray) float64 (table_levels(T), T, S), optional
        Reused buffers for the chunk's range tables (contents undefined); default: fresh ones.

    Returns
    -------
    TradeTable
        Closed trades, in the order of their closing fills.
    """
    f8 = np.float64
    if out is None:
        n = len(qty)
        out = (np.empty((N_TI, n), np.int32), np.empty((N_TFL, n)))
    close = np.ascontiguousarray(close, f8)
    if tables is None:
        shape = (table_levels(close.shape[0]), *close.shape)
        tables = (np.empty(shape), np.empty(shape))
    ints, floats = trades_chunk(
        np.asarray(portfolio),
        np.asarray(bar),
        np.asarray(symbol),
        np.asarray(qty, f8),
        np.asarray(price, f8),
        np.asarray(commission, f8),
        close,
        int(t0),
        tables[0],
        tables[1],
        out[0],
        out[1],
        *state,
    )
    return TradeTable(ints, floats)


def finalize_trades(
    state: TradeState, last_close: np.ndarray, last_bar: int
) -> tuple[TradeTable, dict[str, np.ndarray]]:
    """The open trades at the last bar, and the per-portfolio trade metrics.

    Parameters
    ----------
    state : TradeState
        After the last chunk.
    last_close : ndarray (S,)
        Last finite close of each symbol (nan: never priced).
    last_bar : int
        Global index of the last bar.

    Returns
    -------
    open : TradeTable
        Trades still open (exit_bar -1), in (portfolio, symbol) order.
    metrics : dict of str to ndarray (P,)
        See `trade_metrics`.
    """
    ints, floats = open_trades(
        np.ascontiguousarray(last_close, np.float64),
        int(last_bar),
        state.side,
        state.q,
        state.entry_bar,
        state.n_fills,
        state.grow_value,
        state.grow_qty,
        state.shrink_value,
        state.shrink_qty,
        state.pnl,
        state.c_max,
        state.c_min,
    )
    return TradeTable(ints, floats), trade_metrics(state)


def trade_metrics(state: TradeState) -> dict[str, np.ndarray]:
    """Per-portfolio trade metrics (docs/TRADES.md) from the accumulators.

    Returns
    -------
    dict of str to ndarray (P,)
        ``n_trades`` (closed + open, int64); from the closed trades only: ``win_rate`` (share with
        pnl > 0), ``profit_factor`` (Σ positive pnl / |Σ negative pnl|; inf without losses, 0
        without wins), ``expectancy`` (mean pnl), ``avg_bars``; nan without a closed trade.
    """
    n = state.n_closed.astype(np.float64)
    none = state.n_closed == 0
    n_open = (state.side != 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = state.n_win / n
        pf = np.where(state.sum_neg == 0.0, np.inf, state.sum_pos / -state.sum_neg)
        expectancy = state.sum_pnl / n
        avg_bars = state.sum_bars / n
    for a in (win_rate, pf, expectancy, avg_bars):
        a[none] = np.nan
    return {
        "n_trades": state.n_closed + n_open,
        "win_rate": win_rate,
        "profit_factor": pf,
        "expectancy": expectancy,
        "avg_bars": avg_bars,
    }
