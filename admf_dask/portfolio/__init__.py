"""The portfolio stage: grid expansion, the accounting kernel (DESIGN §2) and its Dask engine.

``expand_grid(portfolios, execution, strategy_names, n_symbols)`` → `PortfolioBook`;
``run_portfolios(data, signals, features, book, out_dir, ...)`` → `PortfolioResult`.
"""

from admf_dask.portfolio.batch import BatchState, OrderRecords, simulate, step
from admf_dask.portfolio.engine import PortfolioResult, run_portfolios, warm_kernels
from admf_dask.portfolio.grid import PortfolioBook, expand_grid, grid_coord_name

__all__ = [
    "BatchState",
    "OrderRecords",
    "PortfolioBook",
    "PortfolioResult",
    "expand_grid",
    "grid_coord_name",
    "run_portfolios",
    "simulate",
    "step",
    "warm_kernels",
]
