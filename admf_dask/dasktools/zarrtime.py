"""Zarr stores whose times may lie past 2262-04-11 (docs/TIME.md).

Below the stages (no admf_dask imports): every reader of a Zarr store the tool wrote or reads
(a Zarr market, results.zarr, signals.zarr) opens it through `open_zarr`.
"""

from __future__ import annotations

from typing import Any


def open_zarr(target: Any, **kwargs: Any) -> Any:
    """``xarray.open_zarr`` whose times come back at the store's unit (docs/TIME.md).

    xarray decodes CF times to datetime64[ns]; a store whose times do not fit (written from a
    datetime64[s] axis, past 2262-04-11) cannot be decoded so (or becomes cftime objects where
    cftime is installed): such a store is opened again with its times decoded to seconds.

    Parameters
    ----------
    target : str, path or zarr store
        As for ``xarray.open_zarr``.
    **kwargs
        Passed on to ``xarray.open_zarr``.

    Returns
    -------
    xarray.Dataset
    """
    import xarray as xr

    try:
        ds = xr.open_zarr(target, **kwargs)
    except (ValueError, OverflowError) as e:
        first: Exception | None = e
    else:
        if not any(
            v.dtype == object and "since" in str(v.encoding.get("units", ""))
            for v in ds.variables.values()
        ):
            return ds
        first = None
    seconds = xr.coders.CFDatetimeCoder(time_unit="s")
    try:
        return xr.open_zarr(target, decode_times=seconds, **kwargs)
    except (ValueError, OverflowError):
        if first is not None:
            raise first from None
        raise


__all__ = ["open_zarr"]
