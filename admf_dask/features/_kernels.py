"""Indicator kernels: numba, 2-D float64 ``(time, symbol)`` ndarrays in and out.

No xarray, dask or config here (docs/ARCHITECTURE.md, layers). Every kernel loops time outside and symbols
inside: arrays are C-ordered ``(time, symbol)``, so the inner loop is contiguous, and the
per-symbol recursions (EMA, Wilder) are independent lanes that LLVM vectorizes (TA-Lib runs
one latency-bound chain per symbol).

Two families:

* **Window kernels** (``sma``, ``bbands``, ``zscore``, ``volatility``, ``donchian``, ``roc``,
  ``returns``) take ``offset``, the global time index of row 0. A window statistic is built
  from a suffix of the previous *aligned* block of ``window`` rows plus a prefix of the current
  one (van Herk / Gil-Werman). Blocks are aligned to global indices, so the value at bar t is
  a function of the window's values and ``t % window`` only: any halo'd time chunking gives
  bit-identical results, in O(n) per output series. Rows with fewer than ``window`` rows of
  history in the given array are NaN (a halo'd caller trims them).
  *Missing bars*: a NaN anywhere in the window gives NaN (pandas ``rolling(window)`` with the
  default ``min_periods=window``).
* **Recursive kernels** (``ema``, ``rsi``, ``atr``, ``macd``) take and return a ``state`` array
  ``(n_state, symbol)``; feeding a chunk's returned state into the next chunk gives exactly the
  single-pass result. Each symbol is seeded exactly as TA-Lib seeds a series that starts at
  its first valid bar (SMA seed for EMA/MACD, Wilder averages for RSI/ATR) with TA-Lib's
  operation order, except that Wilder smoothing multiplies by 1/period where TA-Lib divides
  (<= 1 ulp per step, 3x faster); values match TA-Lib to ~1e-14 relative (EMA, RSI and the
  MACD line bit for bit with the TA-Lib 0.8 build the tests use).
  *Missing bars*: a NaN bar is skipped; the state is carried through unchanged and the output
  on that bar is NaN. The result equals TA-Lib run on the symbol's valid bars only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

# TA-Lib's TA_IS_ZERO: |v| < 1e-8 counts as zero (RSI's gain+loss test).
_TA_EPSILON = 0.00000001


def _as2d(x: np.ndarray) -> np.ndarray:
    """Return a C-contiguous 2-D float64 view/copy (1-D input becomes one symbol column)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------------------------
# window kernels (prefix/suffix over global blocks)
# --------------------------------------------------------------------------------------------


@njit(**_JIT)
def _nan_head(out, n_rows):  # pragma: no cover - numba
    """NaN in the first rows (too little history in the array)."""
    for t in range(min(n_rows, out.shape[0])):
        for s in range(out.shape[1]):
            out[t, s] = np.nan


@njit(**_JIT)
def _rolling_sum(x, w, offset, scale):  # pragma: no cover - numba
    """Rolling sum of ``w`` rows times ``scale`` (1/w gives the mean)."""
    n_t, n_s = x.shape
    out = np.empty((n_t, n_s))
    _nan_head(out, w - 1)
    suf = np.empty((w, n_s))
    pre = np.empty(n_s)
    r = 0
    while r < n_t:
        g0 = offset + r
        end = min(n_t, g0 - g0 % w + w - offset)  # row after this block's last row
        for rr in range(r, end):
            if rr == r:
                for s in range(n_s):
                    pre[s] = x[rr, s]
            else:
                for s in range(n_s):
                    pre[s] += x[rr, s]
            if rr >= w - 1:
                a_pos = (offset + rr + 1) % w  # window start's position in its block
                if a_pos == 0:
                    for s in range(n_s):
                        out[rr, s] = pre[s] * scale
                else:
                    for s in range(n_s):
                        out[rr, s] = (suf[a_pos, s] + pre[s]) * scale
        for rr in range(end - 1, r - 1, -1):
            pos = (offset + rr) % w
            if rr == end - 1:
                for s in range(n_s):
                    suf[pos, s] = x[rr, s]
            else:
                for s in range(n_s):
                    suf[pos, s] = x[rr, s] + suf[pos + 1, s]
        r = end
    return out


@njit(**_JIT)
def _rolling_mean_std(x, w, offset, ddof):  # pragma: no cover - numba
    """Rolling mean and std (``ddof``) by Welford prefix/suffix merges (Chan et al.)."""
    n_t, n_s = x.shape
    mean = np.empty((n_t, n_s))
    std = np.empty((n_t, n_s))
    _nan_head(mean, w - 1)
    _nan_head(std, w - 1)
    suf_mean = np.empty((w, n_s))
    suf_m2 = np.empty((w, n_s))
    pre_mean = np.empty(n_s)
    pre_m2 = np.empty(n_s)
    inv_dof = 1.0 / (w - ddof)
    r = 0
    while r < n_t:
        g0 = offset + r
        b0 = g0 - g0 % w
        end = min(n_t, b0 + w - offset)
        for rr in range(r, end):
            g = offset + rr
            if rr == r:
                for s in range(n_s):
                    pre_mean[s] = x[rr, s]
                    pre_m2[s] = 0.0
            else:
                inv_n = 1.0 / (g - b0 + 1)
                for s in range(n_s):
                    v = x[rr, s]
                    d = v - pre_mean[s]
                    mu = pre_mean[s] + d * inv_n
                    pre_mean[s] = mu
                    pre_m2[s] += d * (v - mu)
            if rr >= w - 1:
                a_pos = (g + 1) % w
                if a_pos == 0:
                    for s in range(n_s):
                        mean[rr, s] = pre_mean[s]
                        m2 = pre_m2[s]
                        std[rr, s] = (
                            math.sqrt(m2 * inv_dof) if m2 > 0.0 else (0.0 if m2 == m2 else m2)
                        )
                else:
                    c_mean = a_pos / w
                    c_m2 = (w - a_pos) * a_pos / w
                    for s in range(n_s):
                        d = pre_mean[s] - suf_mean[a_pos, s]
                        mean[rr, s] = suf_mean[a_pos, s] + d * c_mean
                        m2 = suf_m2[a_pos, s] + pre_m2[s] + d * d * c_m2
                        # 0 for a flat window, NaN for a window with a NaN
                        std[rr, s] = (
                            math.sqrt(m2 * inv_dof) if m2 > 0.0 else (0.0 if m2 == m2 else m2)
                        )
        for rr in range(end - 1, r - 1, -1):
            pos = (offset + rr) % w
            if rr == end - 1:
                for s in range(n_s):
                    suf_mean[pos, s] = x[rr, s]
                    suf_m2[pos, s] = 0.0
            else:
                inv_n = 1.0 / (w - pos)
                for s in range(n_s):
                    v = x[rr, s]
                    d = v - suf_mean[pos + 1, s]
                    mu = suf_mean[pos + 1, s] + d * inv_n
                    suf_mean[pos, s] = mu
                    suf_m2[pos, s] = suf_m2[pos + 1, s] + d * (v - mu)
        r = end
    return mean, std


@njit(**_JIT)
def _rolling_extreme(x, w, offset, want_max):  # pragma: no cover - numba
    """Rolling max (``want_max``) or min; NaN in the window propagates."""
    n_t, n_s = x.shape
    out = np.empty((n_t, n_s))
    _nan_head(out, w - 1)
    suf = np.empty((w, n_s))
    pre = np.empty(n_s)
    r = 0
    while r < n_t:
        g0 = offset + r
        end = min(n_t, g0 - g0 % w + w - offset)
        for rr in range(r, end):
            if rr == r:
                for s in range(n_s):
                    pre[s] = x[rr, s]
            else:
                for s in range(n_s):
                    v = x[rr, s]
                    p = pre[s]
                    # keep a NaN once seen, else the larger (smaller) value; bitwise ops and a
                    # select instead of branches, so LLVM vectorizes the loop
                    better = (v > p) if want_max else (v < p)
                    pre[s] = v if (v != v) | ((p == p) & better) else p
            if rr >= w - 1:
                a_pos = (offset + rr + 1) % w
                if a_pos == 0:
                    for s in range(n_s):
                        out[rr, s] = pre[s]
                else:
                    for s in range(n_s):
                        a = suf[a_pos, s]
                        b = pre[s]
                        better = (a > b) if want_max else (a < b)
                        out[rr, s] = a if (a != a) | ((b == b) & better) else b
        for rr in range(end - 1, r - 1, -1):
            pos = (offset + rr) % w
            if rr == end - 1:
                for s in range(n_s):
                    suf[pos, s] = x[rr, s]
            else:
                for s in range(n_s):
                    v = x[rr, s]
                    p = suf[pos + 1, s]
                    better = (v > p) if want_max else (v < p)
                    suf[pos, s] = v if (v != v) | ((p == p) & better) else p
        r = end
    return out


@njit(**_JIT)
def _sma_kernel(x, w, offset):  # pragma: no cover - numba
    return _rolling_sum(x, w, offset, 1.0 / w)


@njit(**_JIT)
def _bbands_kernel(x, w, k, offset):  # pragma: no cover - numba
    mean, std = _rolling_mean_std(x, w, offset, 0)
    n_t, n_s = x.shape
    upper = np.empty((n_t, n_s))
    lower = std  # reuse: std is not an output
    for t in range(n_t):
        for s in range(n_s):
            dev = k * std[t, s]
            upper[t, s] = mean[t, s] + dev
            lower[t, s] = mean[t, s] - dev
    return upper, mean, lower


@njit(**_JIT)
def _zscore_kernel(x, w, offset):  # pragma: no cover - numba
    mean, std = _rolling_mean_std(x, w, offset, 1)
    n_t, n_s = x.shape
    for t in range(n_t):
        for s in range(n_s):
            sd = std[t, s]
            # a flat window (std 0): x is its mean, z = 0 rather than 0/0
            std[t, s] = (x[t, s] - mean[t, s]) / sd if sd > 0.0 else sd
    return std


@njit(**_JIT)
def _volatility_kernel(x, w, ppy, offset):  # pragma: no cover - numba
    n_t, n_s = x.shape
    lr = np.empty((n_t, n_s))
    for s in range(n_s):
        lr[0, s] = np.nan
    for t in range(1, n_t):
        for s in range(n_s):
            lr[t, s] = math.log(x[t, s] / x[t - 1, s])
    _mean, std = _rolling_mean_std(lr, w, offset, 1)
    scale = math.sqrt(ppy)
    for t in range(n_t):
        for s in range(n_s):
            std[t, s] *= scale
    return std


@njit(**_JIT)
def _roc_kernel(x, w):  # pragma: no cover - numba
    n_t, n_s = x.shape
    out = np.empty((n_t, n_s))
    _nan_head(out, w)
    for t in range(w, n_t):
        for s in range(n_s):
            base = x[t - w, s]
            # TA-Lib ROCP: a zero base gives 0; a NaN base gives NaN (NaN != 0)
            out[t, s] = (x[t, s] - base) / base if base != 0.0 else 0.0
    return out


@njit(**_JIT)
def _returns_kernel(x, w):  # pragma: no cover - numba
    n_t, n_s = x.shape
    out = np.empty((n_t, n_s))
    _nan_head(out, w)
    for t in range(w, n_t):
        for s in range(n_s):
            out[t, s] = x[t, s] / x[t - w, s] - 1.0
    return out


# --------------------------------------------------------------------------------------------
# recursive kernels (state carried chunk to chunk)
# --------------------------------------------------------------------------------------------

# state rows per symbol (row 0 counts valid bars while seeding, then marks the steady state)
EMA_STATE = 3  # count, seed sum, EMA
RSI_STATE = 4  # count, previous value, average gain, average loss
ATR_STATE = 3  # count, previous close, TR seed sum then ATR
MACD_STATE = 7  # count, slow seed sum, fast seed sum, slow EMA, fast EMA, signal sum, signal EMA


# Each recursive kernel handles a row in two passes: a branch-free pass over all symbols that
# updates the symbols in their steady state (masked selects, so LLVM vectorizes it), then, only
# if some valid symbol of the row is still warming up (seeding), a scalar pass for those. A
# state count above the seed length marks a steady symbol; NaN bars leave the state untouched.


@njit(**_JIT)
def _ema_kernel(x, period, state):  # pragma: no cover - numba
    n_t, n_s = x.shape
    out = np.empty((n_t, n_s))
    k = 2.0 / float(period + 1)  # TA-Lib PER_TO_K
    lim = period - 0.5  # steady once `period` valid bars were seen
    for t in range(n_t):
        warm = False
        for s in range(n_s):
            v = x[t, s]
            ok = v == v
            st = state[0, s] > lim
            prev = state[2, s]
            p = ((v - prev) * k) + prev
            m = ok & st
            state[2, s] = p if m else prev
            out[t, s] = p if m else np.nan
            warm |= ok & (st ^ True)
        if warm:
            for s in range(n_s):
                v = x[t, s]
                if v != v or state[0, s] > lim:
                    continue
                n = state[0, s] + 1.0
                state[0, s] = n
                state[1, s] += v  # seed: SMA of the first `period` valid bars
                if n == period:
                    state[2, s] = state[1, s] / period
                    out[t, s] = state[2, s]
    return out


@njit(**_JIT)
def _rsi_value(gain, loss):  # pragma: no cover - numba
    tot = gain + loss
    # TA-Lib's TA_IS_ZERO: no movement at all gives 0
    return 0.0 if (-_TA_EPSILON < tot) & (tot < _TA_EPSILON) else 100.0 * (gain / tot)


@njit(**_JIT)
def _rsi_kernel(x, period, state):  # pragma: no cover - numba
    n_t, n_s = x.shape
    out = np.empty((n_t, n_s))
    pm1 = float(period - 1)
    inv_p = 1.0 / period
    lim = period + 0.5  # steady once period+1 valid bars (period changes) were seen
    for t in range(n_t):
        warm = False
        for s in range(n_s):
            v = x[t, s]
            ok = v == v
            st = state[0, s] > lim
            d = v - state[1, s]
            lo0 = state[3, s]
            g0 = state[2, s]
            # Wilder smoothing (TA-Lib: *(period-1), add the move, /period)
            loss = (lo0 * pm1 - min(d, 0.0)) * inv_p
            gain = (g0 * pm1 + max(d, 0.0)) * inv_p
            m = ok & st
            state[3, s] = loss if m else lo0
            state[2, s] = gain if m else g0
            state[1, s] = v if m else state[1, s]
            out[t, s] = _rsi_value(gain, loss) if m else np.nan
            warm |= ok & (st ^ True)
        if warm:
            for s in range(n_s):
                v = x[t, s]
                if v != v or state[0, s] > lim:
                    continue
                n = state[0, s] + 1.0
                state[0, s] = n
                d = v - state[1, s]
                state[1, s] = v
                if n == 1.0:  # first bar: no change yet
                    continue
                # Wilder's seed: plain average of the first `period` changes
                if d < 0.0:
                    state[3, s] -= d
                else:
                    state[2, s] += d
                if n == period + 1:
                    state[3, s] /= period
                    state[2, s] /= period
                    out[t, s] = _rsi_value(state[2, s], state[3, s])
                    state[0, s] = n + 1.0
    return out


@njit(**_JIT)
def _true_range(h, lo, pc):  # pragma: no cover - numba
    # TA-Lib TRANGE: the largest of the three (max() picks the same value, without branches)
    return max(h - lo, max(abs(pc - h), abs(pc - lo)))


@njit(**_JIT)
def _atr_kernel(high, low, close, period, state):  # pragma: no cover - numba
    n_t, n_s = close.shape
    out = np.empty((n_t, n_s))
    pm1 = float(period - 1)
    inv_p = 1.0 / period
    lim = period + 0.5  # steady once period+1 valid bars (period true ranges) were seen
    for t in range(n_t):
        warm = False
        for s in range(n_s):
            h = high[t, s]
            lo = low[t, s]
            c = close[t, s]
            ok = (h == h) & (lo == lo) & (c == c)  # a bar is missing if any is NaN
            st = state[0, s] > lim
            pc = state[1, s]
            prev = state[2, s]
            a = (prev * pm1 + _true_range(h, lo, pc)) * inv_p  # Wilder smoothing
            m = ok & st
            state[2, s] = a if m else prev
            state[1, s] = c if m else pc
            out[t, s] = a if m else np.nan
            warm |= ok & (st ^ True)
        if warm:
            for s in range(n_s):
                h = high[t, s]
                lo = low[t, s]
                c = close[t, s]
                if h != h or lo != lo or c != c or state[0, s] > lim:
                    continue
                n = state[0, s] + 1.0
                state[0, s] = n
                pc = state[1, s]
                state[1, s] = c
                if n == 1.0:
                    continue
                state[2, s] += _true_range(h, lo, pc)  # seed: mean of the first `period` TRs
                if n == period + 1:
                    state[2, s] = state[2, s] / period
                    out[t, s] = state[2, s]
                    state[0, s] = n + 1.0
    return out


@njit(**_JIT)
def _macd_kernel(x, fast, slow, signal, state):  # pragma: no cover - numba
    n_t, n_s = x.shape
    macd = np.empty((n_t, n_s))
    sig = np.empty((n_t, n_s))
    hist = np.empty((n_t, n_s))
    fast_k = 2.0 / float(fast + 1)
    slow_k = 2.0 / float(slow + 1)
    sig_k = 2.0 / float(signal + 1)
    first = slow + signal - 1  # valid bars up to the first bar with all three outputs
    lim = first - 0.5
    for t in range(n_t):
        warm = False
        for s in range(n_s):
            v = x[t, s]
            ok = v == v
            st = state[0, s] > lim
            # three EMAs in lockstep, TA-Lib's order: ((x - prev) * k) + prev
            f0 = state[4, s]
            s0 = state[3, s]
            p0 = state[6, s]
            f = (v - f0) * fast_k + f0
            sl = (v - s0) * slow_k + s0
            m_ = f - sl
            p = (m_ - p0) * sig_k + p0
            m = ok & st
            state[4, s] = f if m else f0
            state[3, s] = sl if m else s0
            state[6, s] = p if m else p0
            macd[t, s] = m_ if m else np.nan
            sig[t, s] = p if m else np.nan
            hist[t, s] = m_ - p if m else np.nan
            warm |= ok & (st ^ True)
        if warm:
            for s in range(n_s):
                v = x[t, s]
                if v != v or state[0, s] > lim:
                    continue
                n = state[0, s] + 1.0
                state[0, s] = n
                if n <= slow:
                    # seeds: slow over the first `slow` bars, fast over the last `fast` of
                    # them (TA-Lib aligns the fast EMA to start where the slow one does)
                    state[1, s] += v
                    if n > slow - fast:
                        state[2, s] += v
                    if n < slow:
                        continue
                    state[3, s] = state[1, s] / slow
                    state[4, s] = state[2, s] / fast
                    m_ = state[4, s] - state[3, s]
                    state[5, s] = 0.0 + m_
                else:
                    state[4, s] = (v - state[4, s]) * fast_k + state[4, s]
                    state[3, s] = (v - state[3, s]) * slow_k + state[3, s]
                    m_ = state[4, s] - state[3, s]
                    state[5, s] += m_  # signal seed: sum of the first `signal` MACD values
                if n == first:
                    p = state[5, s] / signal
                    state[6, s] = p
                    macd[t, s] = m_
                    sig[t, s] = p
                    hist[t, s] = m_ - p
                    state[0, s] = n + 1.0
    return macd, sig, hist


# --------------------------------------------------------------------------------------------
# ndarray-level API (what the registered indicators and the benchmarks call)
# --------------------------------------------------------------------------------------------


def new_state(n_state: int, n_symbols: int) -> np.ndarray:
    """Return the initial (empty history) state of a recursive kernel."""
    return np.zeros((n_state, n_symbols))


def sma(x: np.ndarray, window: int, offset: int = 0) -> np.ndarray:
    """Simple moving average; twin: ``talib.SMA(x, window)``."""
    return _sma_kernel(_as2d(x), int(window), int(offset))


def bbands(
    x: np.ndarray, window: int, k: float, offset: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (upper, middle, lower), population std (ddof 0).

    Twin: ``talib.BBANDS(x, window, k, k, matype=0)``.
    """
    return _bbands_kernel(_as2d(x), int(window), float(k), int(offset))


def zscore(x: np.ndarray, window: int, offset: int = 0) -> np.ndarray:
    """Rolling z-score with sample std (ddof 1); twin:
    ``(s - s.rolling(w).mean()) / s.rolling(w).std()``. A flat window (std 0) gives 0.
    """
    return _zscore_kernel(_as2d(x), int(window), int(offset))


def volatility(x: np.ndarray, window: int, periods_per_year: float, offset: int = 0) -> np.ndarray:
    """Annualized std (ddof 1) of log returns; twin:
    ``np.log(s / s.shift(1)).rolling(w).std() * sqrt(periods_per_year)``.
    """
    return _volatility_kernel(_as2d(x), int(window), float(periods_per_year), int(offset))


def rolling_max(x: np.ndarray, window: int, offset: int = 0) -> np.ndarray:
    """Rolling max including the current bar; twin: ``talib.MAX`` / ``s.rolling(w).max()``."""
    return _rolling_extreme(_as2d(x), int(window), int(offset), True)


def rolling_min(x: np.ndarray, window: int, offset: int = 0) -> np.ndarray:
    """Rolling min including the current bar; twin: ``talib.MIN`` / ``s.rolling(w).min()``."""
    return _rolling_extreme(_as2d(x), int(window), int(offset), False)


def roc(x: np.ndarray, window: int) -> np.ndarray:
    """Rate of change as a fraction; twin: ``talib.ROCP(x, window)`` (zero base gives 0)."""
    return _roc_kernel(_as2d(x), int(window))


def returns(x: np.ndarray, window: int = 1) -> np.ndarray:
    """Simple return over ``window`` bars; twin: ``s.pct_change(window)`` (no fill)."""
    return _returns_kernel(_as2d(x), int(window))


def ema(
    x: np.ndarray, window: int, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """EMA with TA-Lib's SMA seed; twin: ``talib.EMA(x, window)``. Returns (ema, state)."""
    x = _as2d(x)
    st = new_state(EMA_STATE, x.shape[1]) if state is None else state
    return _ema_kernel(x, int(window), st), st


def rsi(
    x: np.ndarray, window: int = 14, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Wilder RSI; twin: ``talib.RSI(x, window)`` (default unstable period 0)."""
    x = _as2d(x)
    st = new_state(RSI_STATE, x.shape[1]) if state is None else state
    return _rsi_kernel(x, int(window), st), st


def atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window: int = 14,
    state: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilder ATR; twin: ``talib.ATR(high, low, close, window)``."""
    c = _as2d(close)
    st = new_state(ATR_STATE, c.shape[1]) if state is None else state
    return _atr_kernel(_as2d(high), _as2d(low), c, int(window), st), st


def macd(
    x: np.ndarray,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    state: np.ndarray | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """MACD line, signal, histogram; twin: ``talib.MACD(x, fast, slow, signal)``."""
    x = _as2d(x)
    st = new_state(MACD_STATE, x.shape[1]) if state is None else state
    return _macd_kernel(x, int(fast), int(slow), int(signal), st), st


# --------------------------------------------------------------------------------------------
# cross-sectional kernels (across symbols at each bar; need whole symbol rows, no history)
# --------------------------------------------------------------------------------------------


@njit(**_JIT)
def _cs_rank_kernel(x, mask, sign):  # pragma: no cover - numba
    n_t, n_s = x.shape
    out = np.full((n_t, n_s), np.nan)
    idx = np.empty(n_s, dtype=np.int64)
    vals = np.empty(n_s)
    for t in range(n_t):
        n = 0
        for s in range(n_s):
            v = x[t, s]
            if mask[t, s] and np.isfinite(v):
                idx[n] = s
                vals[n] = sign * v
                n += 1
        if n == 0:
            continue
        if n == 1:
            out[t, idx[0]] = 0.5
            continue
        order = np.argsort(vals[:n])
        denom = n - 1.0
        i = 0
        while i < n:
            j = i
            v = vals[order[i]]
            while j + 1 < n and vals[order[j + 1]] == v:
                j += 1
            # 1-based average rank of the tie group i..j, as pandas rank(method="average")
            r = (i + 1 + j + 1) / 2.0
            q = (r - 1.0) / denom
            for m in range(i, j + 1):
                out[t, idx[order[m]]] = q
            i = j + 1
    return out


@njit(**_JIT)
def _cs_zscore_kernel(x, mask):  # pragma: no cover - numba
    n_t, n_s = x.shape
    out = np.full((n_t, n_s), np.nan)
    for t in range(n_t):
        n = 0
        total = 0.0
        for s in range(n_s):
            v = x[t, s]
            if mask[t, s] and np.isfinite(v):
                n += 1
                total += v
        if n < 2:
            continue
        mean = total / n
        ss = 0.0
        for s in range(n_s):
            v = x[t, s]
            if mask[t, s] and np.isfinite(v):
                ss += (v - mean) * (v - mean)
        std = math.sqrt(ss / n)
        if std == 0.0:
            continue
        for s in range(n_s):
            v = x[t, s]
            if mask[t, s] and np.isfinite(v):
                out[t, s] = (v - mean) / std
    return out


def _mask(x: np.ndarray, universe: np.ndarray | None) -> np.ndarray:
    if universe is None:
        return np.ones(x.shape, dtype=np.bool_)
    return np.ascontiguousarray(_as2d(universe) > 0.5)


def cs_rank(
    x: np.ndarray, universe: np.ndarray | None = None, ascending: bool = True
) -> np.ndarray:
    """Cross-sectional rank scaled to [0, 1]: ``(r - 1) / (n - 1)``, r the 1-based average rank
    among the n symbols with a finite value (and in the universe) at that bar; n = 1 gives 0.5,
    other symbols NaN. ``ascending=False`` ranks the largest first.
    Twin (pandas): ``(df.rank(axis=1, ascending=...) - 1) / (df.count(axis=1) - 1)``.
    """
    a = _as2d(x)
    return _cs_rank_kernel(a, _mask(a, universe), 1.0 if ascending else -1.0)


def cs_zscore(x: np.ndarray, universe: np.ndarray | None = None) -> np.ndarray:
    """Cross-sectional z-score ``(x - mean) / std`` (ddof 0) over the symbols with a finite value
    (and in the universe) at that bar; NaN when fewer than 2 or std = 0.
    Twin (pandas): ``df.sub(df.mean(axis=1), axis=0).div(df.std(axis=1, ddof=0), axis=0)``.
    """
    a = _as2d(x)
    return _cs_zscore_kernel(a, _mask(a, universe))
