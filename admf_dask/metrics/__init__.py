"""Portfolio metrics with empyrical's definitions (DESIGN §2).

``compute_metrics(equity, capital, periods_per_year)`` → one (P,) array per metric.
"""

from __future__ import annotations

import numpy as np

from admf_dask.metrics import _kernels as _k

__all__ = ["METRIC_NAMES", "RETURN_METRICS", "compute_metrics"]

#: metrics computed from the equity curve alone (empyrical definitions)
RETURN_METRICS: tuple[str, ...] = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
)
#: every metric of a run (the last three come from the engine's accumulators)
METRIC_NAMES: tuple[str, ...] = (*RETURN_METRICS, "n_orders", "turnover", "exposure")


def compute_metrics(
    equity: np.ndarray,
    capital: np.ndarray | float,
    periods_per_year: float = 252.0,
    *,
    traded: np.ndarray | None = None,
    gross_exposure_sum: np.ndarray | None = None,
    n_orders: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Metrics of equity curves, with empyrical's definitions.

    Returns are close-to-close returns of ``equity`` (the first bar against ``capital``),
    computed as ``empyrical.simple_returns`` does.

    Parameters
    ----------
    equity : ndarray (T, P)
        Equity at each close, one column per portfolio.
    capital : float or ndarray (P,)
        Starting cash (the equity before the first bar).
    periods_per_year : float
        Bars per year (252 for daily bars); empyrical's ``annualization``.
    traded : ndarray (P,), optional
        Sum of |qty * fill price| over the run: adds ``turnover = traded / mean(equity)``
        (total traded value in units of the average equity, not annualized).
    gross_exposure_sum : ndarray (P,), optional
        Sum over bars of sum|position value| / equity: adds ``exposure``, its mean over bars
        (vectorbt's ``gross_exposure`` averaged; 1 = fully invested without leverage).
    n_orders : ndarray (P,), optional
        Number of fills: added as ``n_orders``.

    Returns
    -------
    dict of str to ndarray (P,)
        ``total_return``, ``annual_return`` (CAGR), ``annual_volatility``, ``sharpe`` (risk-free
        0), ``sortino`` (required return 0), ``max_drawdown`` (≤ 0), ``calmar``; plus
        ``n_orders``, ``turnover``, ``exposure`` when their inputs are given.
    """
    equity = np.asarray(equity, dtype=np.float64)
    if equity.ndim == 1:
        equity = equity[:, None]
    caps = np.ascontiguousarray(np.broadcast_to(np.asarray(capital, np.float64), equity.shape[1:]))
    table = _k.return_metrics(np.ascontiguousarray(equity), caps, float(periods_per_year))
    out = {name: table[i].copy() for i, name in enumerate(RETURN_METRICS)}
    T = equity.shape[0]
    if n_orders is not None:
        out["n_orders"] = np.asarray(n_orders, dtype=np.int64)
    if traded is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["turnover"] = np.asarray(traded, dtype=np.float64) / table[_k.MEAN_EQUITY]
    if gross_exposure_sum is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["exposure"] = np.asarray(gross_exposure_sum, dtype=np.float64) / T
    return out
