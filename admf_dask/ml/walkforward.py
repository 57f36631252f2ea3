"""Walk-forward ML strategies: fold plan, task graph, signals, registry, trace and fold quality.

Fold f (docs/TIME.md): predict bars ``[b, c)`` with ``c = min(b + retrain_every, n)``; train on rows
``[a, b - purge)`` with ``a = max(0, b - train_window)``; the first ``b`` is ``train_window`` and
bars before it have signal 0. A training row t has label ``sign(close[t+h]/close[t] - 1)``;
``purge >= horizon`` means ``t + h <= b - 1``: every label is known at the close of the bar
before the first predicted bar, when the model is (notionally) trained. The train task is only
given closes before ``b``, so this holds by construction too.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from admf_dask.errors import ConfigError, InputError, did_you_mean
from admf_dask.ml.models import SEQUENCE_KINDS
from admf_dask.ml.placement import GPU, make_runner
from admf_dask.ml.registry import feature_hash as _feature_hash
from admf_dask.ml.registry import model_id as _model_id
from admf_dask.ml.registry import save_model
from admf_dask.ml.spec import validate_ml_spec
from admf_dask.ml.tasks import (
    InferJob,
    TrainJob,
    assemble_task,
    infer_task,
    quality_task,
    train_task,
)

log = logging.getLogger("admf_dask")


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold; all bounds are bar indices, ``*_end`` exclusive.

    Attributes
    ----------
    fold : int
        Fold number (0, 1, ...).
    train_start, train_end : int
        Training rows ``[train_start, train_end)`` (``train_end = predict_start - purge``).
    predict_start, predict_end : int
        Predicted bars ``[predict_start, predict_end)``.
    """

    fold: int
    train_start: int
    train_end: int
    predict_start: int
    predict_end: int


def walk_forward_folds(
    n_bars: int, train_window: int, retrain_every: int, purge: int
) -> list[Fold]:
    """Split ``n_bars`` into walk-forward folds (see the module docstring).

    Parameters
    ----------
    n_bars : int
        Bars in the data.
    train_window : int
        Training history per fold; also the first predicted bar.
    retrain_every : int
        Bars predicted per fold.
    purge : int
        Rows dropped from the end of each training window (>= the label horizon).

    Returns
    -------
    list of Fold
        Empty when ``n_bars <= train_window``.
    """
    if train_window < 1 or retrain_every < 1 or purge < 0 or purge >= train_window:
        raise ValueError(
            f"bad fold plan: train_window={train_window}, retrain_every={retrain_every}, "
            f"purge={purge}"
        )
    folds = []
    b = train_window
    while b < n_bars:
        a = max(0, b - train_window)
        folds.append(Fold(len(folds), a, b - purge, b, min(b + retrain_every, n_bars)))
        b += retrain_every
    return folds


def _pieces(fold: Fold, edges: np.ndarray) -> list[tuple[int, int, int]]:
    """``(chunk, start, stop)`` parts of a fold's predicted range cut at the data's time chunks."""
    out = []
    for j in range(len(edges) - 1):
        s, e = max(fold.predict_start, edges[j]), min(fold.predict_end, edges[j + 1])
        if s < e:
            out.append((j, int(s), int(e)))
    return out


def _take(handles: list[Any], edges: np.ndarray, lo: int, hi: int) -> tuple[list[Any], int]:
    """The chunk handles covering rows ``[lo, hi)`` (clipped to the data) and the first's start."""
    lo_c, hi_c = max(lo, 0), min(hi, int(edges[-1]))
    j0 = int(np.searchsorted(edges, lo_c, side="right") - 1)
    j1 = int(np.searchsorted(edges, max(hi_c - 1, lo_c), side="right") - 1)
    j0 = min(max(j0, 0), len(handles) - 1)
    j1 = min(max(j1, j0), len(handles) - 1)
    return list(handles[j0 : j1 + 1]), int(edges[j0])


def _time_chunks(arr: Any, n: int) -> tuple[int, ...]:
    chunks = getattr(arr, "chunks", None)
    if chunks and isinstance(chunks, tuple) and chunks and isinstance(chunks[0], tuple):
        return tuple(int(c) for c in chunks[0])
    return (n,)


def _stack_features(features: xr.Dataset, names: list[str], chunks: tuple[int, ...]) -> Any:
    """``(time, symbol, feature)`` array of the listed variables (dask when any input is)."""
    import dask.array as da

    arrs = [features[v].transpose("time", "symbol").data for v in names]
    if any(isinstance(a, da.Array) for a in arrs):
        arrs = [
            (a if isinstance(a, da.Array) else da.from_array(np.asarray(a))).astype(np.float64)
            for a in arrs
        ]
        return da.stack(arrs, axis=-1).rechunk({0: chunks, 1: -1, 2: -1})
    return np.stack([np.asarray(a, dtype=np.float64) for a in arrs], axis=-1)


def _fingerprint(data: xr.Dataset) -> str:
    fp = data.attrs.get("fingerprint")
    if fp:
        return str(fp)
    from dask.base import tokenize

    return tokenize(data["close"].data, data["time"].values, data["symbol"].values)


def _date(times: np.ndarray, i: int) -> str:
    return (
        str(np.datetime_as_string(times[i], unit="D"))
        if np.issubdtype(times.dtype, np.datetime64)
        else str(times[i])
    )


def _clean(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def run_ml_strategy(
    data: xr.Dataset,
    features: xr.Dataset,
    spec: dict[str, Any],
    ctx: Any,
    name: str | None = None,
) -> xr.DataArray:
    """Walk-forward train + predict one ML strategy; signals in [-1, 1] ``(time, symbol)``.

    Parameters
    ----------
    data : xr.Dataset
        Market data with ``close`` ``(time, symbol)``; its time chunks become the signal's.
    features : xr.Dataset
        Feature variables ``(time, symbol)`` (causal: a value at t uses bars <= t only).
    spec : dict
        Strategy spec (`validate_ml_spec`; validated again here, idempotently).
    ctx : StrategyContext
        ``client`` (None: local threaded scheduler), ``run_id``, ``run_dir`` (models are saved
        in ``run_dir/models``), ``trace``, ``warnings``, ``strict``, ``quality``.
    name : str, optional
        Strategy name (default ``spec["name"]`` or the kind).

    Returns
    -------
    xr.DataArray
        Signal ``2p - 1`` per (time, symbol); 0 before the first fold, where a fold's model could
        not train, and where inputs are missing. With a client, training and inference have
        finished on the ML workers when this returns; the array's chunks are futures.

    Raises
    ------
    ConfigError
        Bad spec, a feature that is not there, or no ML worker on the cluster.
    InputError
        A fold could not train and ``ctx.strict`` is set.
    """
    name = name or spec.get("name") or spec.get("kind", "ml")
    spec = {k: v for k, v in spec.items() if k != "name"}
    spec = validate_ml_spec(name, spec)
    where = f"strategies.{name}"
    kind = spec["kind"]
    names = spec["features"]
    missing = [f for f in names if f not in features.data_vars]
    if missing:
        raise ConfigError(
            f"{where}.features",
            f"feature '{missing[0]}' is not computed{did_you_mean(missing[0], set(features.data_vars))}",
            "define it under features: or fix the name",
        )
    close_da = data["close"].transpose("time", "symbol")
    n_bars, n_sym = close_da.shape
    chunks = _time_chunks(close_da.data, n_bars)
    edges = np.cumsum([0, *chunks])
    lookback = int(spec.get("lookback", 1)) if kind in SEQUENCE_KINDS else 1
    run_id = str(getattr(ctx, "run_id", None) or "local")
    folds = walk_forward_folds(n_bars, spec["train_window"], spec["retrain_every"], spec["purge"])
    coords = {"time": close_da["time"], "symbol": close_da["symbol"]}
    attrs = {"strategy": name, "kind": kind}
    quality = _quality_table(ctx)
    if not folds:
        _fail(
            ctx,
            where,
            no_fold_text(spec["train_window"], n_bars),
            "lower train_window or load more history",
        )
        quality[name] = []
        import dask.array as da

        zeros = da.zeros((n_bars, n_sym), chunks=(chunks, n_sym))
        return xr.DataArray(zeros, dims=("time", "symbol"), coords=coords, name=name, attrs=attrs)

    from dask.base import tokenize

    cache = getattr(ctx, "cache", None)
    runner = make_runner(getattr(ctx, "client", None), where="cluster.ml_workers")
    plan = _Plan(
        name=name,
        kind=kind,
        spec=spec,
        run_id=run_id,
        tag=f"{name}-{run_id}-{secrets.token_hex(3)}",  # unique per call: no stale futures
        feature_hash=_feature_hash(names, _value_tokens(features, names, tokenize)),
        fingerprint=_fingerprint(data),
        requested=dict(runner.resources),
        lookback=lookback,
        edges=edges,
        cache_dir=str(cache.root) if cache is not None else None,
    )
    xb = runner.blocks(_stack_features(features, names, chunks), chunks)
    cb = runner.blocks(close_da.data, chunks)
    trains, qualities, by_chunk = [], [], {j: [] for j in range(len(chunks))}
    for f in folds:
        trained, quality_h = _submit_fold(runner, plan, f, xb, cb, by_chunk)
        trains.append(trained)
        qualities.append(quality_h)
    blocks = [
        runner.submit(
            assemble_task, int(n), n_sym, by_chunk[j], key=f"ml-signal-{plan.tag}-c{j}", ml=False
        )
        for j, n in enumerate(chunks)
    ]
    small, blocks = runner.collect(trains + qualities, blocks)
    if cache is not None:
        _cache_report(cache, small[: len(folds)])

    times = close_da["time"].values
    models_dir = Path(ctx.run_dir) / "models" if getattr(ctx, "run_dir", None) else None
    table = []
    for f, tr, q in zip(folds, small[: len(folds)], small[len(folds) :], strict=True):
        ctx.trace.append(tr["trace"])
        ctx.trace.extend(q["traces"])
        ok = tr["bundle"] is not None
        if ok and models_dir is not None:
            save_model(models_dir, tr["bundle"])
        table.append(_fold_row(f, tr, q, times))
        if not ok:
            _fail(
                ctx,
                where,
                f"fold {f.fold} (train {_date(times, f.train_start)}.."
                f"{_date(times, f.train_end - 1)}) could not train a {kind} model: "
                f"{tr['reason']}; signal 0 for {_date(times, f.predict_start)}.."
                f"{_date(times, f.predict_end - 1)}",
                "check that fold's features and labels, or run without strict to accept signal 0",
            )
    quality[name] = table
    arr = runner.to_array(blocks, [(int(n), n_sym) for n in chunks])
    return xr.DataArray(arr, dims=("time", "symbol"), coords=coords, name=name, attrs=attrs)


@dataclass(frozen=True)
class _Plan:
    """What every task of one strategy call shares."""

    name: str
    kind: str
    spec: dict[str, Any]
    run_id: str
    tag: str
    feature_hash: str
    fingerprint: str
    requested: dict[str, float]
    lookback: int
    edges: np.ndarray
    cache_dir: str | None = None


def _value_tokens(features: xr.Dataset, names: list[str], tokenize: Any) -> list[str]:
    """Deterministic token of each feature variable's values, equal in every process.

    A variable computed by `compute_features` is identified by the Dataset's ``feature_token``
    (data fingerprint, chunks, specs) and its name, so features read back from the disk cache
    give the same fold model ids as freshly computed ones; any other variable by its dask token.
    """
    ftoken = features.attrs.get("feature_token")
    out = []
    for v in names:
        if ftoken and "kind" in features[v].attrs and "params" in features[v].attrs:
            out.append(f"feature:{ftoken}:{v}")
        else:
            out.append(tokenize(features[v].data))
    return out


def _cache_report(cache: Any, trained: list[dict[str, Any]]) -> None:
    """Count the fold models read from / written to the disk cache; evict past the cap."""
    written = set()
    for tr in trained:
        for w in tr.get("cache_warnings") or []:
            cache.warnings.append(w)
        if tr.get("cache") == "hit":
            cache.note("hits", "models")
        elif tr.get("cache") == "write":
            cache.note("written", "models")
            written.add(("models", tr["cache_key"]))
    if written:
        cache.evict(protect=written)


def _submit_fold(
    runner: Any,
    plan: _Plan,
    f: Fold,
    xb: list[Any],
    cb: list[Any],
    by_chunk: dict[int, list[tuple[int, Any]]],
) -> tuple[Any, Any]:
    """Submit fold `f`'s train task, its inference tasks (one per data chunk) and its quality task.

    Inference results are also filed under their data chunk in `by_chunk` for assembly.
    """
    L, edges, horizon = plan.lookback, plan.edges, plan.spec["horizon"]
    mid = _model_id(plan.kind, plan.spec, f.fold, plan.feature_hash, plan.fingerprint)
    tkey = f"ml-train-{plan.tag}-f{f.fold}-{mid[:10]}"
    job = TrainJob(
        run_id=plan.run_id,
        strategy=plan.name,
        kind=plan.kind,
        key=tkey,
        fold=f.fold,
        model_id=mid,
        feature_hash=plan.feature_hash,
        fingerprint=plan.fingerprint,
        features=tuple(plan.spec["features"]),
        spec=plan.spec,
        train_start=f.train_start,
        train_end=f.train_end,
        predict_start=f.predict_start,
        lookback=L,
        horizon=horizon,
        gpu=GPU in plan.requested,
        requested=plan.requested,
        cache_dir=plan.cache_dir,
    )
    xp, xs = _take(xb, edges, f.train_start - L + 1, f.train_end)
    cp, cs = _take(cb, edges, f.train_start, f.predict_start)  # closes before b only
    trained = runner.submit(train_task, job, xp, xs, cp, cs, key=tkey, ml=True)
    inferred = []
    for j, s, e in _pieces(f, edges):
        ikey = f"ml-infer-{plan.tag}-f{f.fold}-b{j}-{mid[:10]}"
        ijob = InferJob(plan.run_id, plan.name, ikey, f.fold, j, s, e, L, plan.requested)
        xp, xs = _take(xb, edges, s - L + 1, e)  # features up to each predicted bar
        res = runner.submit(infer_task, trained, ijob, xp, xs, key=ikey, ml=True)
        inferred.append(res)
        by_chunk[j].append((s - int(edges[j]), res))
    cp, cs = _take(cb, edges, f.predict_start, f.predict_end + horizon)
    quality_h = runner.submit(
        quality_task,
        f.fold,
        horizon,
        inferred,
        cp,
        cs,
        f.predict_start,
        f.predict_end,
        key=f"ml-quality-{plan.tag}-f{f.fold}",
        ml=False,
    )
    return trained, quality_h


def _fold_row(f: Fold, tr: dict[str, Any], q: dict[str, Any], times: np.ndarray) -> dict[str, Any]:
    """One row of the IC table (dates inclusive; ``bars`` half-open indices)."""
    ok = tr["bundle"] is not None
    m = q["metrics"]
    return {
        "fold": f.fold,
        "model_id": tr["trace"]["model_id"],
        "status": "ok" if ok else "failed",
        "train_start": _date(times, f.train_start),
        "train_end": _date(times, f.train_end - 1),
        "predict_start": _date(times, f.predict_start),
        "predict_end": _date(times, f.predict_end - 1),
        "bars": asdict(f),
        "n_train": int(tr["n_train"]),
        "n_eval": int(m["n_eval"]),
        **{k: (_clean(m[k]) if ok else None) for k in ("ic", "rank_ic", "accuracy", "auc")},
    }


def no_fold_text(train_window: int, n_bars: int) -> str:
    """What a walk-forward without any fold says (also after a signal cache hit)."""
    longer = "longer than" if train_window > n_bars else "as long as"
    return f"train_window {train_window} is {longer} the data ({n_bars} bars): no fold trained"


def _quality_table(ctx: Any) -> dict[str, Any]:
    q = getattr(ctx, "quality", None)
    if q is None:
        q = {}
        try:
            ctx.quality = q
        except AttributeError:  # pragma: no cover - a frozen context without quality
            pass
    return q


def _fail(ctx: Any, where: str, what: str, fix: str) -> None:
    """A fold that cannot train: strict runs stop, others warn and carry on with signal 0."""
    if getattr(ctx, "strict", False):
        raise InputError(where, what, fix)
    text = f"{where}: {what}"
    ctx.warnings.append(text)
    log.warning(text)
