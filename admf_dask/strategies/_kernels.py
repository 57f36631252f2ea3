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
