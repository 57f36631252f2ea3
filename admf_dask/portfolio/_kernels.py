"""Numba kernels of the accounting contract (DESIGN §2): ndarrays in, ndarrays out.

One call steps every portfolio of a batch over every bar of a time chunk. The state lives in flat
arrays that the call updates in place, so consecutive calls over consecutive chunks give exactly
the same numbers as one call over the whole series (nothing depends on where a chunk starts).

Loop order is portfolio-outer, bar-inner: one portfolio's state rows (a few KB) stay in L1 for the
whole chunk while the shared (bar, symbol) inputs stream from L2. Each portfolio's arithmetic is a
fixed sequence of float operations, so results do not depend on the batch a portfolio is in.

Layout of the packed parameters (one row per portfolio):

- ``fparams`` float64 (P, N_FPARAMS), columns ``F_*`` below; ``nan`` stop_loss / max_drawdown
  means "off" (every comparison with nan is false, so no branch is needed).
- ``iparams`` int64 (P, N_IPARAMS): ``I_MIX`` row of ``mixes`` (strategy weights), ``I_VOL``
  index into the vol stack (-1: fixed sizing), ``I_SHORT`` 1 when shorts are allowed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# fparams columns
F_POSITION_WEIGHT = 0
F_TARGET_VOL = 1
F_MAX_POSITION = 2
F_MAX_GROSS = 3
F_STOP_LOSS = 4
F_MAX_DRAWDOWN = 5
F_BAND = 6
F_COMMISSION = 7
F_COMMISSION_FIXED = 8
F_SLIPPAGE_BPS = 9
N_FPARAMS = 10
# iparams columns
I_MIX = 0
I_VOL = 1
I_SHORT = 2
N_IPARAMS = 3

# why the target behind a fill was set (orders.parquet `reason`)
REASON_SIGNAL = 0
REASON_STOP = 1
REASON_HALT = 2
REASON_NAMES = ("signal", "stop", "halt")

# per-(portfolio, symbol) stop state: NEW = marked at this bar's close (cannot clear at this
# bar), HELD = marked earlier, clears at the first bar where the raw weight u changes
STOP_NONE = 0
STOP_HELD = 1
STOP_NEW = 2


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


@njit(cache=True, nogil=True)
def _mix_signals(signals, weights, out):
    # u = clip(sum_k W[k] * S[t, s, k], -1, 1); nan signals count as 0
    T, S, K = signals.shape
    for t in range(T):
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
            out[t, s] = acc


@njit(cache=True, nogil=True)
def _grow(a, n):
    b = np.empty(n, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def step_chunk(
    open_,
    close,
    signals,
    vol,
    mixes,
    fparams,
    iparams,
    last_close,
    cash,
    peak,
    halted,
    q,
    entry,
    target,
    w_set,
    u_prev,
    stopped,
    reason,
    traded,
    gross_sum,
    n_orders,
    equity_out,
    cash_out,
    t0,
    record,
):
    """Step every portfolio of a batch over every bar of one time chunk (DESIGN §2).

    At each bar t, per portfolio: (1) fill pending targets at the open, (2) mark at the last
    finite close, (3) stop and drawdown rules at the close, (4) new targets at the close (they
    fill at t+1).

    Parameters
    ----------
    open_, close : ndarray float64 (T, S)
        Bars of the chunk; nan = no price.
    signals : ndarray float64 (T, S, K)
        Strategy signals in [-1, 1]; nan counts as 0.
    vol : ndarray float64 (V, T, S)
        Volatility features for vol_target sizing (V may be 0).
    mixes : ndarray float64 (M, K)
        Distinct strategy weight rows; ``iparams[:, I_MIX]`` points into it.
    fparams : ndarray float64 (P, N_FPARAMS)
    iparams : ndarray int64 (P, N_IPARAMS)
    last_close : ndarray float64 (S,)
        In/out: last finite close per symbol (nan: never priced).
    cash, peak : ndarray float64 (P,)
        In/out state.
    halted : ndarray bool (P,)
        In/out state.
    q, entry, target, w_set, u_prev : ndarray float64 (P, S)
        In/out state: shares, entry price, target shares Q, set weight, last raw weight u.
    stopped, reason : ndarray int8 (P, S)
        In/out state: ``STOP_*`` flag, ``REASON_*`` of the pending target.
    traded : ndarray float64 (P,)
        In/out accumulator: sum of |qty * px| of the fills.
    gross_sum : ndarray float64 (P,)
        In/out accumulator: sum over bars of the gross exposure sum|q * close| / equity.
    n_orders : ndarray int64 (P,)
        In/out accumulator: number of fills.
    equity_out, cash_out : ndarray float64 (T, P)
        Out: equity and cash at each close.
    t0 : int
        Global index of the chunk's first bar (stamped on the order records).
    record : bool
        Collect order records (false: only count them).

    Returns
    -------
    tuple
        ``(portfolio int32, time int32, symbol int32, qty, price, commission float64,
        reason int8, n)``: order buffers, of which the first ``n`` rows are valid. Rows are
        sorted by (mix, portfolio, time, symbol).
    """
    T, S = close.shape
    P = cash.shape[0]
    lc = carry_last_close(close, last_close)
    lc0 = np.where(np.isnan(lc), 0.0, lc)  # q is 0 wherever lc is nan: mark with 0 there

    # per-portfolio scratch (at most one fill per symbol and bar); appended to the output after
    # each portfolio, so the hot loop never reallocates (that made numba ~10x slower)
    scratch = T * S if record else 0
    r_time = np.empty(scratch, dtype=np.int32)
    r_sym = np.empty(scratch, dtype=np.int32)
    r_qty = np.empty(scratch)
    r_px = np.empty(scratch)
    r_comm = np.empty(scratch)
    r_reason = np.empty(scratch, dtype=np.int8)
    cap = 1024
    o_port = np.empty(cap, dtype=np.int32)
    o_time = np.empty(cap, dtype=np.int32)
    o_sym = np.empty(cap, dtype=np.int32)
    o_qty = np.empty(cap)
    o_px = np.empty(cap)
    o_comm = np.empty(cap)
    o_reason = np.empty(cap, dtype=np.int8)
    n = 0

    order = np.argsort(iparams[:, I_MIX], kind="mergesort")  # one signal mix per group
    u_mix = np.empty((T, S))
    cur_mix = -1
    w = np.empty(S)

    for pi in range(P):
        p = order[pi]
        m = iparams[p, I_MIX]
        if m != cur_mix:
            _mix_signals(signals, mixes[m], u_mix)
            cur_mix = m
        vi = iparams[p, I_VOL]
        short = iparams[p, I_SHORT] != 0
        pw = fparams[p, F_POSITION_WEIGHT]
        tv = fparams[p, F_TARGET_VOL]
        mp = fparams[p, F_MAX_POSITION]
        mg = fparams[p, F_MAX_GROSS]
        sl = fparams[p, F_STOP_LOSS]
        md = fparams[p, F_MAX_DRAWDOWN]
        band = fparams[p, F_BAND]
        comm = fparams[p, F_COMMISSION]
        fixed = fparams[p, F_COMMISSION_FIXED]
        slip = fparams[p, F_SLIPPAGE_BPS]
        use_stop = sl == sl
        c_ = cash[p]
        pk = peak[p]
        hl = halted[p]
        tr = traded[p]
        gs = gross_sum[p]
        no = n_orders[p]
        qp = q[p]
        ep = entry[p]
        Qp = target[p]
        wsp = w_set[p]
        up = u_prev[p]
        stp = stopped[p]
        rp = reason[p]
        k = 0

        for t in range(T):
            # 1. fill at the open, 2. mark at the last finite close
            asset = 0.0
            gross_v = 0.0
            for s in range(S):
                Qs = Qp[s]
                qs = qp[s]
                if Qs != qs:
                    o = open_[t, s]
                    if math.isfinite(o):
                        qty = Qs - qs
                        sgn = 1.0 if qty > 0.0 else -1.0
                        px = o * (1.0 + sgn * slip / 1e4)
                        fee = comm * abs(qty) * px + fixed
                        c_ -= qty * px + fee
                        if qs == 0.0 or (qs > 0.0 and Qs < 0.0) or (qs < 0.0 and Qs > 0.0):
                            ep[s] = px
                        elif abs(Qs) > abs(qs):
                            ep[s] = (qs * ep[s] + qty * px) / Qs
                        qp[s] = Qs
                        qs = Qs
                        tr += abs(qty * px)
                        no += 1
                        if record:
                            r_time[k] = t0 + t
                            r_sym[k] = s
                            r_qty[k] = qty
                            r_px[k] = px
                            r_comm[k] = fee
                            r_reason[k] = rp[s]
                            k += 1
                v = qs * lc0[t, s]
                asset += v
                gross_v += abs(v)
            eq = c_ + asset
            equity_out[t, p] = eq
            cash_out[t, p] = c_
            if eq != 0.0:
                gs += gross_v / eq

            # 3. risk: drawdown halt (stops are checked per symbol below, before the target)
            if eq > pk:
                pk = eq
            if eq < (1.0 - md) * pk:
                hl = True

            # 4. target: raw weight, sizing, per-position cap, gross cap
            gross = 0.0
            for s in range(S):
                if use_stop:
                    qs = qp[s]
                    if qs > 0.0:
                        if close[t, s] <= ep[s] * (1.0 - sl):
                            stp[s] = STOP_NEW
                    elif qs < 0.0:
                        if close[t, s] >= ep[s] * (1.0 + sl):
                            stp[s] = STOP_NEW
                u = u_mix[t, s]
                if not short and u < 0.0:
                    u = 0.0
                if stp[s] == STOP_HELD and u != up[s]:
                    stp[s] = STOP_NONE
                up[s] = u
                if vi < 0:
                    ws = u * pw
                else:
                    vv = vol[vi, t, s]
                    if math.isfinite(vv) and vv > 0.0:
                        ws = u * tv / vv
                    else:
                        ws = 0.0
                if ws > mp:
                    ws = mp
                elif ws < -mp:
                    ws = -mp
                w[s] = ws
                gross += abs(ws)
            scale = gross > mg
            f = mg / gross if scale else 1.0
            for s in range(S):
                ws = w[s] * f if scale else w[s]
                st = stp[s]
                if hl or st != STOP_NONE:
                    ws = 0.0
                if st == STOP_NEW:
                    stp[s] = STOP_HELD
                if abs(ws - wsp[s]) > band:
                    wsp[s] = ws
                    lcs = lc[t, s]
                    Qp[s] = ws * eq / lcs if lcs == lcs else 0.0
                    if hl:
                        rp[s] = REASON_HALT
                    elif st != STOP_NONE:
                        rp[s] = REASON_STOP
                    else:
                        rp[s] = REASON_SIGNAL

        if k > 0:
            if n + k > cap:
                cap = max(2 * cap, n + k)
                o_port = _grow(o_port, cap)
                o_time = _grow(o_time, cap)
                o_sym = _grow(o_sym, cap)
                o_qty = _grow(o_qty, cap)
                o_px = _grow(o_px, cap)
                o_comm = _grow(o_comm, cap)
                o_reason = _grow(o_reason, cap)
            o_port[n : n + k] = p
            o_time[n : n + k] = r_time[:k]
            o_sym[n : n + k] = r_sym[:k]
            o_qty[n : n + k] = r_qty[:k]
            o_px[n : n + k] = r_px[:k]
            o_comm[n : n + k] = r_comm[:k]
            o_reason[n : n + k] = r_reason[:k]
            n += k
        cash[p] = c_
        peak[p] = pk
        halted[p] = hl
        traded[p] = tr
        gross_sum[p] = gs
        n_orders[p] = no

    return o_port, o_time, o_sym, o_qty, o_px, o_comm, o_reason, n
