"""The portfolio stage: grid expansion, the accounting kernel (docs/ACCOUNTING.md) and its Dask engine.

``expand_grid(portfolios, execution, strategy_names, n_symbols)`` → `PortfolioBook`;
``run_portfolios(data, signals, features, book, out_dir, ...)`` → `PortfolioResult`.
"""

import importlib
from typing import Any

# imported on first use, so that `import admf_dask.portfolio._kernels` (on a worker) loads only
# numpy and numba
_WHERE = {
    "BatchState": "batch",
    "OrderRecords": "batch",
    "simulate": "batch",
    "step": "batch",
    "PortfolioResult": "engine",
    "run_portfolios": "engine",
    "warm_kernels": "engine",
    "PortfolioBook": "grid",
    "expand_grid": "grid",
    "grid_coord_name": "grid",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


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
