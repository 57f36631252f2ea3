"""Return metrics of equity curves with empyrical's definitions, one column at a time.

Each column is reduced by its own sequential loop, so a portfolio's metrics do not depend on the
other columns of the array (numpy's axis-0 reductions switch to pairwise summation for a single
column, which would make the engine's results depend on the batch size).

The formulas follow ``empyrical.stats`` (empyrical-reloaded 0.7) on the simple returns
``(e[t] - e[t-1]) / e[t-1]`` with ``e[-1] = capital``: nan returns are skipped by the means and
the product and count as 0 in the drawdown curve; zero denominators give ±inf or nan, as there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# rows of the output of `return_metrics`
TOTAL_RETURN = 0
ANNUAL_RETURN = 1
ANNUAL_VOLATILITY = 2
SHARPE = 3
SORTINO = 4
MAX_DRAWDOWN = 5
CALMAR = 6
N_RETURN_METRICS = 7
MEAN_EQUITY = 7  # not a metric: the denominator of turnover
N_ROWS = 8


@njit(cache=True, nogil=True, error_model="numpy")
def return_metrics(equity, capital, ppy):
    """Empyrical metrics of each column of ``equity``.

    Parameters
    ----------
    equity : ndarray float64 (T, P)
    capital : ndarray float64 (P,)
        The equity before the first bar.
    ppy : float
        Periods per year (empyrical's ``annualization``).

    Returns
    -------
    ndarray float64 (N_ROWS, P)
        Rows ``TOTAL_RETURN`` … ``CALMAR`` and ``MEAN_EQUITY`` (sequential mean of the column):

        - total_return = nanprod(1 + r) - 1
        - annual_return = nanprod(1 + r) ** (1 / (T / ppy)) - 1
        - annual_volatility = nanstd(r, ddof=1) * ppy ** (1 / 2)
        - sharpe = nanmean(r) / nanstd(r, ddof=1) * sqrt(ppy), std 0 if all r are equal
        - sortino = nanmean(r) * ppy / (sqrt(nanmean(min(r, 0) ** 2)) * sqrt(ppy))
        - max_drawdown = min over t of (V[t] - max(V[..t])) / max(V[..t]), V = 100 *
          cumprod(1 + r) with 100 first (≤ 0)
        - calmar = annual_return / |max_drawdown| if max_drawdown < 0 and finite, else nan
    """
    T, P = equity.shape
    out = np.full((N_ROWS, P), np.nan)
    r = np.empty(T)
    sq = math.sqrt(ppy)
    for p in range(P):
        prev = capital[p]
        n = 0
        total = 0.0
        prod = 1.0
        hi = -np.inf
        lo = np.inf
        down = 0.0
        cum = 1.0
        peak = 100.0
        mdd = np.nan
        esum = 0.0
        for t in range(T):
            e = equity[t, p]
            esum += e
            x = (e - prev) / prev
            prev = e
            r[t] = x
            if x == x:
                n += 1
                total += x
                prod *= x + 1.0
                hi = max(hi, x)
                lo = min(lo, x)
                d = min(x, 0.0)
                down += d * d
                cum *= x + 1.0
            v = cum * 100.0
            if v > peak or peak != peak:  # np.fmax: a nan peak gives way to any number
                peak = v
            dd = (v - peak) / peak
            if dd == dd and (mdd != mdd or dd < mdd):  # np.nanmin
                mdd = dd
        if T < 1:
            continue
        out[MEAN_EQUITY, p] = esum / T
        out[TOTAL_RETURN, p] = prod - 1.0
        annual = prod ** (1.0 / (T / ppy)) - 1.0
        out[ANNUAL_RETURN, p] = annual
        out[MAX_DRAWDOWN, p] = mdd
        if mdd < 0.0:
            c = annual / abs(mdd)
            out[CALMAR, p] = np.nan if math.isinf(c) else c
        if T < 2:
            continue
        mean = total / n if n > 0 else np.nan
        ss = 0.0
        for t in range(T):
            x = r[t]
            if x == x:
                ss += (x - mean) * (x - mean)
        std = math.sqrt(ss / (n - 1)) if n > 1 else np.nan
        out[ANNUAL_VOLATILITY, p] = std * ppy ** (1.0 / 2.0)
        std0 = 0.0 if (n > 0 and hi == lo and math.isfinite(std)) else std
        out[SHARPE, p] = mean / std0 * sq
        downside = math.sqrt(down / n) * sq if n > 0 else np.nan
        out[SORTINO, p] = mean * ppy / downside
    return out
