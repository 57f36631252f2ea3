"""Market data stage: any source to one OHLCV ``xr.Dataset`` over (time, symbol).

Sources (``data.source``): ``synthetic`` (embedded, seeded), ``csv`` and ``parquet`` (long tables),
``zarr`` (an xarray store) and ``bokeh_stocks`` (real daily AAPL/GOOG/IBM/MSFT/FB from the
``bokeh-sampledata`` package). Layers: `_synthetic` (numpy kernel) -> `validate` (array checks)
and `dates` (one date format per text column) -> `sources` (readers) -> `load` (selection, pivot,
Dataset, dask chunks; `lazy`: values generated or read inside the tasks).
"""

import importlib
from typing import Any

# imported on first use: the workers' data tasks import `admf_dask.data.lazy` through this
# package, and `load` brings the pipeline configs (pydantic) that they never use
_WHERE = {
    "FIELDS": "_synthetic",
    "symbol_names": "_synthetic",
    "synthetic_ohlcv": "_synthetic",
    "as_data_config": "load",
    "fingerprint": "load",
    "finish_fingerprint": "load",
    "load_market_data": "load",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "FIELDS",
    "as_data_config",
    "finish_fingerprint",
    "fingerprint",
    "load_market_data",
    "symbol_names",
    "synthetic_ohlcv",
]
