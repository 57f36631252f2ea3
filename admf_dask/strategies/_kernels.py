"""Strategy kernels: numba, 2-D float64 ``(time, symbol)`` ndarrays in and out."""

from __future__ import annotations

import numpy as np
from numba import njit

BREAKOUT_STATE = 3  # side held, previous bar's channel high, previous bar's channel low


@njit(cache=True, nogil=True)
def _breakout_kernel(close, ch_high, ch_low, state):  # pragma: no cover - numba
    n_t, n_s = close.shape
    out = np.empty((n_t, n_s))
    for t in range(n_t):
        for s in range(n_s):
            c = close[t, s]
            side = state[0, s]
            hi = state[1, s]
            lo = state[2, s]
            # NaN close or channel: comparisons are false, the side is held
            if c > hi:
                side = 1.0
            elif c < lo:
                side = -1.0
            out[t, s] = side
            state[0, s] = side
            state[1, s] = ch_high[t, s]
            state[2, s] = ch_low[t, s]
    return out


def breakout(
    close: np.ndarray,
    ch_high: np.ndarray,
    ch_low: np.ndarray,
    state: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Channel breakout side: +1 once close > the previous bar's channel high, -1 once
    close < the previous bar's channel low, otherwise the side held so far (0 at the start).

    Returns ``(side, state)``; pass ``state`` to the next time chunk for the single-pass result.
    """
    c = np.ascontiguousarray(close, dtype=np.float64)
    if state is None:
        state = np.zeros((BREAKOUT_STATE, c.shape[1]))
        state[1:] = np.nan
    hi = np.ascontiguousarray(ch_high, dtype=np.float64)
    lo = np.ascontiguousarray(ch_low, dtype=np.float64)
    return _breakout_kernel(c, hi, lo, state), state


# top_k state: row 0 the side held per symbol (+1 long set, -1 short set, 0), row 1 column 0
# the global index of the next bar (a time chunk does not know its offset otherwise)
TOPK_STATE = 2


@njit(cache=True, nogil=True)
def _pick(order, n, side, held, keep_rank, want, new):  # pragma: no cover - numba
    """Keep the held names ranked <= keep_rank, then add the best-ranked until ``want``."""
    count = 0
    for r in range(n):
        s = order[r]
        if held[s] == side and r + 1 <= keep_rank:
            new[s] = side
            count += 1
    for r in range(n):
        if count >= want:
            break
        s = order[r]
        if new[s] != side:
            new[s] = side
            count += 1


@njit(cache=True, nogil=True)
def _top_k_kernel(score, universe, k, short_k, every, buffer, state):  # pragma: no cover
    n_t, n_s = score.shape
    out = np.empty((n_t, n_s))
    held = state[0].copy()
    t0 = int(state[1, 0])
    idx = np.empty(n_s, dtype=np.int64)
    vals = np.empty(n_s)
    sub = np.empty(n_s, dtype=np.int64)
    subv = np.empty(n_s)
    new = np.zeros(n_s)
    for t in range(n_t):
        for s in range(n_s):  # a name that leaves the universe drops out at once
            if not universe[t, s] > 0.5:
                held[s] = 0.0
        if (t0 + t) % every == 0:
            n = 0
            for s in range(n_s):
                v = score[t, s]
                if universe[t, s] > 0.5 and np.isfinite(v):
                    idx[n] = s
                    vals[n] = -v  # highest first; the stable sort keeps lower index first on ties
                    n += 1
            for s in range(n_s):
                new[s] = 0.0
            if n > 0:
                order = idx[:n][np.argsort(vals[:n], kind="mergesort")]
                _pick(order, n, 1.0, held, k + buffer, min(k, n), new)
                if short_k > 0:
                    m = 0
                    for i in range(n):  # valid names not long, in symbol order
                        s = idx[i]
                        if new[s] != 1.0:
                            sub[m] = s
                            subv[m] = score[t, s]
                            m += 1
                    if m > 0:
                        # lowest score first; the stable sort keeps lower index first on ties
                        order2 = sub[:m][np.argsort(subv[:m], kind="mergesort")]
                        _pick(order2, m, -1.0, held, short_k + buffer, min(short_k, m), new)
            for s in range(n_s):
                held[s] = new[s]
        for s in range(n_s):
            out[t, s] = held[s]
    state[0] = held
    state[1, 0] = t0 + n_t
    return out


def top_k(
    score: np.ndarray,
    universe: np.ndarray | None = None,
    *,
    k: int,
    short_k: int = 0,
    every: int = 1,
    buffer: int = 0,
    state: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k / bottom-k book over whole symbol rows (README, pipeline file ``top_k``).

    On bars with global index ``t % every == 0`` the symbols in the universe with a finite score
    are ranked highest first (ties: lower symbol index); the long set keeps its names ranked
    <= k + buffer and adds the best-ranked others until it has min(k, n); the short set does the
    same from the lowest score among the names not long, with ``short_k``. Between those bars the
    sets repeat, less any name that leaves the universe. Returns ``(signal, state)``; pass
    ``state`` to the next time chunk for the single-pass result.
    """
    x = np.ascontiguousarray(score, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if universe is None:
        u = np.ones(x.shape)
    else:
        u = np.ascontiguousarray(universe, dtype=np.float64).reshape(x.shape)
    if state is None:
        state = np.zeros((TOPK_STATE, x.shape[1]))
    out = _top_k_kernel(x, u, int(k), int(short_k), int(every), int(buffer), state)
    return out, state
