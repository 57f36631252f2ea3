"""One batch of portfolios in memory: its state and the numpy layer around the step kernel.

`BatchState` is what a task of the engine's chain receives from the task before it and hands to
the next one; `step` advances it over one time chunk; `simulate` runs a whole series in memory
(chunked or not), which the engine must reproduce exactly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

import numpy as np

from admf_dask.metrics import init_accumulator, update_accumulator
from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio._trades import TradeState
from admf_dask.portfolio.enums import ORDER_DTYPE, ORDER_FIELDS, KernelState


@dataclass
class BatchState:
    """State of P portfolios over S symbols between two bars (docs/ACCOUNTING.md), plus accumulators.

    Attributes
    ----------
    last_close : ndarray (S,)
        Last finite close of each symbol (nan: never priced). Shared by the batch.
    cash, peak : ndarray (P,)
    halted : ndarray bool (P,)
    q, entry, target, w_set, u_prev : ndarray (P, S)
        Shares, entry price, target shares Q, set weight, last raw weight u.
    stopped, reason, stop_why : ndarray int8 (P, S)
        Stop flag (``STOP_*``), why the pending target was set and why the symbol was stopped
        (``REASON_*``).
    extreme : ndarray (P, S)
        Highest (long) / lowest (short) price since the position opened (docs/ACCOUNTING.md, exits).
    opened : ndarray int64 (P, S)
        Global bar index of the fill that opened the position.
    traded : ndarray (P,)
        Sum of |qty * fill price| so far.
    gross_sum : ndarray (P,)
        Sum over bars of sum|q * last close| / equity.
    n_orders : ndarray int64 (P,)
        Fills so far.
    perf : ndarray (P, N_ACC)
        Metrics accumulator of the equity curves so far (`admf_dask.metrics.init_accumulator`).
    n_bars : int
        Bars stepped so far.
    trades : TradeState or None
        Open trades and closed-trade accumulators (docs/TRADES.md; None: trades off).
    relative : ndarray (P, N_RACC) or None
        Benchmark-relative accumulator (`admf_dask.metrics.relative`; None: no benchmark).
    """

    last_close: np.ndarray
    cash: np.ndarray
    peak: np.ndarray
    halted: np.ndarray
    q: np.ndarray
    entry: np.ndarray
    target: np.ndarray
    w_set: np.ndarray
    u_prev: np.ndarray
    stopped: np.ndarray
    reason: np.ndarray
    stop_why: np.ndarray
    extreme: np.ndarray
    opened: np.ndarray
    traded: np.ndarray
    gross_sum: np.ndarray
    n_orders: np.ndarray
    perf: np.ndarray
    n_bars: int = 0
    trades: TradeState | None = None
    relative: np.ndarray | None = None

    @classmethod
    def new(cls, n_portfolios: int, n_symbols: int, capital: float | np.ndarray) -> BatchState:
        """Start state: cash = capital, everything else 0 (last close: none yet)."""
        P, S = int(n_portfolios), int(n_symbols)
        cash = np.empty(P)
        cash[:] = capital
        return cls(
            last_close=np.full(S, np.nan),
            cash=cash,
            peak=np.zeros(P),
            halted=np.zeros(P, dtype=np.bool_),
            q=np.zeros((P, S)),
            entry=np.zeros((P, S)),
            target=np.zeros((P, S)),
            w_set=np.zeros((P, S)),
            u_prev=np.zeros((P, S)),
            stopped=np.zeros((P, S), dtype=np.int8),
            reason=np.zeros((P, S), dtype=np.int8),
            stop_why=np.zeros((P, S), dtype=np.int8),
            extreme=np.zeros((P, S)),
            opened=np.zeros((P, S), dtype=np.int64),
            traded=np.zeros(P),
            gross_sum=np.zeros(P),
            n_orders=np.zeros(P, dtype=np.int64),
            perf=init_accumulator(cash, P),
        )

    def copy(self) -> BatchState:
        """A deep copy (tasks never mutate the state they were given)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return BatchState(
            **{k: v.copy() if isinstance(v, np.ndarray | TradeState) else v for k, v in kw.items()}
        )

    def kernel_state(self) -> KernelState:
        """The kernel's view of this state (the same arrays, not copies)."""
        return KernelState(*(getattr(self, name) for name in KernelState._fields))

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray | TradeState))


class OrderRecords:
    """Order records of one step or run: a view of an array of `ORDER_DTYPE` records.

    The columns (``portfolio`` batch-local int32, ``time`` global bar index int32, ``symbol``
    int32, ``qty``, ``price``, ``commission`` float64, ``reason`` int8 ``REASON_*``) are
    attributes.
    """

    __slots__ = ("records",)

    def __init__(self, records: np.ndarray) -> None:
        if records.dtype != ORDER_DTYPE:
            raise TypeError(f"order records must have dtype ORDER_DTYPE, got {records.dtype}")
        self.records = records

    def __getattr__(self, name: str) -> np.ndarray:
        if name in ORDER_FIELDS:
            return self.records[name]
        raise AttributeError(name)

    def __len__(self) -> int:
        return int(self.records.shape[0])

    def __getitem__(self, index) -> OrderRecords:
        return OrderRecords(self.records[index])

    @classmethod
    def concat(cls, parts: list[OrderRecords]) -> OrderRecords:
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.records for p in parts]))

    @classmethod
    def empty(cls) -> OrderRecords:
        return cls(np.empty(0, dtype=ORDER_DTYPE))


class Scratch:
    """Buffers reused by the consecutive tasks of one thread (`scratch`).

    A fresh buffer costs a page fault per 4 KB on first touch, about as much as the copy into it:
    per order, the record, its columns and the equity rows would pay that on every task. What
    `get` returns stays valid until the next `get` of the same name on this thread.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}
        #: orders per portfolio·symbol·bar step of the thread's last task (a size hint for the
        #: first task of the next chain, which has none of its own)
        self.orders_per_step = 0.0

    def get(self, name: str, n: int, dtype) -> np.ndarray:
        """A 1-D buffer of at least ``n`` items (its first ``n``), contents undefined."""
        dtype = np.dtype(dtype)
        b = self._bufs.get(name)
        if b is None or b.dtype != dtype or b.shape[0] < n:
            size = max(int(n), int(1.25 * b.shape[0]) if b is not None else 0)
            b = self._bufs[name] = np.empty(size, dtype)
        return b[:n]

    def at_least(self, name: str, n: int, dtype) -> np.ndarray:
        """The whole buffer ``name`` when it has at least ``n`` items, else a new one."""
        self.get(name, n, dtype)
        return self._bufs[name]

    def keep(self, name: str, buffer: np.ndarray) -> None:
        """Make ``buffer`` (e.g. one a kernel grew) the buffer ``name``."""
        self._bufs[name] = buffer

    def clear(self) -> None:
        """Drop the buffers (the size hint stays)."""
        self._bufs.clear()

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._bufs.values())


_LOCAL = threading.local()


def scratch() -> Scratch:
    """This thread's `Scratch` (tasks on other threads of a worker have their own)."""
    s = getattr(_LOCAL, "scratch", None)
    if s is None:
        s = _LOCAL.scratch = Scratch()
    return s


def step(
    state: BatchState,
    open_: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    vol: np.ndarray | None,
    mixes: np.ndarray,
    fparams: np.ndarray,
    iparams: np.ndarray,
    *,
    record: bool = True,
    copy: bool = True,
    capacity: int = 0,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    buffers: Scratch | None = None,
) -> tuple[BatchState, np.ndarray, np.ndarray, OrderRecords]:
    """Advance a batch over one time chunk.

    Parameters
    ----------
    state : BatchState
        State after the previous chunk (``state.n_bars`` is the chunk's first global bar).
    open_, close : ndarray (T, S)
    signals : ndarray (T, S, K)
    vol : ndarray (V, T, S) or None
        Volatility stack for vol_target portfolios (None: no vol_target portfolio).
    mixes, fparams, iparams : ndarray
        Packed parameters, see `admf_dask.portfolio._kernels`.
    record : bool
        Return order records (false: only count fills).
    copy : bool
        Work on a copy of ``state`` (false: update it in place).
    capacity : int
        Expected number of orders (sizes the record buffers; they grow if needed).
    high, low : ndarray (T, S), optional
        Needed when a portfolio has ``exit_on: intrabar`` (docs/ACCOUNTING.md, exits).
    buffers : Scratch, optional
        Put equity, cash and the order records in these reused buffers (valid until the next
        call with them) instead of fresh arrays.

    Returns
    -------
    state : BatchState
    equity, cash : ndarray (T, P)
    orders : OrderRecords
    """
    st = state.copy() if copy else state
    T, S = close.shape
    P = st.cash.shape[0]
    f8 = np.float64
    open_ = np.ascontiguousarray(open_, dtype=f8)
    close = np.ascontiguousarray(close, dtype=f8)
    signals = np.ascontiguousarray(signals, dtype=f8)
    if signals.ndim == 2:
        signals = signals[:, :, None]
    if vol is None:
        vol = np.empty((0, T, S))
    vol = np.ascontiguousarray(vol, dtype=f8)
    iparams = np.ascontiguousarray(iparams, dtype=np.int64)
    if high is None or low is None:
        if np.any(iparams[:, K.I_INTRABAR] != 0):
            raise ValueError("exit_on intrabar needs the bars' high and low")
        high = low = np.empty((0, S))
    high = np.ascontiguousarray(high, dtype=f8)
    low = np.ascontiguousarray(low, dtype=f8)
    cap = K.record_capacity(capacity, S) if record else 1
    if buffers is None:
        equity = np.empty((T, P))
        cash = np.empty((T, P))
        rec = np.empty(cap, dtype=ORDER_DTYPE)
    else:
        equity = buffers.get("equity", T * P, f8).reshape(T, P)
        cash = buffers.get("cash", T * P, f8).reshape(T, P)
        # the whole buffer: the kernel grows a full one, and the first task of a chain has no hint
        rec = buffers.at_least("records", cap, ORDER_DTYPE)
    rec, n = K.step_chunk(
        open_,
        high,
        low,
        close,
        signals,
        vol,
        np.ascontiguousarray(mixes, dtype=f8),
        np.ascontiguousarray(fparams, dtype=f8),
        iparams,
        st.kernel_state(),
        equity,
        cash,
        st.n_bars,
        record,
        rec,
    )
    if buffers is not None and record:
        buffers.keep("records", rec)
    orders = OrderRecords(rec[:n])
    update_accumulator(st.perf, equity)
    st.n_bars += T
    return st, equity, cash, orders


def chunk_bounds(n_bars: int, chunks: int | tuple[int, ...] | None) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of a time axis cut into chunks (an int: that many bars each)."""
    if chunks is None:
        sizes: tuple[int, ...] = (n_bars,)
    elif isinstance(chunks, int):
        sizes = tuple(min(chunks, n_bars - i) for i in range(0, n_bars, chunks))
    else:
        sizes = tuple(chunks)
    if sum(sizes) != n_bars:
        raise ValueError(f"chunks {sizes} do not add up to {n_bars} bars")
    edges = np.cumsum((0, *sizes))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def simulate(
    open_: np.ndarray,
    close: np.ndarray,
    signals: np.ndarray,
    vol: np.ndarray | None,
    mixes: np.ndarray,
    fparams: np.ndarray,
    iparams: np.ndarray,
    capital: float | np.ndarray,
    *,
    chunks: int | tuple[int, ...] | None = None,
    record: bool = True,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, OrderRecords, BatchState]:
    """Run one batch over a whole series in memory, optionally cut into time chunks.

    ``high`` / ``low`` (T, S) are needed when a portfolio has ``exit_on: intrabar``.

    Returns
    -------
    equity, cash : ndarray (T, P)
    orders : OrderRecords
        Sorted by (portfolio, time, symbol).
    state : BatchState
        The final state.
    """
    T, S = close.shape
    st = BatchState.new(fparams.shape[0], S, capital)
    eqs, cashes, parts = [], [], []
    for a, b in chunk_bounds(T, chunks):
        v = None if vol is None else vol[:, a:b]
        st, e, c, o = step(
            st,
            open_[a:b],
            close[a:b],
            signals[a:b],
            v,
            mixes,
            fparams,
            iparams,
            record=record,
            copy=False,
            high=None if high is None else high[a:b],
            low=None if low is None else low[a:b],
        )
        eqs.append(e)
        cashes.append(c)
        parts.append(o)
    orders = OrderRecords.concat(parts)
    orders = orders[np.lexsort((orders.symbol, orders.time, orders.portfolio))]
    return np.concatenate(eqs), np.concatenate(cashes), orders, st
