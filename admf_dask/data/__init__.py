"""Market data stage: any source to one OHLCV ``xr.Dataset`` over (time, symbol).

Sources (``data.source``): ``synthetic`` (embedded, seeded), ``csv`` and ``parquet`` (long tables),
``zarr`` (an xarray store) and ``bokeh_stocks`` (real daily AAPL/GOOG/IBM/MSFT/FB from the
``bokeh-sampledata`` package). Layers: `_synthetic` (numpy kernel) -> `validate` (array checks)
and `dates` (one date format per text column) -> `sources` (readers) -> `load` (selection, pivot,
Dataset, dask chunks; `lazy`: values generated or read inside the tasks).
"""

from admf_dask.data._synthetic import FIELDS, symbol_names, synthetic_ohlcv
from admf_dask.data.load import as_data_config, fingerprint, finish_fingerprint, load_market_data

__all__ = [
    "FIELDS",
    "as_data_config",
    "finish_fingerprint",
    "fingerprint",
    "load_market_data",
    "symbol_names",
    "synthetic_ohlcv",
]
