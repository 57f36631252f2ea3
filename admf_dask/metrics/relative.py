"""Benchmark-relative metrics of portfolios (docs/TRADES.md, docs/TRADES.md "Benchmark").

``b[t]`` is the close-to-close return of the benchmark symbol (nan where either close is
missing); ``r[t]`` the portfolio's metric returns (docs/ACCOUNTING.md: close-to-close returns of equity,
the first against capital).

- ``alpha``, ``beta``: empyrical's ``alpha_beta(r, b)`` (empyrical-reloaded 0.7, ``stats.py``):
  over the bars where neither r nor b is nan, ``beta = cov(b, r) / var(b)`` (population moments;
  nan when ``var(b) < 1e-30``), ``alpha = (1 + mean(r - beta*b))**periods_per_year - 1``; both
  nan for fewer than 2 bars in all.
- ``information_ratio = mean(r-b) / std(r-b, ddof=1) * sqrt(periods_per_year)`` and
  ``tracking_error = std(r-b, ddof=1) * sqrt(periods_per_year)``, over the bars where both are
  finite (nan for fewer than 2 such bars).

As `admf_dask.metrics` does for the return metrics, the moments are folded bar by bar into a
small accumulator row per portfolio (Welford's running means and co-moments), so the engine can
fold each time chunk as it is produced and get the numbers of one pass over the whole series
(they agree with empyrical's two-pass ones to ~1e-15 relative).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "RELATIVE_METRIC_NAMES",
    "benchmark_returns",
    "finalize_relative",
    "init_relative",
    "relative_metrics",
    "update_relative",
]

#: the benchmark-relative metrics, in `finalize_relative` order
RELATIVE_METRIC_NAMES: tuple[str, ...] = ("alpha", "beta", "information_ratio", "tracking_error")

# accumulator columns
R_PREV_E = 0  # last equity (capital before the first bar)
R_PREV_B = 1  # last benchmark close (nan before the first bar)
R_BARS = 2  # bars seen
R_N = 3  # bars where neither r nor b is nan (alpha, beta)
R_MB = 4  # mean b over those
R_MR = 5  # mean r over those
R_M2B = 6  # sum of squared deviations of b
R_CBR = 7  # co-moment of b and r
R_ND = 8  # bars where r and b are finite (information ratio, tracking error)
R_MD = 9  # mean of d = r - b over those
R_M2D = 10  # sum of squared deviations of d
N_RACC = 11


@njit(cache=True, nogil=True, error_model="numpy")
def _fold(acc, p, r, b):
    # one bar of one portfolio
    acc[p, R_BARS] += 1.0
    if r == r and b == b:
        n = acc[p, R_N] + 1.0
        acc[p, R_N] = n
        db = b - acc[p, R_MB]
        acc[p, R_MB] += db / n
        acc[p, R_MR] += (r - acc[p, R_MR]) / n
        acc[p, R_CBR] += db * (r - acc[p, R_MR])
        acc[p, R_M2B] += db * (b - acc[p, R_MB])
    if math.isfinite(r) and math.isfinite(b):
        d = r - b
        n = acc[p, R_ND] + 1.0
        acc[p, R_ND] = n
        dd = d - acc[p, R_MD]
        acc[p, R_MD] += dd / n
        acc[p, R_M2D] += dd * (d - acc[p, R_MD])


@njit(cache=True, nogil=True, error_model="numpy")
def _fold_returns(acc, returns, bench):
    T, P = returns.shape
    for p in range(P):
        for t in range(T):
            _fold(acc, p, returns[t, p], bench[t])


@njit(cache=True, nogil=True, error_model="numpy")
def _fold_equity(acc, equity, bench_close):
    T, P = equity.shape
    pb = acc[0, R_PREV_B] if P > 0 else np.nan
    b = np.empty(T)
    for t in range(T):
        c = bench_close[t]
        b[t] = (c - pb) / pb  # nan where either close is nan
        pb = c
    for p in range(P):
        prev = acc[p, R_PREV_E]
        for t in range(T):
            e = equity[t, p]
            _fold(acc, p, (e - prev) / prev, b[t])
            prev = e
        acc[p, R_PREV_E] = prev
        acc[p, R_PREV_B] = pb


def benchmark_returns(close: np.ndarray) -> np.ndarray:
    """Close-to-close returns ``(c[t] - c[t-1]) / c[t-1]`` of a (T,) close series; nan at t=0
    and wherever either close is missing."""
    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = (c[1:] - c[:-1]) / c[:-1]
    return out


def init_relative(capital: np.ndarray | float, n_portfolios: int) -> np.ndarray:
    """A fresh accumulator, float64 (P, N_RACC), for equity curves starting from ``capital``."""
    acc = np.zeros((int(n_portfolios), N_RACC))
    acc[:, R_PREV_E] = np.broadcast_to(np.asarray(capital, dtype=np.float64), (acc.shape[0],))
    acc[:, R_PREV_B] = np.nan
    return acc


def update_relative(acc: np.ndarray, equity: np.ndarray, benchmark_close: np.ndarray) -> None:
    """Fold the next bars of equity (T, P) and the benchmark's closes (T,) into ``acc``, in place.

    The returns come from the equity and the closes themselves (the last equity and benchmark
    close of the previous fold are in ``acc``), so consecutive chunks fold to the same numbers as
    the whole series.
    """
    equity = np.ascontiguousarray(equity, dtype=np.float64)
    bench = np.ascontiguousarray(benchmark_close, dtype=np.float64)
    if equity.ndim != 2 or bench.shape != (equity.shape[0],):
        raise ValueError(f"equity {equity.shape} and benchmark close {bench.shape} do not align")
    with np.errstate(divide="ignore", invalid="ignore"):
        _fold_equity(acc, equity, bench)


def finalize_relative(acc: np.ndarray, periods_per_year: float = 252.0) -> dict[str, np.ndarray]:
    """alpha, beta, information_ratio, tracking_error (P,) of the folded curves."""
    ppy = float(periods_per_year)
    n = acc[:, R_N]
    with np.errstate(divide="ignore", invalid="ignore"):
        var_b = acc[:, R_M2B] / n
        beta = acc[:, R_CBR] / acc[:, R_M2B]
        beta[~(var_b >= 1e-30)] = np.nan  # empyrical: var < 1e-30 (and no data) → nan
        alpha = np.power(acc[:, R_MR] - beta * acc[:, R_MB] + 1.0, ppy) - 1.0
        few = acc[:, R_BARS] < 2
        alpha[few] = np.nan
        beta[few] = np.nan
        nd = acc[:, R_ND]
        sd = np.sqrt(acc[:, R_M2D] / (nd - 1.0))
        sd[nd < 2] = np.nan
        te = sd * math.sqrt(ppy)
        ir = acc[:, R_MD] / sd * math.sqrt(ppy)
    return {"alpha": alpha, "beta": beta, "information_ratio": ir, "tracking_error": te}


def relative_metrics(
    returns: np.ndarray, benchmark: np.ndarray, periods_per_year: float = 252.0
) -> dict[str, np.ndarray]:
    """Benchmark-relative metrics of return series.

    Parameters
    ----------
    returns : ndarray (T, P) or (T,)
        Simple returns of each portfolio (nan: none that bar).
    benchmark : ndarray (T,)
        Simple returns of the benchmark (e.g. `benchmark_returns` of its closes).
    periods_per_year : float
        Bars per year (252 for daily bars); empyrical's ``annualization``.

    Returns
    -------
    dict of str to ndarray (P,)
        ``alpha`` (annualized), ``beta``, ``information_ratio``, ``tracking_error``; see the
        module docstring for the definitions.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    b = np.ascontiguousarray(benchmark, dtype=np.float64)
    if b.shape != (r.shape[0],):
        raise ValueError(f"returns {r.shape} and benchmark {b.shape} do not align")
    acc = init_relative(1.0, r.shape[1])
    _fold_returns(acc, np.ascontiguousarray(r), b)
    return finalize_relative(acc, periods_per_year)
