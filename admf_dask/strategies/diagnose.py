"""Strategies that never signal: found after the signal stage, explained in one line each.

A run whose strategies are all 0 trades nothing and would otherwise finish without a word (an SMA
window longer than the data, replayed signals stamped at times that are not bars, an ML
``train_window`` longer than the data). `check_signals` counts the non-zero signals of every
strategy on the cluster (one small reduction over the persisted signals) and, only for a
strategy with none, looks for the reason: the features it reads that are NaN everywhere, the
replay file's rows that match no bar, or the ML folds that never trained.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import is_dask_collection

from admf_dask.errors import ConfigError, DataError
from admf_dask.kinds import STRATEGIES, StrategyContext
from admf_dask.params import refs
from admf_dask.strategies.replay import resolve_path, signal_times
from admf_dask.strategies.stage import _feature_refs

#: the spec parameters of an indicator that set how many bars it needs before its first value
_WINDOW_PARAMS = ("window", "slow", "fast", "signal", "period")


def nonzero_counts(signals: xr.DataArray, client: Any = None) -> Callable[[], dict[str, int]]:
    """Per strategy, the number of (bar, symbol) cells whose signal is not 0.

    With a `client` the reduction is submitted now and the returned function waits for it (the
    run prepares its portfolio stage meanwhile); without one the function computes it.
    """
    counts = (signals != 0).sum(("time", "symbol")).data
    names = [str(s) for s in signals["strategy"].values]
    future = client.compute(counts) if client is not None and is_dask_collection(counts) else None

    def result() -> dict[str, int]:
        values = future.result() if future is not None else dask.compute(counts)[0]
        return {s: int(v) for s, v in zip(names, np.asarray(values), strict=True)}

    return result


def _variables_read(spec: Mapping[str, Any], features: xr.Dataset) -> list[str]:
    """The feature variables a strategy spec reads (params with a ``ref``; ML ``features``)."""
    out: list[str] = []
    kind = STRATEGIES.get(str(spec.get("kind")))
    for p in refs(kind.params) if kind is not None else ():
        value = spec.get(p.name)
        if p.ref == "variable" and value is not None:
            out.append(str(value))
        elif p.ref == "variables" and value:
            out.extend(str(v) for v in value)
        elif p.ref == "feature" and value is not None:
            out.extend(
                str(v)
                for v, arr in features.data_vars.items()
                if str(arr.attrs.get("feature", "")) == str(value) or str(v).startswith(f"{value}_")
            )
    if isinstance(spec.get("features"), list):
        out.extend(str(v) for v in spec["features"])
    return [v for v in dict.fromkeys(out) if v in features.data_vars]


def _window_note(feature_spec: Mapping[str, Any] | None, n_bars: int) -> str:
    for key in _WINDOW_PARAMS:
        v = (feature_spec or {}).get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v >= n_bars:
            return f" ({key} {v} {'>' if v > n_bars else '≥'} {n_bars} bars)"
    return f" (no finite value in {n_bars:,} bars)"


def _feature_reason(names: list[str], features: xr.Dataset, n_bars: int) -> tuple[str, str] | None:
    """(reason, fix) when some feature the strategy reads is NaN everywhere, else None."""
    if not names:
        return None
    (finite,) = dask.compute([np.isfinite(features[v].data).sum() for v in names])
    empty = [v for v, c in zip(names, finite, strict=True) if int(c) == 0]
    if not empty:
        return None
    specs = json.loads(features.attrs.get("feature_specs", "{}"))
    _, refs = _feature_refs(features)
    owners = {refs.get(v, (v, ""))[0] for v in empty}
    fname = refs.get(empty[0], (empty[0], ""))[0]
    if len(owners) == 1 and len(empty) > 1:  # every output of one feature (e.g. bbands)
        what = f"feature {fname}"
    else:
        what = f"feature {empty[0]}" + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "")
    return (
        f"{what} is NaN everywhere{_window_note(specs.get(fname), n_bars)}",
        "use a shorter window or load more bars",
    )


def _time_of_day(t: pd.DatetimeIndex) -> str:
    tod = pd.Series(t - t.normalize()).mode()
    return (pd.Timestamp(0) + tod.iloc[0]).strftime("%H:%M:%S") if len(tod) else "-"


def _replay_reason(name: str, spec: Mapping[str, Any], data: xr.Dataset, ctx: Any) -> str:
    """Why a replayed file gives no signal: its rows match no bar, or the matching ones are 0."""
    label = str(spec["path"])
    where = f"strategies.{name}.path"
    path = resolve_path(label, getattr(ctx, "base_dir", None), where, spec.get("storage_options"))
    when = signal_times(path, label, spec.get("date_format"))  # the time column only
    times = pd.DatetimeIndex(data["time"].values)
    n = len(when)
    if n == 0:
        return f"strategy '{name}' has no non-zero signal: {label} has no rows"
    matched = int((times.get_indexer(when) >= 0).sum())
    if matched:
        return (
            f"strategy '{name}' has no non-zero signal: the {matched:,} rows of {label} that "
            "match a bar are all 0 (or outside the universe)"
        )
    file_tod, bar_tod = _time_of_day(when), _time_of_day(times)
    if file_tod != bar_tod:
        detail = f"times {file_tod} vs bars at {bar_tod}"
    else:
        detail = (
            f"rows {when.min():%Y-%m-%d}..{when.max():%Y-%m-%d}, "
            f"bars {times[0]:%Y-%m-%d}..{times[-1]:%Y-%m-%d}"
        )
    return f"strategy '{name}': 0 of {n:,} signal rows match a bar of the data ({detail})"


def check_signals(
    signals: xr.DataArray,
    data: xr.Dataset,
    features: xr.Dataset,
    ctx: StrategyContext,
    counts: Callable[[], dict[str, int]] | None = None,
) -> dict[str, int]:
    """Warn about every strategy without a non-zero signal; with ``ctx.strict``, fail instead.

    Parameters
    ----------
    signals : xr.DataArray
        The (persisted) output of the signal stage, with its ``strategy_specs`` attribute.
    data, features : xr.Dataset
        The market data and the features the signals were computed from.
    ctx : StrategyContext
        Receives the warnings (``ctx.warnings``); ``ctx.strict`` turns them into errors.
    counts : callable, optional
        `nonzero_counts` of `signals`, submitted earlier (default: computed here).

    Returns
    -------
    dict
        Strategy name -> number of non-zero (bar, symbol) signals.

    Raises
    ------
    ConfigError, DataError
        With ``ctx.strict``, for the first strategy that never signals (one line).
    """
    counts = (counts or nonzero_counts(signals))()
    specs = json.loads(signals.attrs.get("strategy_specs", "{}"))
    n_bars = int(data.sizes["time"])
    for name, count in counts.items():
        if count:
            continue
        spec = specs.get(name, {})
        kind = str(spec.get("kind", ""))
        fix = "check the strategy's parameters and inputs"
        err: type[ConfigError] | type[DataError] = ConfigError
        where = f"strategies.{name}"
        if kind == "signals":
            text = _replay_reason(name, spec, data, ctx)
            err, where = DataError, str(spec.get("path", where))
            fix = "stamp the signals with the bars' times (same dates and time of day)"
        elif (sk := STRATEGIES.get(kind)) is not None and sk.explain_zero is not None:
            text, fix = sk.explain_zero(name, spec, ctx, n_bars)  # e.g. ML folds that never trained
        else:
            found = _feature_reason(_variables_read(spec, features), features, n_bars)
            if found is not None:
                reason, fix = found
            else:
                reason = "its rule never fires on this data"
            text = f"strategy '{name}' has no non-zero signal: {reason}"
        if getattr(ctx, "strict", False):
            raise err(where, text.removeprefix(f"{where}: "), fix)
        if text not in ctx.warnings:  # the ML stage may have said it already
            ctx.warnings.append(text)
    return counts
