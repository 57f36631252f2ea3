"""Numba kernels of the accounting contract (docs/ACCOUNTING.md): ndarrays in, ndarrays out.

One call steps every portfolio of a batch over every bar of a time chunk. The state is a
`KernelState` (a named tuple of arrays, `admf_dask.portfolio.enums`) that the call updates in
place, so consecutive calls over consecutive chunks give exactly the same numbers as one call over
the whole series (nothing depends on where a chunk starts).

Loop order is block of bars → portfolio → bar: one portfolio's state rows (a few KB) stay in L1
while the block's shared (bar, symbol) inputs stay in L2. Each portfolio's arithmetic is a fixed
sequence of float operations, so results do not depend on the batch a portfolio is in, nor on
where chunks or blocks start.

Sums over symbols (equity, gross exposure, Σ|w|) use `LANES` interleaved partial sums combined as
``(l0 + l1) + (l2 + l3)`` (symbol s goes to lane s % 4 except a tail of S % 4 symbols, which goes to
lane 0): a sequential sum is one long chain of dependent additions, which made the kernel
latency-bound. The reference of the tests sums the same way.

The packed parameters ``fparams`` / ``iparams`` (one row per portfolio) and the order record
dtype are described in `admf_dask.portfolio.enums`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from admf_dask.portfolio.enums import (  # noqa: F401 - re-exported: K.F_*, K.REASON_NAMES, ...
    F_BAND,
    F_COMMISSION,
    F_COMMISSION_FIXED,
    F_MAX_DRAWDOWN,
    F_MAX_GROSS,
    F_MAX_POSITION,
    F_POSITION_WEIGHT,
    F_SLIPPAGE_BPS,
    F_STOP_LOSS,
    F_TAKE_PROFIT,
    F_TARGET_VOL,
    F_TRAILING_STOP,
    I_INTRABAR,
    I_MAX_HOLDING,
    I_MAX_POSITIONS,
    I_MIX,
    I_SHORT,
    I_VOL,
    N_FPARAMS,
    N_IPARAMS,
    ORDER_DTYPE,
    ORDER_FIELDS,
    REASON_HALT,
    REASON_NAMES,
    REASON_SIGNAL,
    REASON_STOP,
    REASON_TAKE_PROFIT,
    REASON_TIME,
    REASON_TRAILING,
    STOP_HELD,
    STOP_NEW,
    STOP_NONE,
    KernelState,
)


@njit(cache=True, nogil=True)
def carry_last_close(close, last_close):
    """Last finite close at each bar of a chunk (nan where a symbol never had a price).

    Parameters
    ----------
    close : ndarray (T, S)
    last_close : ndarray (S,)
        Last finite close before the chunk (nan: none yet); updated in place to the chunk's end.

    Returns
    -------
    ndarray (T, S)
    """
    T, S = close.shape
    out = np.empty((T, S))
    for t in range(T):
        for s in range(S):
            c = close[t, s]
            if math.isfinite(c):
                last_close[s] = c
            out[t, s] = last_close[s]
    return out


LANES = 4
# bars per cache block: the block's open/close/signal rows are shared by every portfolio of the
# batch and should stay in L2 while each portfolio walks over them
BLOCK_BARS = 64


@njit(cache=True, nogil=True)
def record_room(n_symbols):
    """Records one (bar block, portfolio) can add: at most one fill at the open and one intrabar
    exit per symbol and bar (the kernel grows its buffer before a block that might not fit)."""
    return 2 * BLOCK_BARS * n_symbols


def record_capacity(expected: int, n_symbols: int) -> int:
    """Rows of a record buffer for ``expected`` orders (`step_chunk`'s ``rec``)."""
    return max(1024, int(expected)) + 2 * BLOCK_BARS * int(n_symbols)


@njit(cache=True, nogil=True)
def order_columns(rec, p0, t0, times_ns, port, time, sym, qty, px, comm, why):
    """The columns of orders.parquet from ORDER_DTYPE records, in one pass into given buffers
    (reading the fields one by one as strided views walks the whole array once per field).

    Parameters
    ----------
    rec : ndarray of ORDER_DTYPE (n,)
    p0 : int
        Global index of the batch's first portfolio (records hold batch-local ones).
    t0 : int
        Global bar of ``times_ns[0]``.
    times_ns : ndarray int64
        Bar times (ns since the epoch) from bar ``t0`` on.
    port, time : ndarray int64 (>= n,)
        Out: global portfolio; bar time in ns.
    sym : ndarray int32 (>= n,)
    qty, px, comm : ndarray float64 (>= n,)
    why : ndarray int8 (>= n,)
    """
    for i in range(rec.shape[0]):
        r = rec[i]
        port[i] = r.portfolio + p0
        time[i] = times_ns[r.time - t0]
        sym[i] = r.symbol
        qty[i] = r.qty
        px[i] = r.price
        comm[i] = r.commission
        why[i] = r.reason


@njit(cache=True, nogil=True)
def lane_sum(x):
    """Sum of a 1-D array in the kernel's order (4 interleaved partial sums)."""
    n = x.shape[0]
    n4 = n - n % 4
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for s in range(0, n4, 4):
        a0 += x[s]
        a1 += x[s + 1]
        a2 += x[s + 2]
        a3 += x[s + 3]
    for s in range(n4, n):
        a0 += x[s]
    return (a0 + a1) + (a2 + a3)


@njit(cache=True, nogil=True)
def _mix_signals(signals, b0, b1, weights, out):
    # u = clip(sum_k W[k] * S[t, s, k], -1, 1) for bars b0..b1; nan signals count as 0
    S = signals.shape[1]
    K = signals.shape[2]
    for t in range(b0, b1):
        for s in range(S):
            acc = 0.0
            for k in range(K):
                x = signals[t, s, k]
                if x == x:
                    acc += weights[k] * x
            if acc > 1.0:
                acc = 1.0
            elif acc < -1.0:
                acc = -1.0
            out[t - b0, s] = acc


@njit(cache=True, nogil=True)
def _grow(a, n):
    b = np.empty(n, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _pend_insert(pend, npend, s):
    # keep the pending list sorted: fills happen in symbol order
    j = npend
    while j > 0 and pend[j - 1] > s:
        pend[j] = pend[j - 1]
        j -= 1
    pend[j] = s
    return npend + 1


@njit(cache=True, nogil=True)
def _pend_remove(pend, npend, s):
    j = 0
    while pend[j] != s:
        j += 1
    for i in range(j, npend - 1):
        pend[i] = pend[i + 1]
    return npend - 1


@njit(cache=True, nogil=True, inline="always")
def _levels(
    qs, e, x, use_sl, sl_long, sl_short, use_ts, ts_long, ts_short, use_tp, tp_long, tp_short
):
    """(below, above): the exit levels under and over the price of a position (docs/ACCOUNTING.md, exits).

    Long: (stop level, take-profit); short: (take-profit, stop level); the stop level is the
    tighter of the set stop-loss and trailing levels; a level that is off is -inf / +inf, and a
    flat symbol gets (-inf, +inf). A price outside [below, above] hits some rule.
    """
    inf = math.inf
    if qs > 0.0:
        lvl = -inf
        if use_sl:
            lvl = e * sl_long
        if use_ts:
            lt = x * ts_long
            if not use_sl or lt > lvl:  # equal levels: stop
                lvl = lt
        return lvl, (e * tp_long if use_tp else inf)
    if qs < 0.0:
        lvl = inf
        if use_sl:
            lvl = e * sl_short
        if use_ts:
            lt = x * ts_short
            if not use_sl or lt < lvl:
                lvl = lt
        return (e * tp_short if use_tp else -inf), lvl
    return -inf, inf


@njit(cache=True, nogil=True, inline="always")
def _update_extreme(
    qp,
    ep,
    xp,
    hi,
    lo,
    dn,
    up_,
    use_sl,
    sl_long,
    sl_short,
    use_ts,
    ts_long,
    ts_short,
    use_tp,
    tp_long,
    tp_short,
):
    """x = max(x, hi) for longs, min(x, lo) for shorts (nan: unchanged), and their levels
    (`_levels`, the same floats). Branch-free over all symbols, so it vectorizes; a flat
    symbol keeps its x and gets (-inf, +inf)."""
    inf = math.inf
    for s in range(qp.shape[0]):
        qs = qp[s]
        x = xp[s]
        h = hi[s]
        lw = lo[s]
        xl = h if h > x else x
        xs = lw if lw < x else x
        xn = xl if qs > 0.0 else (xs if qs < 0.0 else x)
        xp[s] = xn
        e = ep[s]
        sl_l = e * sl_long if use_sl else -inf
        ts_l = xn * ts_long if use_ts else -inf
        stop_l = ts_l if ts_l > sl_l else sl_l  # equal levels: stop (the same float)
        sl_s = e * sl_short if use_sl else inf
        ts_s = xn * ts_short if use_ts else inf
        stop_s = ts_s if ts_s < sl_s else sl_s
        tp_l = e * tp_long if use_tp else inf
        tp_s = e * tp_short if use_tp else -inf
        dn[s] = stop_l if qs > 0.0 else (tp_s if qs < 0.0 else -inf)
        up_[s] = tp_l if qs > 0.0 else (stop_s if qs < 0.0 else inf)


@njit(cache=True, nogil=True, inline="always")
def _touched_then_extreme(
    o_row,
    hi,
    lo,
    qp,
    ep,
    xp,
    dn,
    up_,
    tidx,
    odn,
    oup,
    use_sl,
    sl_long,
    sl_short,
    use_ts,
    ts_long,
    ts_short,
    use_tp,
    tp_long,
    tp_short,
):
    """One branch-free pass for ``exit_on: intrabar``: list the symbols whose levels the bar's
    open, high or low touched (with those levels), then move x to this bar's high / low and
    recompute the levels. Returns how many were listed. Fusing is exact: nothing between the
    exits at the open and the close reads x, and an exited symbol's levels are reset after."""
    inf = math.inf
    nt = 0
    for s in range(qp.shape[0]):
        o = o_row[s]
        h = hi[s]
        lw = lo[s]
        below = dn[s]
        above = up_[s]
        tidx[nt] = s
        odn[nt] = below
        oup[nt] = above
        nt += (o <= below) | (lw <= below) | (o >= above) | (h >= above)
        if use_ts:
            qs = qp[s]
            x = xp[s]
            xl = h if h > x else x
            xs = lw if lw < x else x
            xn = xl if qs > 0.0 else (xs if qs < 0.0 else x)
            xp[s] = xn
            e = ep[s]
            sl_l = e * sl_long if use_sl else -inf
            ts_l = xn * ts_long
            stop_l = ts_l if ts_l > sl_l else sl_l
            sl_s = e * sl_short if use_sl else inf
            ts_s = xn * ts_short
            stop_s = ts_s if ts_s < sl_s else sl_s
            tp_l = e * tp_long if use_tp else inf
            tp_s = e * tp_short if use_tp else -inf
            dn[s] = stop_l if qs > 0.0 else (tp_s if qs < 0.0 else -inf)
            up_[s] = tp_l if qs > 0.0 else (stop_s if qs < 0.0 else inf)
    return nt


@njit(cache=True, nogil=True)
def _rank_rows(um, n, rank):
    """rank[tt] = the symbols by |u| descending, then by index (for max_positions), tt < n.

    Row 0 by a stable argsort, each next row by insertion sort from the row before: from bar to
    bar only the few symbols whose u changed move, so that costs ~S comparisons a row.
    """
    S = um.shape[1]
    if n == 0:
        return
    rank[0, :] = np.argsort(-np.abs(um[0]), kind="mergesort")
    for tt in range(1, n):
        r = rank[tt]
        r[:] = rank[tt - 1]
        for i in range(1, S):
            s = r[i]
            a = abs(um[tt, s])
            j = i - 1
            while j >= 0:
                sj = r[j]
                aj = abs(um[tt, sj])
                if aj > a or (aj == a and sj < s):
                    break
                r[j + 1] = sj
                j -= 1
            r[j + 1] = s


@njit(cache=True, nogil=True)
def _keep_top(w, um_t, qp, stp, mpos, rank_t):
    """max_positions (docs/ACCOUNTING.md, exits): among symbols with w != 0 that are not stopped, keep the
    ``mpos`` with the largest |u| (ties: held now first, then lower symbol index); zero the rest.

    Count the candidates (at most ``mpos``: nothing to do); walk the bar's ranking
    (`_rank_rows`) to the (mpos+1)-th candidate, whose |u| is the threshold; count the
    candidates above it and the held ones at it; then one pass in symbol order zeroes the
    candidates below the threshold and the ties past the room left (held ties first, found by
    a walk in symbol order that stops at the last tie kept). Only the walk to the threshold
    reads by rank; the counts and the zeroing are data-parallel (numba's branch-free counters
    with a loop-carried cut-off were slower than these short branchy walks). A candidate has
    w != 0, hence u != 0, and |u| equals |max(u, 0)| when long-only.
    """
    S = w.shape[0]
    nc = 0
    for s in range(S):
        nc += (w[s] != 0.0) & (stp[s] == STOP_NONE)
    if nc <= mpos:
        return
    i1 = 0
    c = 0
    for i in range(S):
        s = rank_t[i]
        if w[s] != 0.0 and stp[s] == STOP_NONE:
            c += 1
            if c > mpos:
                i1 = i
                break
    thr = abs(um_t[rank_t[i1]])
    n_above = 0
    n_held = 0
    for s in range(S):
        cand = (w[s] != 0.0) & (stp[s] == STOP_NONE)
        a = abs(um_t[s])
        n_above += cand & (a > thr)
        n_held += cand & (a == thr) & (qp[s] != 0.0)
    room = mpos - n_above  # ties that still fit (the threshold's candidate does not)
    keep_held = min(room, n_held)
    keep_other = room - keep_held
    cut_held = -1  # ties kept: held ones with index <= cut_held, others <= cut_other
    cut_other = -1
    if room > 0:
        k_held = 0
        k_other = 0
        for s in range(S):  # the ties in symbol order, until both cuts are found
            if w[s] != 0.0 and stp[s] == STOP_NONE and abs(um_t[s]) == thr:
                if qp[s] != 0.0:
                    k_held += 1
                    if k_held <= keep_held:
                        cut_held = s
                else:
                    k_other += 1
                    if k_other <= keep_other:
                        cut_other = s
            if k_held >= keep_held and k_other >= keep_other:
                break
    for s in range(S):
        cand = (w[s] != 0.0) & (stp[s] == STOP_NONE)
        a = abs(um_t[s])
        cut = cut_held if qp[s] != 0.0 else cut_other
        drop = cand & ((a < thr) | ((a == thr) & (s > cut)))
        w[s] = 0.0 if drop else w[s]


@njit(cache=True, nogil=True)
def step_chunk(
    open_,
    high,
    low,
    close,
    signals,
    vol,
    mixes,
    fparams,
    iparams,
    state,
    equity_out,
    cash_out,
    bar0,
    record,
    rec,
):
    """Step every portfolio of a batch over every bar of one time chunk (docs/ACCOUNTING.md).

    At each bar t, per portfolio: (1) fill pending targets at the open, (1b) intrabar exits
    (``exit_on: intrabar``), (2) mark at the last finite close, (3) exit rules and drawdown at
    the close, (4) new targets at the close (they fill at t+1). A rule that is off costs a
    branch per portfolio and bar, outside the loops over symbols.

    Parameters
    ----------
    open_, close : ndarray float64 (T, S)
        Bars of the chunk; nan = no price.
    high, low : ndarray float64 (T, S)
        Read only by portfolios with ``exit_on: intrabar`` (may be (0, S) when there are none).
    signals : ndarray float64 (T, S, K)
        Strategy signals in [-1, 1]; nan counts as 0.
    vol : ndarray float64 (V, T, S)
        Volatility features for vol_target sizing (V may be 0).
    mixes : ndarray float64 (M, K)
        Distinct strategy weight rows; ``iparams[:, I_MIX]`` points into it.
    fparams : ndarray float64 (P, N_FPARAMS)
    iparams : ndarray int64 (P, N_IPARAMS)
    state : KernelState
        In/out: the batch's state and accumulators, updated in place.
    equity_out, cash_out : ndarray float64 (T, P)
        Out: equity and cash at each close.
    bar0 : int
        Global index of the chunk's first bar (stamped on the order records).
    record : bool
        Collect order records (false: only count them).
    rec : ndarray of ORDER_DTYPE
        The record buffer to fill (`record_capacity` rows for the expected number of orders; a
        copy twice as large replaces it when full). Handing the same buffer to every call of a
        thread saves the page faults of a fresh one (a fault per 4 KB, as much as the copy).

    Returns
    -------
    rec : ndarray of ORDER_DTYPE
        The record buffer (``rec`` or the larger one that replaced it); its first ``n`` rows are
        the orders.
    n : int
        Number of orders. Rows are grouped by (bar block, mix, portfolio) and sorted by time within a
        group; within a bar, the fills at the open in symbol order, then the intrabar exits in
        symbol order.
    """
    T, S = close.shape
    P = state.cash.shape[0]
    lc = carry_last_close(close, state.last_close)
    lc0 = np.where(np.isnan(lc), 0.0, lc)  # q is 0 wherever lc is nan: mark with 0 there
    S4 = S - S % 4

    TB = BLOCK_BARS
    room = record_room(S) if record else 0
    cap = rec.shape[0]
    if record and cap < room:
        cap = room
        rec = np.empty(cap, dtype=ORDER_DTYPE)
    n = 0

    order = np.argsort(iparams[:, I_MIX], kind="mergesort")  # one signal mix per group
    ranked = False  # rank the symbols by |u| only for a batch with max_positions
    for p in range(P):
        if iparams[p, I_MAX_POSITIONS] > 0:
            ranked = True
    rank = np.empty((TB if ranked else 0, S), dtype=np.int64)
    um = np.empty((TB, S))
    w = np.empty(S)
    dn = np.empty(S)
    up_ = np.empty(S)
    tidx = np.empty(S, dtype=np.int64)
    odn = np.empty(S)
    oup = np.empty(S)
    pend = np.empty(S, dtype=np.int64)

    for b0 in range(0, T, TB):
        b1 = min(b0 + TB, T)
        cur_mix = -1
        for pi in range(P):
            p = order[pi]
            m = iparams[p, I_MIX]
            if m != cur_mix:
                _mix_signals(signals, b0, b1, mixes[m], um)
                if ranked:
                    _rank_rows(um, b1 - b0, rank)
                cur_mix = m
            vi = iparams[p, I_VOL]
            lo = -1.0 if iparams[p, I_SHORT] != 0 else 0.0  # long-only: u = max(u, 0)
            pw = fparams[p, F_POSITION_WEIGHT]
            tv = fparams[p, F_TARGET_VOL]
            mp = fparams[p, F_MAX_POSITION]
            mg = fparams[p, F_MAX_GROSS]
            sl = fparams[p, F_STOP_LOSS]
            sl_long = 1.0 - sl
            sl_short = 1.0 + sl
            tp = fparams[p, F_TAKE_PROFIT]
            tp_long = 1.0 + tp
            tp_short = 1.0 - tp
            ts = fparams[p, F_TRAILING_STOP]
            ts_long = 1.0 - ts
            ts_short = 1.0 + ts
            md_floor = 1.0 - fparams[p, F_MAX_DRAWDOWN]
            # docs/ACCOUNTING.md step 4: the 1e-12 keeps rounding noise from trading
            band = fparams[p, F_BAND] + 1e-12
            comm = fparams[p, F_COMMISSION]
            fixed = fparams[p, F_COMMISSION_FIXED]
            slip = fparams[p, F_SLIPPAGE_BPS] / 1e4  # = sign*bps/1e4 up to the sign, exactly
            mh = iparams[p, I_MAX_HOLDING]
            ib = iparams[p, I_INTRABAR] != 0
            mpos = iparams[p, I_MAX_POSITIONS]
            use_sl = sl == sl
            use_tp = tp == tp
            use_ts = ts == ts
            # which loops over symbols this portfolio needs (rules that are off cost nothing)
            ib_exits = ib and (use_sl or use_tp or use_ts)
            # close mode with only a stop-loss: the branch-free loop of docs/ACCOUNTING.md
            fast_stop = use_sl and not ib and not use_ts and not use_tp and mh == 0
            close_levels = not ib and (use_sl or use_ts or use_tp) and not fast_stop
            close_rules = close_levels or mh > 0
            # exit levels per symbol (below, above), kept up to date where the levels are used
            track = ib_exits or close_levels
            c_ = state.cash[p]
            pk = state.peak[p]
            hl = state.halted[p]
            tr = state.traded[p]
            gs = state.gross_sum[p]
            no = state.n_orders[p]
            qp = state.q[p]
            ep = state.entry[p]
            Qp = state.target[p]
            wsp = state.w_set[p]
            up = state.u_prev[p]
            stp = state.stopped[p]
            rp = state.reason[p]
            whyp = state.stop_why[p]
            xp = state.extreme[p]
            opp = state.opened[p]
            if record and n + room > cap:
                cap = max(2 * cap, n + room)
                rec = _grow(rec, cap)
            if track:
                for s in range(S):
                    dn[s], up_[s] = _levels(
                        qp[s],
                        ep[s],
                        xp[s],
                        use_sl,
                        sl_long,
                        sl_short,
                        use_ts,
                        ts_long,
                        ts_short,
                        use_tp,
                        tp_long,
                        tp_short,
                    )
            npend = 0
            nst = 0
            nopen = 0
            for s in range(S):
                if Qp[s] != qp[s]:
                    pend[npend] = s
                    npend += 1
                if stp[s] != STOP_NONE:
                    nst += 1
                if qp[s] != 0.0:
                    nopen += 1

            for t in range(b0, b1):
                tt = t - b0
                if hl and npend == 0 and nopen == 0:
                    # halted and flat: every later target is 0 = q, nothing can change again;
                    # the same numbers as the full bar loop (equity = cash + 0), much cheaper
                    eq = c_ + 0.0
                    if eq > pk:
                        pk = eq
                    for t2 in range(t, b1):
                        equity_out[t2, p] = eq
                        cash_out[t2, p] = c_
                    break
                # 1. fill pending targets at the open (in symbol order)
                if npend > 0:
                    keep = 0
                    for j in range(npend):
                        s = pend[j]
                        o = open_[t, s]
                        if not math.isfinite(o):
                            pend[keep] = s  # no price, no fill: the order waits
                            keep += 1
                            continue
                        Qs = Qp[s]
                        qs = qp[s]
                        qty = Qs - qs
                        px = o * (1.0 + slip) if qty > 0.0 else o * (1.0 - slip)
                        fee = comm * abs(qty) * px + fixed
                        c_ -= qty * px + fee
                        if qs == 0.0:
                            nopen += 1
                        elif Qs == 0.0:
                            nopen -= 1
                        if qs == 0.0 or (qs > 0.0 and Qs < 0.0) or (qs < 0.0 and Qs > 0.0):
                            ep[s] = px  # opens or flips
                            xp[s] = px
                            opp[s] = bar0 + t
                        elif abs(Qs) > abs(qs):
                            ep[s] = (qs * ep[s] + qty * px) / Qs  # grows: weighted average
                        qp[s] = Qs
                        if track:
                            dn[s], up_[s] = _levels(
                                Qs,
                                ep[s],
                                xp[s],
                                use_sl,
                                sl_long,
                                sl_short,
                                use_ts,
                                ts_long,
                                ts_short,
                                use_tp,
                                tp_long,
                                tp_short,
                            )
                        tr += abs(qty * px)
                        no += 1
                        if record:
                            r = rec[n]
                            r.portfolio = p
                            r.time = bar0 + t
                            r.symbol = s
                            r.reason = rp[s]
                            r.qty = qty
                            r.price = px
                            r.commission = fee
                            n += 1
                    npend = keep

                # 1b. intrabar exits (docs/ACCOUNTING.md, exits): gap through a level at the open fills there,
                # else a touched level fills at the level; the stop before the take-profit. The
                # extreme x moves to this bar's high (low) here, not at the close: nothing in
                # between reads it.
                if ib_exits and nopen > 0:
                    # flat symbols have levels (-inf, +inf): one branch-free pass lists the
                    # symbols whose levels were touched (a coin flip per symbol for a branch)
                    nt = _touched_then_extreme(
                        open_[t],
                        high[t],
                        low[t],
                        qp,
                        ep,
                        xp,
                        dn,
                        up_,
                        tidx,
                        odn,
                        oup,
                        use_sl,
                        sl_long,
                        sl_short,
                        use_ts,
                        ts_long,
                        ts_short,
                        use_tp,
                        tp_long,
                        tp_short,
                    )
                    for k in range(nt):
                        s = tidx[k]
                        qs = qp[s]
                        o = open_[t, s]
                        h = high[t, s]
                        lw = low[t, s]
                        below = odn[k]  # the levels before this bar's extreme
                        above = oup[k]
                        if math.isfinite(o) and math.isfinite(h) and math.isfinite(lw):
                            e = ep[s]
                            if qs > 0.0:
                                lvl = below
                                ltp = above
                                lwhy = (
                                    REASON_STOP
                                    if use_sl and lvl == e * sl_long
                                    else REASON_TRAILING
                                )
                                if o <= lvl:
                                    hit = o
                                    why = lwhy
                                elif o >= ltp:
                                    hit = o
                                    why = REASON_TAKE_PROFIT
                                elif lw <= lvl:
                                    hit = lvl
                                    why = lwhy
                                else:
                                    hit = ltp
                                    why = REASON_TAKE_PROFIT
                            else:
                                lvl = above
                                ltp = below
                                lwhy = (
                                    REASON_STOP
                                    if use_sl and lvl == e * sl_short
                                    else REASON_TRAILING
                                )
                                if o >= lvl:
                                    hit = o
                                    why = lwhy
                                elif o <= ltp:
                                    hit = o
                                    why = REASON_TAKE_PROFIT
                                elif h >= lvl:
                                    hit = lvl
                                    why = lwhy
                                else:
                                    hit = ltp
                                    why = REASON_TAKE_PROFIT
                            qty = -qs
                            px = hit * (1.0 + slip) if qty > 0.0 else hit * (1.0 - slip)
                            fee = comm * abs(qty) * px + fixed
                            c_ -= qty * px + fee
                            qp[s] = 0.0
                            Qp[s] = 0.0
                            wsp[s] = 0.0
                            dn[s] = -math.inf
                            up_[s] = math.inf
                            nopen -= 1
                            if stp[s] == STOP_NONE:
                                nst += 1
                            stp[s] = STOP_HELD  # released when u changes from the last close's
                            whyp[s] = why
                            tr += abs(qty * px)
                            no += 1
                            if record:
                                r = rec[n]
                                r.portfolio = p
                                r.time = bar0 + t
                                r.symbol = s
                                r.reason = why
                                r.qty = qty
                                r.price = px
                                r.commission = fee
                                n += 1

                # 2. mark at the last finite close
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                a3 = 0.0
                g0 = 0.0
                g1 = 0.0
                g2 = 0.0
                g3 = 0.0
                for s in range(0, S4, 4):
                    v0 = qp[s] * lc0[t, s]
                    v1 = qp[s + 1] * lc0[t, s + 1]
                    v2 = qp[s + 2] * lc0[t, s + 2]
                    v3 = qp[s + 3] * lc0[t, s + 3]
                    a0 += v0
                    a1 += v1
                    a2 += v2
                    a3 += v3
                    g0 += abs(v0)
                    g1 += abs(v1)
                    g2 += abs(v2)
                    g3 += abs(v3)
                for s in range(S4, S):
                    v0 = qp[s] * lc0[t, s]
                    a0 += v0
                    g0 += abs(v0)
                eq = c_ + ((a0 + a1) + (a2 + a3))
                equity_out[t, p] = eq
                cash_out[t, p] = c_
                if eq != 0.0:
                    gs += ((g0 + g1) + (g2 + g3)) / eq

                # 3. risk at the close: exit rules, drawdown halt
                if fast_stop:
                    for s in range(S):
                        # branch-free: the sign of a position is a coin flip for the predictor
                        qs = qp[s]
                        c = close[t, s]
                        e = ep[s]
                        hit_ = ((qs > 0.0) & (c <= e * sl_long)) | (
                            (qs < 0.0) & (c >= e * sl_short)
                        )
                        if hit_:
                            if stp[s] == STOP_NONE:
                                nst += 1
                            stp[s] = STOP_NEW
                            whyp[s] = REASON_STOP
                elif close_rules and nopen > 0:
                    if close_levels:
                        nt = 0  # branch-free pass listing the hits; flat symbols never hit
                        for s in range(S):
                            c = close[t, s]
                            tidx[nt] = s
                            nt += (c <= dn[s]) | (c >= up_[s])
                        for k in range(nt):
                            s = tidx[k]
                            c = close[t, s]
                            # the first rule that hits
                            e = ep[s]
                            x = xp[s]
                            if qp[s] > 0.0:
                                if c <= e * sl_long:
                                    why = REASON_STOP
                                elif c <= x * ts_long:
                                    why = REASON_TRAILING
                                else:
                                    why = REASON_TAKE_PROFIT
                            elif c >= e * sl_short:
                                why = REASON_STOP
                            elif c >= x * ts_short:
                                why = REASON_TRAILING
                            else:
                                why = REASON_TAKE_PROFIT
                            if stp[s] == STOP_NONE:
                                nst += 1
                            stp[s] = STOP_NEW
                            whyp[s] = why
                        if use_ts:  # after the tests: the extreme, this close included
                            _update_extreme(
                                qp,
                                ep,
                                xp,
                                close[t],
                                close[t],
                                dn,
                                up_,
                                use_sl,
                                sl_long,
                                sl_short,
                                use_ts,
                                ts_long,
                                ts_short,
                                use_tp,
                                tp_long,
                                tp_short,
                            )
                    if mh > 0:  # then the age, where no level hit at this close
                        age0 = bar0 + t + 1 - mh  # age t - t0 + 1 >= mh  <=>  t0 <= age0
                        old = False
                        for s in range(S):
                            old |= (qp[s] != 0.0) & (opp[s] <= age0) & (stp[s] != STOP_NEW)
                        for s in range(S if old else 0):
                            if (qp[s] != 0.0) & (opp[s] <= age0) & (stp[s] != STOP_NEW):
                                if stp[s] == STOP_NONE:
                                    nst += 1
                                stp[s] = STOP_NEW
                                whyp[s] = REASON_TIME
                if eq > pk:
                    pk = eq
                if eq < md_floor * pk:  # nan max_drawdown: never
                    hl = True

                # 4. target at the close: a held stop is released when u changes
                if nst > 0:  # branch-free: which symbols are stopped is a coin flip
                    prev_u = um[tt - 1] if tt > 0 else up
                    for s in range(S):
                        u = max(um[tt, s], lo)
                        prev = max(prev_u[s], lo) if tt > 0 else prev_u[s]
                        release = (stp[s] == STOP_HELD) & (u != prev)
                        stp[s] = STOP_NONE if release else stp[s]
                        nst -= release
                if vi < 0:
                    for s in range(S):
                        ws = max(um[tt, s], lo) * pw
                        w[s] = min(max(ws, -mp), mp)
                else:
                    for s in range(S):
                        vv = vol[vi, t, s]
                        if math.isfinite(vv) and vv > 0.0:
                            ws = max(um[tt, s], lo) * tv / vv
                        else:
                            ws = 0.0
                        w[s] = min(max(ws, -mp), mp)
                if mpos > 0:
                    _keep_top(w, um[tt], qp, stp, mpos, rank[tt])
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                a3 = 0.0
                for s in range(0, S4, 4):
                    a0 += abs(w[s])
                    a1 += abs(w[s + 1])
                    a2 += abs(w[s + 2])
                    a3 += abs(w[s + 3])
                for s in range(S4, S):
                    a0 += abs(w[s])
                gross = (a0 + a1) + (a2 + a3)
                if gross > mg:
                    f = mg / gross
                    for s in range(S):
                        w[s] = w[s] * f
                if hl:
                    for s in range(S):
                        w[s] = 0.0
                elif nst > 0:
                    for s in range(S):
                        w[s] = 0.0 if stp[s] != STOP_NONE else w[s]
                for s in range(S):
                    ws = w[s]
                    if abs(ws - wsp[s]) > band:
                        wsp[s] = ws
                        lcs = lc[t, s]
                        Qn = ws * eq / lcs if lcs == lcs else 0.0
                        was = Qp[s] != qp[s]
                        Qp[s] = Qn
                        now = Qn != qp[s]
                        if now and not was:
                            npend = _pend_insert(pend, npend, s)
                        elif was and not now:
                            npend = _pend_remove(pend, npend, s)
                        if hl:
                            rp[s] = REASON_HALT
                        elif nst > 0 and stp[s] != STOP_NONE:
                            rp[s] = whyp[s]
                        else:
                            rp[s] = REASON_SIGNAL
                if nst > 0:
                    for s in range(S):
                        stp[s] = STOP_HELD if stp[s] == STOP_NEW else stp[s]

            # end of the block for this portfolio: raw weights of its last bar, scalars
            for s in range(S):
                up[s] = max(um[b1 - 1 - b0, s], lo)
            state.cash[p] = c_
            state.peak[p] = pk
            state.halted[p] = hl
            state.traded[p] = tr
            state.gross_sum[p] = gs
            state.n_orders[p] = no

    return rec, n
