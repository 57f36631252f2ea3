"""Performance metrics over columns of returns, with empyrical's exact definitions.

Every function takes returns of shape (T, P) (one column per portfolio) and returns (P,). The
formulas and their order of operations follow ``empyrical.stats`` (empyrical-reloaded 0.7):
nan returns are skipped (``nanmean``/``nanstd``/``nanprod``) and count as 0 in cumulative
returns; ratios with a zero denominator give ±inf or nan, as there.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # all-nan columns and zero denominators are expected here (nan / inf results, as empyrical)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def simple_returns(equity: np.ndarray, capital: np.ndarray | float) -> np.ndarray:
    """Close-to-close returns of equity (T, P), the first against ``capital``.

    Same arithmetic as ``empyrical.simple_returns`` on ``[capital, equity...]``:
    ``(e[t] - e[t-1]) / e[t-1]``.
    """
    equity = np.asarray(equity, dtype=np.float64)
    prev = np.empty_like(equity)
    if equity.shape[0]:
        prev[0] = capital
        prev[1:] = equity[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (equity - prev) / prev


def total_return(r: np.ndarray) -> np.ndarray:
    """``empyrical.cum_returns_final``: nanprod(1 + r) - 1."""
    if r.shape[0] < 1:
        return np.full(r.shape[1:], np.nan)
    return np.nanprod(r + 1, axis=0) - 1


def annual_return(r: np.ndarray, ppy: float) -> np.ndarray:
    """``empyrical.annual_return`` (CAGR): nanprod(1 + r) ** (ppy / T) - 1."""
    if r.shape[0] < 1:
        return np.full(r.shape[1:], np.nan)
    num_years = r.shape[0] / ppy
    ending = np.nanprod(r + 1, axis=0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return ending ** (1 / num_years) - 1


def annual_volatility(r: np.ndarray, ppy: float) -> np.ndarray:
    """``empyrical.annual_volatility``: nanstd(r, ddof=1) * ppy ** (1/2)."""
    if r.shape[0] < 2:
        return np.full(r.shape[1:], np.nan)
    with _quiet():
        return np.nanstd(r, ddof=1, axis=0) * ppy ** (1.0 / 2.0)


def sharpe_ratio(r: np.ndarray, ppy: float) -> np.ndarray:
    """``empyrical.sharpe_ratio`` (risk-free 0): mean / std(ddof=1) * sqrt(ppy).

    A column whose returns are all equal has std exactly 0 (empyrical's
    ``_zero_dispersion_std``), so its ratio is ±inf or nan, not a rounding artefact.
    """
    if r.shape[0] < 2:
        return np.full(r.shape[1:], np.nan)
    with _quiet():
        std = np.nanstd(r, ddof=1, axis=0)
        constant = (np.nanmax(r, axis=0) == np.nanmin(r, axis=0)) & np.isfinite(std)
        std = np.where(constant, 0.0, std)
        return np.multiply(np.divide(np.nanmean(r, axis=0), std), np.sqrt(ppy))


def downside_risk(r: np.ndarray, ppy: float) -> np.ndarray:
    """``empyrical.downside_risk`` (required return 0): sqrt(nanmean(min(r, 0)²)) * sqrt(ppy)."""
    if r.shape[0] < 1:
        return np.full(r.shape[1:], np.nan)
    with _quiet():
        d = np.clip(r, -np.inf, 0)
        np.square(d, out=d)
        return np.sqrt(np.nanmean(d, axis=0)) * np.sqrt(ppy)


def sortino_ratio(r: np.ndarray, ppy: float) -> np.ndarray:
    """``empyrical.sortino_ratio`` (required return 0): mean(r) * ppy / downside_risk."""
    if r.shape[0] < 2:
        return np.full(r.shape[1:], np.nan)
    with _quiet():
        average_annual_return = np.nanmean(r, axis=0) * ppy
        return np.divide(average_annual_return, downside_risk(r, ppy))


def max_drawdown(r: np.ndarray) -> np.ndarray:
    """``empyrical.max_drawdown`` (≤ 0): worst fall from the running peak, capital included."""
    if r.shape[0] < 1:
        return np.full(r.shape[1:], np.nan)
    out = np.empty((r.shape[0] + 1, *r.shape[1:]))
    out[0] = 100.0
    cum = np.where(np.isnan(r), 0.0, r) + 1
    np.cumprod(cum, axis=0, out=out[1:])
    np.multiply(out[1:], 100.0, out=out[1:])
    peak = np.fmax.accumulate(out, axis=0)
    with _quiet():
        dd = (out - peak) / peak
        return np.nanmin(dd[1:], axis=0)


def calmar_ratio(annual: np.ndarray, mdd: np.ndarray) -> np.ndarray:
    """``empyrical.calmar_ratio``: annual_return / |max_drawdown| where the drawdown is < 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(mdd < 0, annual / np.abs(mdd), np.nan)
    out[np.isinf(out)] = np.nan
    return out
