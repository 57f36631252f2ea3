"""The traditional strategy kinds (README, pipeline file): pure functions of features and data.

Every kind's signal at bar t reads features and data at bars <= t only.

* ``ma_crossover``: sign(fast - slow).
* ``momentum``: +1 where feature > threshold, -1 where feature < -threshold, else 0.
* ``rsi_reversion``: stateless: +1 while rsi < low (oversold), -1 while rsi > high
  (overbought), 0 in between (no holding until a cross of 50).
* ``bollinger_reversion``: +1 while close < lower band, -1 while close > upper band, else 0.
* ``breakout``: +1 when close breaks above the *previous* bar's channel high, -1 when it breaks
  below the previous bar's channel low, otherwise the side held so far (0 until the first
  break). A missing bar (NaN close or channel) changes nothing: the side is held through it.
  The side is carried chunk to chunk (a chain of tasks), so the chunking never changes it.
* ``top_k``: a top-k / bottom-k book on a score, re-picked every ``every`` bars with a
  ``buffer`` of ranks that keeps held names (`admf_dask.strategies._kernels.top_k`). It looks
  across symbols: the score is rechunked to whole symbol rows, the held sets carried chunk to
  chunk like ``breakout``'s side.
* ``signals``: replay a file (`admf_dask.strategies.replay`).

NaN where an input is NaN (warm-up) becomes 0 in `compute_signals`.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from pydantic import Field, model_validator

from admf_dask._lazy import LazyModule
from admf_dask.features.graph import chain_map
from admf_dask.kinds import STRATEGIES, register_strategy
from admf_dask.params import ParamError, Params, ref_field
from admf_dask.strategies.replay import resolve_path, signal_array

K = LazyModule("admf_dask.strategies._kernels")  # numba on first graph built

if TYPE_CHECKING:
    from admf_dask.kinds import StrategyContext

#: the kinds this module registers
KINDS = (
    "ma_crossover",
    "momentum",
    "rsi_reversion",
    "bollinger_reversion",
    "breakout",
    "top_k",
    "signals",
)


def register_traditional_kinds() -> list[str]:
    """The traditional kinds, registered by this module's decorators (a provider of
    `admf_dask.kinds.register_builtin_kinds`)."""
    return [k for k in KINDS if k in STRATEGIES._kinds]


def _close(data: xr.Dataset) -> xr.DataArray:
    return data["close"].transpose("time", "symbol")


class CrossoverParams(Params):
    fast: str = ref_field("variable", description="feature variable of the fast average")
    slow: str = ref_field("variable", description="feature variable of the slow average")


@register_strategy("ma_crossover", params=CrossoverParams)
def ma_crossover(
    data: xr.Dataset, features: xr.Dataset, spec: dict[str, Any], ctx: StrategyContext
) -> xr.DataArray:
    """sign(fast - slow): long while the fast average is above the slow one."""
    return np.sign(features[spec["fast"]] - features[spec["slow"]])


class MomentumParams(Params):
    feature: str = ref_field("variable", description="feature variable, e.g. a roc or returns")
    threshold: float = Field(0.0, ge=0.0, description="dead band around 0")


@register_strategy("momentum", params=MomentumParams)
def momentum(
    data: xr.Dataset, features: xr.Dataset, spec: dict[str, Any], ctx: StrategyContext
) -> xr.DataArray:
    """+1 where feature > threshold, -1 where feature < -threshold, else 0."""
    f = features[spec["feature"]]
    th = spec["threshold"]
    return xr.where(f > th, 1.0, xr.where(f < -th, -1.0, 0.0))


class RSIReversionParams(Params):
    rsi: str = ref_field("variable", kinds=("rsi",), description="an rsi feature")
    low: float = Field(30.0, ge=0.0, le=100.0, description="oversold level: long below it")
    high: float = Field(70.0, ge=0.0, le=100.0, description="overbought level: short above it")

    @model_validator(mode="after")
    def _low_below_high(self) -> RSIReversionParams:
        if self.low >= self.high:
            raise ParamError(
                "low",
                f"low ({self.low:g}) must be below high ({self.high:g})",
                "e.g. low: 30, high: 70",
            )
        return self


@register_strategy("rsi_reversion", params=RSIReversionParams)
def rsi_reversion(
    data: xr.Dataset, features: xr.Dataset, spec: dict[str, Any], ctx: StrategyContext
) -> xr.DataArray:
    """+1 while rsi < low, -1 while rsi > high, else 0 (stateless)."""
    r = features[spec["rsi"]]
    return xr.where(r < spec["low"], 1.0, xr.where(r > spec["high"], -1.0, 0.0))


class BollingerParams(Params):
    bands: str = ref_field("feature", kinds=("bbands",), description="a bbands feature")


@register_strategy("bollinger_reversion", params=BollingerParams)
def bollinger_reversion(
    data: xr.Dataset, features: xr.Dataset, spec: dict[str, Any], ctx: StrategyContext
) -> xr.DataArray:
    """+1 while close < lower band, -1 while close > upper band, else 0."""
    close = _close(data)
    lower = features[f"{spec['bands']}_lower"]
    upper = features[f"{spec['bands']}_upper"]
    return xr.where(close < lower, 1.0, xr.where(close > upper, -1.0, 0.0))


class BreakoutParams(Params):
    channel: str = ref_field("feature", kinds=("donchian",), description="a donchian feature")


@register_strategy("breakout", params=BreakoutParams)
def breakout(
    data: xr.Dataset, features: xr.Dataset, spec: dict[str, Any], ctx: StrategyContext
) -> xr.DataArray:
    """Donchian breakout: +1 above the previous bar's channel high, -1 below its low, else hold."""
    close = _close(data)
    hi = features[f"{spec['channel']}_high"].transpose("time", "symbol")
    lo = features[f"{spec['channel']}_low"].transpose("time", "symbol")
    arrays = [
        x.data if isinstance(x.data, da.Array) else da.from_array(x.data) for x in (close, hi, lo)
    ]
    if arrays[0].chunks != arrays[1].chunks:
        arrays[0] = arrays[0].rechunk(arrays[1].chunks)  # keep the features' chunking
    name = f"breakout-{tokenize([a.name for a in arrays])}"
    (side,) = chain_map(K.breakout, arrays, names=[name], label="breakout")
    return xr.DataArray(side, dims=("time", "symbol"), coords=hi.coords)


class TopKParams(Params):
    feature: str = ref_field("variable", description="score feature variable (highest is best)")
    k: int = Field(ge=1, description="names in the long set")
    short_k: int = Field(0, ge=0, description="names in the short set (0: long only)")
    every: int = Field(1, ge=1, description="rebalance on bars whose index t has t % every == 0")
    buffer: int = Field(0, ge=0, description="a held name stays while ranked <= k + buffer")


@register_strategy("top_k", params=TopKParams)
def top_k(
    data: xr.Dataset, features: xr.Dataset, spec: dict[str, Any], ctx: StrategyContext
) -> xr.DataArray:
    """+1 on the top-k names by score, -1 on the bottom short_k, re-picked every ``every`` bars."""
    score = features[spec["feature"]].transpose("time", "symbol")
    x = score.data if isinstance(score.data, da.Array) else da.from_array(score.data)
    chunks = x.chunks
    arrays = [x.rechunk({1: -1})]
    if "universe" in data.data_vars:
        u = data["universe"].transpose("time", "symbol").data
        u = u if isinstance(u, da.Array) else da.from_array(np.asarray(u))
        arrays.append(u.astype(np.float64).rechunk(arrays[0].chunks))
    params = {p: int(spec[p]) for p in ("k", "short_k", "every", "buffer")}
    name = f"top_k-{tokenize(sorted(params.items()), [a.name for a in arrays])}"
    (sig,) = chain_map(partial(K.top_k, **params), arrays, names=[name], label="top_k")
    return xr.DataArray(sig.rechunk(chunks), dims=("time", "symbol"), coords=score.coords)


class ReplayParams(Params):
    path: str = Field(
        description="Parquet or CSV table: time, symbol, signal (a path, or an fsspec URL)"
    )
    date_format: str | None = Field(
        None, description="strftime format of text times, e.g. %d/%m/%Y (null: inferred)"
    )
    storage_options: dict[str, Any] | None = Field(
        None,
        description="options of a URL's filesystem (endpoint_url, ...), as data.storage_options "
        "(null: credentials from the environment)",
    )


def _replay_spec(name: str, spec: dict[str, Any], feature_names: list[str] | None) -> dict:
    """The model's check; ``storage_options`` kept only when given (an unset one leaves the
    normalized spec, and so the signal cache key, as it was before the option existed)."""
    from admf_dask.params import validate_params

    rest = {k: v for k, v in spec.items() if k != "kind"}
    params = validate_params(ReplayParams, f"strategies.{name}", "signals", rest)
    if not params.get("storage_options"):
        params.pop("storage_options", None)
    return {"kind": "signals", **params}


@register_strategy("signals", params=ReplayParams, files=("path",), validate=_replay_spec)
def signals(
    data: xr.Dataset,
    features: xr.Dataset,
    spec: dict[str, Any],
    ctx: StrategyContext,
    name: str = "signals",
) -> xr.DataArray:
    """Replay a long table time, symbol, signal aligned to the data (missing rows are 0).

    The file is read in tasks (`admf_dask.strategies.replay.signal_array`): the graph holds
    the file's row groups and the data's coordinates, no signal values.
    """
    where = f"strategies.{name}.path"
    path = resolve_path(spec["path"], ctx.base_dir, where, spec.get("storage_options"))
    times = pd.DatetimeIndex(data["time"].values)
    symbols = [str(s) for s in data["symbol"].values]
    chunks = _close(data).chunks or ((len(times),), (len(symbols),))
    arr = signal_array(
        path,
        spec["path"],
        times,
        symbols,
        chunks[0],
        ctx.warnings,
        ctx.strict,
        date_format=spec.get("date_format"),
        option=f"strategies.{name}.date_format",
        client=ctx.client,
    )
    if arr.chunks[1] != chunks[1]:
        arr = arr.rechunk(chunks)
    return xr.DataArray(
        arr, dims=("time", "symbol"), coords={"time": data["time"], "symbol": data["symbol"]}
    )
