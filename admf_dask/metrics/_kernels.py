"""Return metrics of equity curves with empyrical's definitions, accumulated bar by bar.

The metrics of a portfolio are folded over its equity curve one bar at a time into a small
accumulator row (`acc_update`), then finished (`acc_finalize`). The engine folds each time chunk
as it is produced, so it never reads equity back; `compute_metrics` folds a whole array the same
way. Each column is its own sequential loop: a portfolio's metrics depend neither on the other
columns nor on where the chunks start (numpy's axis-0 reductions, by contrast, switch to pairwise
summation for a single column).

The formulas follow ``empyrical.stats`` (empyrical-reloaded 0.7) on the simple returns
``r[t] = (e[t] - e[t-1]) / e[t-1]`` with ``e[-1] = capital``: nan returns are skipped by the
means and the product and count as 0 in the drawdown curve; zero denominators give ±inf or nan,
as there. The mean and variance are Welford's running ones (agreeing with empyrical's two-pass
numbers to ~1e-15 relative).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# accumulator columns
A_PREV = 0  # last equity (capital before the first bar)
A_BARS = 1  # bars seen (returns, nan included)
A_N = 2  # non-nan returns
A_MEAN = 3  # Welford mean of the returns
A_M2 = 4  # Welford sum of squared deviations
A_PROD = 5  # nanprod(1 + r)
A_HI = 6  # max r
A_LO = 7  # min r
A_DOWN = 8  # sum of min(r, 0)^2
A_CUM = 9  # cumprod(1 + r) with nan as 0
A_PEAK = 10  # running max of 100 * A_CUM, 100 first (np.fmax)
A_MDD = 11  # running nanmin of the drawdown
A_ESUM = 12  # sum of equity
N_ACC = 13

# rows of `acc_finalize`
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


def acc_init(capital: np.ndarray) -> np.ndarray:
    """A fresh accumulator (P, N_ACC) for portfolios starting with ``capital`` (P,)."""
    capital = np.asarray(capital, dtype=np.float64)
    acc = np.zeros((capital.shape[0], N_ACC))
    acc[:, A_PREV] = capital
    acc[:, A_PROD] = 1.0
    acc[:, A_HI] = -np.inf
    acc[:, A_LO] = np.inf
    acc[:, A_CUM] = 1.0
    acc[:, A_PEAK] = 100.0
    acc[:, A_MDD] = np.nan
    return acc


@njit(cache=True, nogil=True, error_model="numpy")
def acc_update(acc, equity):
    """Fold the bars of ``equity`` (T, P) into ``acc`` (P, N_ACC), in place."""
    T, P = equity.shape
    for p in range(P):
        prev = acc[p, A_PREV]
        bars = acc[p, A_BARS]
        n = acc[p, A_N]
        mean = acc[p, A_MEAN]
        m2 = acc[p, A_M2]
        prod = acc[p, A_PROD]
        hi = acc[p, A_HI]
        lo = acc[p, A_LO]
        down = acc[p, A_DOWN]
        cum = acc[p, A_CUM]
        peak = acc[p, A_PEAK]
        mdd = acc[p, A_MDD]
        esum = acc[p, A_ESUM]
        for t in range(T):
            e = equity[t, p]
            esum += e
            x = (e - prev) / prev
            prev = e
            bars += 1.0
            if x == x:
                n += 1.0
                d = x - mean
                mean += d / n
                m2 += d * (x - mean)
                prod *= x + 1.0
                hi = max(hi, x)
                lo = min(lo, x)
                dn = min(x, 0.0)
                down += dn * dn
                cum *= x + 1.0
            v = cum * 100.0
            if v > peak or peak != peak:  # np.fmax: a nan peak gives way to any number
                peak = v
            dd = (v - peak) / peak
            if dd == dd and (mdd != mdd or dd < mdd):  # np.nanmin
                mdd = dd
        acc[p, A_PREV] = prev
        acc[p, A_BARS] = bars
        acc[p, A_N] = n
        acc[p, A_MEAN] = mean
        acc[p, A_M2] = m2
        acc[p, A_PROD] = prod
        acc[p, A_HI] = hi
        acc[p, A_LO] = lo
        acc[p, A_DOWN] = down
        acc[p, A_CUM] = cum
        acc[p, A_PEAK] = peak
        acc[p, A_MDD] = mdd
        acc[p, A_ESUM] = esum


@njit(cache=True, nogil=True, error_model="numpy")
def acc_finalize(acc, ppy):
    """Metrics (N_ROWS, P) of folded equity curves.

    Rows ``TOTAL_RETURN`` … ``CALMAR`` (empyrical), and ``MEAN_EQUITY``:

    - total_return = nanprod(1 + r) - 1
    - annual_return = nanprod(1 + r) ** (1 / (T / ppy)) - 1
    - annual_volatility = nanstd(r, ddof=1) * ppy ** (1 / 2)
    - sharpe = nanmean(r) / nanstd(r, ddof=1) * sqrt(ppy), std 0 if all r are equal
    - sortino = nanmean(r) * ppy / (sqrt(nanmean(min(r, 0) ** 2)) * sqrt(ppy))
    - max_drawdown = min over t of (V[t] - max(V[..t])) / max(V[..t]), V = 100 *
      cumprod(1 + r) with 100 first (≤ 0)
    - calmar = annual_return / |max_drawdown| if max_drawdown < 0 and finite, else nan
    """
    P = acc.shape[0]
    out = np.full((N_ROWS, P), np.nan)
    sq = math.sqrt(ppy)
    for p in range(P):
        T = acc[p, A_BARS]
        n = acc[p, A_N]
        if T < 1.0:
            continue
        prod = acc[p, A_PROD]
        mdd = acc[p, A_MDD]
        out[MEAN_EQUITY, p] = acc[p, A_ESUM] / T
        out[TOTAL_RETURN, p] = prod - 1.0
        annual = prod ** (1.0 / (T / ppy)) - 1.0
        out[ANNUAL_RETURN, p] = annual
        out[MAX_DRAWDOWN, p] = mdd
        if mdd < 0.0:
            c = annual / abs(mdd)
            out[CALMAR, p] = np.nan if math.isinf(c) else c
        if T < 2.0 or n < 1.0:
            continue
        mean = acc[p, A_MEAN]
        std = math.sqrt(acc[p, A_M2] / (n - 1.0)) if n > 1.0 else np.nan
        out[ANNUAL_VOLATILITY, p] = std * ppy ** (1.0 / 2.0)
        std0 = 0.0 if (acc[p, A_HI] == acc[p, A_LO] and math.isfinite(std)) else std
        out[SHARPE, p] = mean / std0 * sq
        downside = math.sqrt(acc[p, A_DOWN] / n) * sq
        out[SORTINO, p] = mean * ppy / downside
    return out
