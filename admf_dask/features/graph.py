"""The feature stage: indicator kernels wired into one dask graph over ``(time, symbol)`` blocks.

Window indicators use `admf_dask.dasktools.halo_map` (each block plus the rows of history its
window needs), recursive ones `admf_dask.dasktools.chain_map` (the state carried block to block);
both leave values independent of the time chunking and keep the data's chunks.

Task keys are tokens of (kind, kernel parameters, input arrays), so a feature defined twice, or
used by many strategies, is one set of tasks; `feature_stage` persists it once per session.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from admf_dask.dasktools.ids import identity
from admf_dask.dasktools.maps import KERNEL_CALLS, chain_map, halo_map
from admf_dask.dasktools.session import CacheStatus, SessionCache, client_key, persist
from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.features import indicators as _indicators  # noqa: F401  (registers the kinds)
from admf_dask.features.registry import FIELDS, INDICATORS, feature_order, validate_feature_specs

# re-exported: strategies/ and portfolio/ import these from here
__all__ = [
    "FEATURE_CACHE",
    "KERNEL_CALLS",
    "CacheStatus",
    "SessionCache",
    "chain_map",
    "client_key",
    "compute_features",
    "feature_stage",
    "feature_token",
    "halo_map",
    "persist",
]

# --------------------------------------------------------------------------------------------
# compute_features
# --------------------------------------------------------------------------------------------


def _dask_data(data: xr.Dataset) -> xr.Dataset:
    if any(not isinstance(v.data, da.Array) for v in data.data_vars.values()):
        data = data.chunk({d: -1 for d in data.dims})
    return data


def _fields_array(data: xr.Dataset, field: str, name: str) -> da.Array:
    if field not in data.data_vars:
        raise ConfigError(
            f"features.{name}",
            f"reads data variable '{field}', which the data does not have"
            + did_you_mean(field, list(map(str, data.data_vars))),
            "data variables are: " + ", ".join(map(str, data.data_vars)),
        )
    arr = data[field].transpose("time", "symbol").data
    return arr if arr.dtype == np.float64 else arr.astype(np.float64)


def _cross_section_inputs(data: xr.Dataset, x: da.Array) -> list[da.Array]:
    """Whole symbol rows of ``x`` and, when the data has one, of its universe mask (as 0/1)."""
    arrays = [x.rechunk({1: -1})]
    if "universe" in data.data_vars:
        u = data["universe"].transpose("time", "symbol").data.astype(np.float64)
        arrays.append(u.rechunk(arrays[0].chunks))
    return arrays


def _data_identity(data: xr.Dataset) -> str:
    fp = data.attrs.get("fingerprint")
    if not fp:
        fp = "tokenize:" + tokenize(data)
    return str(fp)


def _with_data_defaults(
    norm: dict[str, dict[str, Any]], data: xr.Dataset
) -> dict[str, dict[str, Any]]:
    """Normalized specs with ``periods_per_year: null`` resolved from the data's frequency.

    Resolved before tokens are made, so daily data gives the same specs (252.0) and keys as an
    explicit 252 (docs/TIME.md).
    """
    from admf_dask.data.calendar import periods_per_year

    out = {}
    for name, spec in norm.items():
        if "periods_per_year" in spec and spec["periods_per_year"] is None:
            spec = {**spec, "periods_per_year": periods_per_year(None, data.attrs)}
        out[name] = spec
    return out


def feature_token(data: xr.Dataset, specs: Mapping[str, Mapping[str, Any]]) -> str:
    """Deterministic token of (data fingerprint, time chunks, normalized feature specs).

    Parameters
    ----------
    data : xr.Dataset
        Market data; ``attrs["fingerprint"]`` identifies its values (a dask token of the data is
        used when absent).
    specs : mapping
        Feature name -> spec (normalized here).

    Returns
    -------
    str
        Hex digest; equal inputs give equal tokens in any process.
    """
    norm = _with_data_defaults(validate_feature_specs(specs), data)
    ref = data["close"] if "close" in data.data_vars else data[next(iter(data.data_vars))]
    chunks = ref.chunks
    return identity(
        "features", _data_identity(data), [list(c) for c in chunks] if chunks else None, norm
    )


def compute_features(data: xr.Dataset, specs: Mapping[str, Mapping[str, Any]]) -> xr.Dataset:
    """Build the (lazy) feature graph.

    Parameters
    ----------
    data : xr.Dataset
        ``open high low close volume`` float64 ``(time, symbol)``, dask-chunked (numpy-backed
        data is taken as one chunk).
    specs : mapping
        Feature name -> ``{"kind": ..., **params}`` (validated with `validate_feature_spec`).

    Returns
    -------
    xr.Dataset
        One dask-backed float64 ``(time, symbol)`` variable per output, chunked like the data:
        ``name`` for single-output kinds, ``name_<output>`` for multi-output ones (``x_macd``,
        ``x_signal``, ``x_hist``; ``x_upper``, ``x_middle``, ``x_lower``; ``x_high``,
        ``x_low``). ``attrs``: ``feature_token``, ``feature_specs`` (JSON of the normalized
        specs) and the data's ``fingerprint``.

    Raises
    ------
    ConfigError
        For a bad spec or a data variable the data lacks.
    """
    norm = _with_data_defaults(validate_feature_specs(specs), data)
    data = _dask_data(data)
    coords = {"time": data["time"], "symbol": data["symbol"]}
    out: dict[str, xr.DataArray] = {}
    for name in feature_order(norm):  # a feature after the feature it reads (`input`)
        spec = norm[name]
        ind = INDICATORS[spec["kind"]]
        src = spec.get("input")
        from_feature = src is not None and src not in FIELDS
        arrays = [
            out[f].data if from_feature and f == src else _fields_array(data, f, name)
            for f in ind.fields(spec)
        ]
        kparams = ind.kernel_params(spec)
        chunks = arrays[0].chunks
        if ind.cross_sectional:
            arrays = _cross_section_inputs(data, arrays[0])
        token = tokenize(ind.kind, sorted(kparams.items()), [a.name for a in arrays])
        labels = ind.outputs or ("",)
        dnames = [f"{ind.kind}{'_' + o if o else ''}-{token}" for o in labels]
        func = partial(ind.func, **kparams)
        if ind.recursive:
            arrs = chain_map(func, arrays, names=dnames, label=ind.kind)
        else:
            arrs = halo_map(
                func, arrays, halo=int(ind.lookback(spec)), names=dnames, label=ind.kind
            )
        if ind.cross_sectional:  # back to the input's chunks (whole rows were only for the kernel)
            arrs = [a.rechunk(chunks) for a in arrs]
        for var, o, arr in zip(ind.variable_names(name), labels, arrs, strict=True):
            attrs = {
                "feature": name,
                "kind": ind.kind,
                "output": o,
                "params": json.dumps(kparams, sort_keys=True),
            }
            out[var] = xr.DataArray(arr, dims=("time", "symbol"), coords=coords, attrs=attrs)
    order = [v for n in norm for v in INDICATORS[norm[n]["kind"]].variable_names(n)]
    ds = xr.Dataset({v: out[v] for v in order}, coords=coords)
    ds.attrs["feature_token"] = feature_token(data, norm)
    ds.attrs["feature_specs"] = json.dumps(norm, sort_keys=True)
    if "fingerprint" in data.attrs:
        ds.attrs["fingerprint"] = data.attrs["fingerprint"]
    return ds


# --------------------------------------------------------------------------------------------
# session cache and the stage
# --------------------------------------------------------------------------------------------


FEATURE_CACHE = SessionCache()


def feature_stage(
    data: xr.Dataset,
    specs: Mapping[str, Mapping[str, Any]],
    client: Any = None,
    disk: Any = None,
) -> tuple[xr.Dataset, CacheStatus]:
    """Compute and persist the features once per session (and once per disk cache).

    Parameters
    ----------
    data : xr.Dataset
        Market data (see `compute_features`).
    specs : mapping
        Feature name -> spec.
    client : distributed.Client, optional
        Persist on this cluster; None persists with the default scheduler.
    disk : admf_dask.cache.DiskCache, optional
        On a session miss, read the features from this cache (a hit, counted in
        ``disk.hits["features"]``), else compute them and store them there. Only data with a
        content ``fingerprint`` uses it.

    Returns
    -------
    (xr.Dataset, "hit" | "miss")
        The persisted features (the same object for every call with the same token and
        client) and whether it came from the session or the disk cache.
    """
    token = feature_token(data, specs)
    from_disk: list[bool] = []

    def build() -> xr.Dataset:
        if disk is None or not data.attrs.get("fingerprint"):
            return persist(compute_features(data, specs), client)
        from admf_dask.cache import entry_key
        from admf_dask.cache.arrays import load_dataset, save_dataset

        key = entry_key("features", token)
        coords = {"time": data["time"], "symbol": data["symbol"]}
        # lazy: on a signal-cache hit most runs never read a feature (docs/ARCHITECTURE.md)
        got = load_dataset(disk, "features", key, coords, client, lazy=True)
        if got is not None:
            from_disk.append(True)
            disk.note("hits", "features")
            return got[0]
        ds = persist(compute_features(data, specs), client)
        save_dataset(disk, "features", key, ds, client)
        return ds

    ds, status = FEATURE_CACHE.get_or_build((token, client_key(client)), build)
    return ds, "hit" if from_disk else status
