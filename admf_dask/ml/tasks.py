"""Worker-side task functions of the walk-forward plan (run on ML workers or local threads).

Every input is passed in explicitly as the rows it may use, so the time rules hold by
construction: a train task receives closes only up to the bar before its first predicted bar,
hence a label that would need a later close is NaN and never trained on, whatever the purge.

- `train_task`: one per fold -> ``{"bundle", "reason", "n_train", "trace"}``; the result future
  stays on the ML worker and every inference task of the fold takes it as input, so a model
  crosses the network once per fold (and is deserialized once per worker, `fold_models`).
- `infer_task`: one per fold x data time chunk -> ``{"p": (rows, symbol), "trace"}``.
- `assemble_task`: one per data time chunk -> signal block ``(rows, symbol)`` (untagged).
- `quality_task`: one per fold -> IC table row + the fold's inference traces (untagged).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from admf_dask.dasktools.lru import LRU
from admf_dask.dasktools.session import worker_plugin
from admf_dask.ml import _kernels as K
from admf_dask.ml.models import (
    FORMAT,
    SEQUENCE_KINDS,
    FoldModel,
    ModelBundle,
    TrainingFailed,
    blob_sha256,
    fit,
    load_bundle,
)
from admf_dask.ml.trace import trace_record, worker_identity


@dataclass(frozen=True)
class TrainJob:
    """What a train task needs besides its input rows (plain, picklable)."""

    run_id: str
    strategy: str
    kind: str
    key: str
    fold: int
    model_id: str
    feature_hash: str
    fingerprint: str
    features: tuple[str, ...]
    spec: dict[str, Any]
    train_start: int  # first training row (bar index)
    train_end: int  # one past the last training row (= predict_start - purge)
    predict_start: int  # first predicted bar; closes from here on are never passed in
    lookback: int
    horizon: int
    gpu: bool
    requested: dict[str, float]
    cache_dir: str | None = None  # disk cache folder (read and written here, on the worker)


@dataclass(frozen=True)
class InferJob:
    """One inference block: rows ``[start, stop)`` of a fold's prediction range."""

    run_id: str
    strategy: str
    key: str
    fold: int
    block: int
    start: int
    stop: int
    lookback: int
    requested: dict[str, float]


def _device(gpu: bool) -> str:
    if not gpu:
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def _design(x: np.ndarray, lookback: int, sequence: bool) -> np.ndarray:
    """Rows ``(n + lookback - 1, S, F)`` -> model inputs pooled over symbols.

    Tabular: ``(n*S, F)``; sequence: ``(n*S, lookback, F)``, row order (time, symbol).
    """
    if sequence:
        w = K.sequence_windows(x, lookback)  # (n, S, L, F)
        return w.reshape(-1, *w.shape[2:])
    return x.reshape(-1, x.shape[-1])


def _model_cache(job: TrainJob, ident: dict[str, Any]) -> tuple[Any, str] | None:
    """The disk cache and this fold model's key there (device and threads can change a model)."""
    if not job.cache_dir:
        return None
    from admf_dask.cache.store import DiskCache, entry_key

    key = entry_key("models", job.model_id, device=_device(job.gpu), nthreads=ident["nthreads"])
    return DiskCache(Path(job.cache_dir)), key


def _cached_bundle(cache: Any, key: str, job: TrainJob) -> ModelBundle | None:
    """The fold model from the disk cache; a corrupt one is removed (a warning) and retrained."""
    from admf_dask.errors import ModelFileError
    from admf_dask.ml.registry import read_bundle

    entry = cache.lookup("models", key)
    if entry is None:
        return None
    try:
        bundle = read_bundle(entry.path, job.model_id)
        if blob_sha256(bundle.blob) != bundle.meta.get("sha256"):
            raise ModelFileError(str(entry.path), "checksum mismatch")
    except ModelFileError as exc:
        cache.discard("models", key, exc.line)
        return None
    return bundle


def _store_bundle(cache: Any, key: str, bundle: ModelBundle) -> bool:
    from admf_dask.ml.registry import save_model

    meta = {"model_id": bundle.model_id, "strategy": bundle.meta.get("strategy")}
    # eviction is the client's (it sees the whole run); a worker only adds its entry
    return cache.put("models", key, lambda d: save_model(d, bundle), meta, evict=False) is not None


def train_task(
    job: TrainJob,
    x_parts: list[np.ndarray],
    x_start: int,
    c_parts: list[np.ndarray],
    c_start: int,
) -> dict[str, Any]:
    """Train fold `job.fold` on rows ``[train_start, train_end)`` pooled over symbols.

    With ``job.cache_dir``, a model already in the disk cache is read instead of trained
    (``"cache": "hit"``), and a newly trained one is stored there (``"cache": "write"``).
    """
    t0 = time.time()
    ident = worker_identity()
    cached = _model_cache(job, ident)
    if cached is not None:
        bundle = _cached_bundle(*cached, job)
        if bundle is not None:
            return _train_result(
                job, bundle, None, int(bundle.meta["n_train"]), t0, ident, {}, "hit", cached
            )
    seq = job.kind in SEQUENCE_KINDS
    a, e, b, L = job.train_start, job.train_end, job.predict_start, job.lookback
    x = K.take_rows(x_parts, x_start, a - L + 1, e)  # features, with the lookback halo
    close = K.take_rows(c_parts, c_start, a, b)  # nothing at or after the first predicted bar
    y = K.binary_labels(K.forward_return(close, job.horizon))[: e - a].reshape(-1)
    X = _design(x, L, seq)
    ok = K.finite_rows(X) & np.isfinite(y)
    X, y = X[ok], y[ok]
    bundle, reason = None, None
    timing: dict[str, float] = {}
    n_train = int(y.size)
    current = X[:, -1, :] if seq else X  # standardization stats: the training rows' own bars
    mean, std = K.standardization_stats(current)
    if n_train == 0:
        reason = "no training rows with finite features and a known label"
    elif np.unique(y).size < 2:
        reason = f"labels have one class only ({int(y[0])} in all {n_train} rows)"
    else:
        spec = job.spec
        try:
            blob, arch = fit(
                job.kind,
                K.standardize(X, mean, std),
                y.astype(np.float32),
                spec["params"],
                seed=int(spec["seed"]) + job.fold,
                nthreads=ident["nthreads"],
                device=_device(job.gpu),
                timing=timing,
            )
        except TrainingFailed as exc:
            reason = str(exc)
        else:
            if seq:
                arch["lookback"] = L
            meta = {
                "format": FORMAT,
                "model_id": job.model_id,
                "kind": job.kind,
                "strategy": job.strategy,
                "fold": job.fold,
                "features": list(job.features),
                "feature_hash": job.feature_hash,
                "data_fingerprint": job.fingerprint,
                "spec": job.spec,
                "arch": arch,
                "mean": [float(v) for v in mean],
                "std": [float(v) for v in std],
                "train_rows": [a, e],
                "predict_start": b,
                "n_train": n_train,
                "sha256": blob_sha256(blob),
                "run_id": job.run_id,
            }
            bundle = ModelBundle(job.kind, meta, blob)
    status = None
    if cached is not None:
        status = "write" if bundle is not None and _store_bundle(*cached, bundle) else "miss"
    return _train_result(job, bundle, reason, n_train, t0, ident, timing, status, cached)


def _train_result(
    job: TrainJob,
    bundle: ModelBundle | None,
    reason: str | None,
    n_train: int,
    t0: float,
    ident: dict[str, Any],
    timing: dict[str, float],
    status: str | None,
    cached: tuple[Any, str] | None,
) -> dict[str, Any]:
    a, e = job.train_start, job.train_end
    extra = {} if status is None else {"cache": status}
    rec = trace_record(
        run_id=job.run_id,
        strategy=job.strategy,
        stage="train",
        key=job.key,
        model_id=job.model_id,
        feature_hash=job.feature_hash,
        fold=job.fold,
        start=t0,
        stop=time.time(),
        identity=ident,
        requested=dict(job.requested),
        rows=[a, e],
        n_train=n_train,
        ok=bundle is not None,
        fit_s=timing.get("fit_s"),
        fit_cpu_s=timing.get("fit_cpu_s"),
        **extra,
    )
    out = {"bundle": bundle, "reason": reason, "n_train": n_train, "trace": rec}
    if cached is not None:
        out.update(cache=status, cache_key=cached[1], cache_warnings=list(cached[0].warnings))
    return out


# Each fold's model is deserialized once per process and the last few kept (inference tasks of
# one fold arrive together); keyed by the content id, so a stale entry can never be reused
# wrongly. On a worker, the cache is its `WorkerSetup` plugin's (admf_dask.cluster.plugin).
_LOCAL_MODELS = LRU(8, serialize_builds=True)


def fold_models() -> LRU:
    """The fold-model cache of this worker (its plugin's), or of this process."""
    plugin = worker_plugin()
    models = getattr(plugin, "models", None)
    return models if isinstance(models, LRU) else _LOCAL_MODELS


def _live_model(bundle: ModelBundle, gpu: bool) -> FoldModel:
    # serialized builds: two blocks of one fold arriving together deserialize it once
    model, _ = fold_models().get_or_build(
        bundle.model_id,
        lambda: load_bundle(bundle, where=f"model {bundle.model_id}", device=_device(gpu)),
    )
    return model


def infer_task(
    trained: dict[str, Any], job: InferJob, x_parts: list[np.ndarray], x_start: int
) -> dict[str, Any]:
    """P(up) for rows ``[start, stop)`` x all symbols; NaN where the model or the inputs are missing."""
    t0 = time.time()
    ident = worker_identity()
    bundle: ModelBundle | None = trained["bundle"]
    L = job.lookback
    x = K.take_rows(x_parts, x_start, job.start - L + 1, job.stop)  # only bars <= each row
    n, n_sym = job.stop - job.start, x.shape[1]
    if bundle is None:
        p = np.full((n, n_sym), np.nan)
        mid, fh = trained["trace"]["model_id"], trained["trace"]["feature_hash"]
    else:
        model = _live_model(bundle, gpu="GPU" in job.requested)
        X = _design(x, L, bundle.kind in SEQUENCE_KINDS)
        p = model.predict_proba(X, nthreads=ident["nthreads"]).reshape(n, n_sym)
        mid, fh = bundle.model_id, bundle.meta["feature_hash"]
    rec = trace_record(
        run_id=job.run_id,
        strategy=job.strategy,
        stage="inference",
        key=job.key,
        model_id=mid,
        feature_hash=fh,
        fold=job.fold,
        start=t0,
        stop=time.time(),
        identity=ident,
        requested=dict(job.requested),
        rows=[job.start, job.stop],
        block=job.block,
    )
    return {"p": p, "trace": rec}


def assemble_task(n_rows: int, n_sym: int, pieces: list[tuple[int, dict[str, Any]]]) -> np.ndarray:
    """Signal block of one data time chunk: ``2p - 1`` where a fold predicted, 0 elsewhere."""
    out = np.zeros((n_rows, n_sym))
    for offset, res in pieces:
        p = res["p"]
        out[offset : offset + p.shape[0]] = K.signal_from_proba(p)
    return out


def quality_task(
    fold: int,
    horizon: int,
    inferred: list[dict[str, Any]],
    c_parts: list[np.ndarray],
    c_start: int,
    start: int,
    stop: int,
) -> dict[str, Any]:
    """IC, rank IC, accuracy and AUC of one fold's predictions (diagnostic: never feeds signals).

    Forward returns come from closes up to the end of the data, so only predicted rows whose
    label is known by then count.
    """
    p = np.concatenate([r["p"] for r in inferred], axis=0) if inferred else np.empty((0, 0))
    close = K.take_rows(c_parts, c_start, start, stop + horizon)
    fwd = K.forward_return(close, horizon)[: stop - start]
    metrics = K.fold_metrics(p, fwd) if p.size else K.fold_metrics(np.empty(0), np.empty(0))
    return {"fold": fold, "metrics": metrics, "traces": [r["trace"] for r in inferred]}
