"""compute_signals and the persisted, session-cached signal stage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from admf_dask.dasktools.ids import identity
from admf_dask.features import feature_variables
from admf_dask.features.graph import (
    CacheStatus,
    SessionCache,
    _dask_data,
    _data_identity,
    client_key,
    persist,
)
from admf_dask.kinds import STRATEGIES, StrategyContext
from admf_dask.strategies.registry import validate_strategy_spec
from admf_dask.strategies.replay import file_hash, resolve_path

SIGNAL_CACHE = SessionCache()


def _feature_refs(
    features: xr.Dataset,
) -> tuple[dict[str, dict[str, Any]] | None, dict[str, tuple[str, str]]]:
    """Feature specs recorded by compute_features, and every variable -> (feature, output)."""
    specs = None
    if "feature_specs" in features.attrs:
        specs = json.loads(features.attrs["feature_specs"])
    variables = feature_variables(specs) if specs is not None else {}
    for var, arr in features.data_vars.items():  # variables added by other means count too
        variables.setdefault(
            str(var), (str(arr.attrs.get("feature", var)), str(arr.attrs.get("output", "")))
        )
    return specs, variables


def validate_strategy_specs(
    specs: Mapping[str, Mapping[str, Any]], feature_specs: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """Validate every strategy spec (see `validate_strategy_spec`); name -> normalized spec."""
    return {name: validate_strategy_spec(name, spec, feature_specs) for name, spec in specs.items()}


def _normalize(
    features: xr.Dataset, specs: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    fspecs, variables = _feature_refs(features)
    return {
        name: validate_strategy_spec(name, spec, fspecs, variables=variables)
        for name, spec in specs.items()
    }


def _file_hashes(norm: Mapping[str, Mapping[str, Any]], ctx: StrategyContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in norm.items():
        for param in STRATEGIES[spec["kind"]].files:
            if spec.get(param) is None:
                continue
            where = f"strategies.{name}.{param}"
            path = resolve_path(spec[param], ctx.base_dir, where, spec.get("storage_options"))
            out[f"{name}.{param}"] = file_hash(path)
    return out


def _conform(
    out: Any, name: str, ref: xr.DataArray, chunks: tuple[tuple[int, ...], ...]
) -> xr.DataArray:
    if not isinstance(out, xr.DataArray) or set(out.dims) != {"time", "symbol"}:
        got = getattr(out, "dims", type(out).__name__)
        raise TypeError(f"strategy {name} must return a (time, symbol) DataArray, got {got}")
    out = out.transpose("time", "symbol")
    if out.shape != ref.shape:
        raise ValueError(f"strategy {name} returned shape {out.shape}, data is {ref.shape}")
    arr = out.data
    if not isinstance(arr, da.Array):
        arr = da.from_array(np.asarray(arr), chunks=chunks)
    elif arr.chunks != chunks:
        arr = arr.rechunk(chunks)
    if arr.dtype != np.float64:
        arr = arr.astype(np.float64)
    return xr.DataArray(arr, dims=("time", "symbol"), coords=ref.coords)


def compute_signals(
    data: xr.Dataset,
    features: xr.Dataset,
    specs: Mapping[str, Mapping[str, Any]],
    ctx: StrategyContext | None = None,
) -> xr.DataArray:
    """Build the (lazy) signals of every strategy.

    Parameters
    ----------
    data : xr.Dataset
        Market data ``(time, symbol)``.
    features : xr.Dataset
        Features from `admf_dask.features.compute_features` / ``feature_stage``.
    specs : mapping
        Strategy name -> ``{"kind": ..., **params}``.
    ctx : StrategyContext, optional
        Context for non-pure kinds (a default one when None).

    Returns
    -------
    xr.DataArray
        ``signals``: float64 ``(time, symbol, strategy)`` in [-1, 1], NaN replaced by 0, 0
        where the data's ``universe`` mask is False, time and symbol chunked like the data, all
        strategies in one chunk.

    Raises
    ------
    ConfigError
        A bad spec or a reference to a missing / wrong-kind feature.
    DataError
        A bad replay file.
    """
    ctx = ctx if ctx is not None else StrategyContext()
    norm = _normalize(features, specs)
    _file_hashes(norm, ctx)  # every replay file exists (errors name the strategy)
    data = _dask_data(data)
    ref = data["close"].transpose("time", "symbol")
    chunks = ref.chunks
    ref = ref.drop_vars([c for c in ref.coords if c not in ("time", "symbol")])
    arrays = []
    for name, spec in norm.items():
        sk = STRATEGIES[spec["kind"]]
        kwargs = {"name": name} if sk.takes_name else {}
        out = sk.func(data, features, dict(spec), ctx, **kwargs)
        arrays.append(_conform(out, name, ref, chunks))
    names = pd.Index(list(norm), name="strategy", dtype=object)
    if arrays:
        sig = xr.concat(arrays, dim=names, coords="minimal", compat="override")
        sig = sig.transpose("time", "symbol", "strategy")
    else:
        empty = da.zeros(ref.shape + (0,), chunks=chunks + ((0,),))
        sig = xr.DataArray(
            empty, dims=("time", "symbol", "strategy"), coords={**ref.coords, "strategy": names}
        )
    sig = sig.fillna(0.0).clip(-1.0, 1.0).chunk({"strategy": -1})
    if "universe" in data.data_vars:  # the one place: out of the universe, every kind gives 0
        listed = data["universe"].transpose("time", "symbol").astype(bool)
        listed = listed.drop_vars([c for c in listed.coords if c not in ("time", "symbol")])
        sig = xr.where(listed, sig, 0.0).transpose("time", "symbol", "strategy")
        sig = sig.chunk({"time": chunks[0], "symbol": chunks[1], "strategy": -1})
    sig.name = "signals"
    sig.attrs = {"strategy_specs": json.dumps(norm, sort_keys=True)}
    return sig


def signal_token(
    data: xr.Dataset,
    features: xr.Dataset,
    specs: Mapping[str, Mapping[str, Any]],
    ctx: StrategyContext | None = None,
) -> str:
    """Deterministic token of (feature token, normalized strategy specs, replay file hashes)."""
    ctx = ctx if ctx is not None else StrategyContext()
    norm = _normalize(features, specs)
    ftoken = features.attrs.get("feature_token") or (
        _data_identity(data) + ":" + tokenize(features)
    )
    payload = {"features": ftoken, "specs": norm, "files": _file_hashes(norm, ctx)}
    # canonical JSON first: specs may hold values (dates, paths) that only str() makes plain
    return identity(json.dumps(payload, sort_keys=True, default=str))


def signal_stage(
    data: xr.Dataset,
    features: xr.Dataset,
    specs: Mapping[str, Mapping[str, Any]],
    ctx: StrategyContext | None = None,
) -> tuple[xr.DataArray, CacheStatus]:
    """Compute and persist the signals once per session (and once per disk cache).

    With ``ctx.cache`` (an `admf_dask.cache.DiskCache`), a session miss reads the signals from
    disk (a hit: the ML trace and fold quality of the run that computed them are added to
    ``ctx.trace`` / ``ctx.quality``, and that run is ``ctx.cache.origins["signals"]``), or
    computes and stores them. Only features computed by `compute_features` from fingerprinted
    data use the disk.

    Returns
    -------
    (xr.DataArray, "hit" | "miss")
        The persisted signals (the same object for every call with the same key: feature
        token, normalized specs, replay file contents, client) and the cache status.
    """
    ctx = ctx if ctx is not None else StrategyContext()
    note = data.attrs.get("universe_warning")  # universe rows naming symbols the data lacks
    if note and note not in ctx.warnings:
        ctx.warnings.append(str(note))
    token = signal_token(data, features, specs, ctx)
    disk = getattr(ctx, "cache", None)
    if not (data.attrs.get("fingerprint") and features.attrs.get("feature_token")):
        disk = None
    from_disk: list[bool] = []

    def build() -> xr.DataArray:
        if disk is None:
            return persist(compute_signals(data, features, specs, ctx), ctx.client)
        got = _load_signals(disk, token, data, specs, ctx)
        if got is not None:
            from_disk.append(True)
            return got
        n_trace = len(ctx.trace)
        sig = persist(compute_signals(data, features, specs, ctx), ctx.client)
        _save_signals(disk, token, sig, specs, ctx, ctx.trace[n_trace:])
        return sig

    sig, status = SIGNAL_CACHE.get_or_build((token, client_key(ctx.client)), build)
    return sig, "hit" if from_disk else status


def _kind_salt(specs: Mapping[str, Mapping[str, Any]], client: Any) -> dict[str, Any]:
    """What the signals depend on beyond their specs, as the kinds say (`StrategyKind.cache_salt`:
    e.g. the ML workers' threads and devices)."""
    if client is None:
        return {}
    out: dict[str, Any] = {}
    salts = []
    for spec in specs.values():
        sk = STRATEGIES.get(str(dict(spec).get("kind")))
        if sk is not None and sk.cache_salt is not None and sk.cache_salt not in salts:
            salts.append(sk.cache_salt)
    for salt in salts:
        out.update(salt(client))
    return out


def _load_signals(disk: Any, token: str, data: xr.Dataset, specs, ctx) -> xr.DataArray | None:
    from admf_dask.cache import entry_key
    from admf_dask.cache.arrays import load_dataset

    key = entry_key("signals", token, **_kind_salt(specs, ctx.client))

    def coords(meta: dict[str, Any]) -> dict[str, Any]:
        names = pd.Index(list(meta["strategies"]), name="strategy", dtype=object)
        return {"time": data["time"], "symbol": data["symbol"], "strategy": names}

    got = load_dataset(disk, "signals", key, coords, ctx.client)
    if got is None:
        return None
    ds, meta = got
    sig = ds["signals"]
    sig.attrs = dict(meta.get("signal_attrs") or sig.attrs)
    ctx.trace.extend(meta.get("trace") or [])
    ctx.quality.update(meta.get("ml") or {})
    disk.origins["signals"] = dict(meta.get("origin") or {})
    disk.note("hits", "signals")
    return sig


def _save_signals(disk: Any, token: str, sig: xr.DataArray, specs, ctx, trace: list) -> None:
    from admf_dask.cache import entry_key
    from admf_dask.cache.arrays import save_dataset

    key = entry_key("signals", token, **_kind_salt(specs, ctx.client))
    names = [str(s) for s in sig["strategy"].values]
    meta = {
        "strategies": names,
        "signal_attrs": dict(sig.attrs),
        "origin": dict(disk.origin),
        "trace": list(trace),
        "ml": {k: v for k, v in ctx.quality.items() if k in names},
    }
    save_dataset(disk, "signals", key, sig.to_dataset(name="signals"), ctx.client, meta)
