"""Market data stage: any source to one OHLCV ``xr.Dataset`` over (time, symbol).

Sources (``data.source``): ``synthetic`` (embedded, seeded), ``csv`` and ``parquet`` (long tables),
``zarr`` (an xarray store) and ``bokeh_stocks`` (real daily AAPL/GOOG/IBM/MSFT/FB from the
``bokeh-sampledata`` package). Layers: `_synthetic` (numpy kernel) -> `validate` (array checks)
and `dates` (one date format per text column) -> `sources` (readers) -> `load` (selection, pivot,
Dataset, dask chunks; `lazy`: values generated or read inside the tasks).
"""

from admf_dask._lazy import lazy_getattr

# imported on first use: the workers' data tasks import `admf_dask.data.lazy` through this
# package, and `load` brings the pipeline configs (pydantic) that they never use
__getattr__ = lazy_getattr(
    __name__,
    {
        "FIELDS": "admf_dask.data._synthetic",
        "symbol_names": "admf_dask.data._synthetic",
        "synthetic_ohlcv": "admf_dask.data._synthetic",
        "as_data_config": "admf_dask.data.load",
        "fingerprint": "admf_dask.data.load",
        "finish_fingerprint": "admf_dask.data.load",
        "load_market_data": "admf_dask.data.load",
    },
)


__all__ = [
    "FIELDS",
    "as_data_config",
    "finish_fingerprint",
    "fingerprint",
    "load_market_data",
    "symbol_names",
    "synthetic_ohlcv",
]
