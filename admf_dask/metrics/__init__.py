"""Portfolio metrics with empyrical's definitions (docs/ACCOUNTING.md).

``compute_metrics(equity, capital, periods_per_year)`` → one (P,) array per metric. The engine
uses the same fold in pieces (`init_accumulator`, `update_accumulator` per time chunk,
`finalize_metrics`), so its metrics are bit for bit those of `compute_metrics` on the full curve.
"""

from __future__ import annotations

import numpy as np

from admf_dask.metrics import _kernels as _k

__all__ = [
    "METRIC_NAMES",
    "RETURN_METRICS",
    "compute_metrics",
    "finalize_metrics",
    "init_accumulator",
    "update_accumulator",
]

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


def init_accumulator(capital: np.ndarray | float, n_portfolios: int) -> np.ndarray:
    """A fresh metrics accumulator, float64 (P, N_ACC), for curves starting from ``capital``."""
    caps = np.broadcast_to(np.asarray(capital, dtype=np.float64), (int(n_portfolios),))
    return _k.acc_init(np.ascontiguousarray(caps))


def update_accumulator(acc: np.ndarray, equity: np.ndarray) -> None:
    """Fold the next bars of the equity curves (T, P) into ``acc``, in place."""
    _k.acc_update(acc, np.ascontiguousarray(equity, dtype=np.float64))


def finalize_metrics(
    acc: np.ndarray,
    periods_per_year: float = 252.0,
    *,
    traded: np.ndarray | None = None,
    gross_exposure_sum: np.ndarray | None = None,
    n_orders: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The metrics of folded curves; see `compute_metrics` for the parameters."""
    table = _k.acc_finalize(acc, float(periods_per_year))
    out = {name: table[i].copy() for i, name in enumerate(RETURN_METRICS)}
    if n_orders is not None:
        out["n_orders"] = np.asarray(n_orders, dtype=np.int64).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        if traded is not None:
            out["turnover"] = np.asarray(traded, dtype=np.float64) / table[_k.MEAN_EQUITY]
        if gross_exposure_sum is not None:
            out["exposure"] = np.asarray(gross_exposure_sum, np.float64) / acc[:, _k.A_BARS]
    return out


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

    Returns are close-to-close returns of ``equity``, the first bar against ``capital``, computed
    as ``empyrical.simple_returns`` does: ``(e[t] - e[t-1]) / e[t-1]``.

    Parameters
    ----------
    equity : ndarray (T, P) or (T,)
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
    acc = init_accumulator(capital, equity.shape[1])
    update_accumulator(acc, equity)
    return finalize_metrics(
        acc,
        periods_per_year,
        traded=traded,
        gross_exposure_sum=gross_exposure_sum,
        n_orders=n_orders,
    )
