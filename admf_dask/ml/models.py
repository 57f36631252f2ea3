"""The three model kinds: fit on standardized rows, serialize to safe bytes, load, predict.

A trained model travels as a `ModelBundle`: a JSON-able ``meta`` dict (architecture,
standardization stats, feature names, model id) and a ``blob`` in a format that cannot execute
code when read: XGBoost UBJSON (``Booster.save_raw("ubj")``) or a torch ``state_dict`` written
by ``torch.save`` and read back with ``torch.load(..., weights_only=True)``. The same bytes go to
the registry files, so a model reloaded from disk predicts exactly what the run predicted.

torch and xgboost are imported lazily: workers that never train pay nothing for them.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from admf_dask.errors import ModelFileError
from admf_dask.ml import _kernels as K

FORMAT = "admf-dask-model/1"
KINDS = ("xgboost", "mlp", "lstm")
SEQUENCE_KINDS = frozenset({"lstm"})
TORCH_KINDS = frozenset({"mlp", "lstm"})

# torch's global RNG and thread pool are per process. Every torch use here (training, building a
# module to load weights into, inference) holds this lock, so seeded runs stay bit-identical even
# when a worker (or the local threaded scheduler) runs several tasks at once.
_TORCH_LOCK = threading.Lock()


class TrainingFailed(Exception):
    """A fold's model cannot be trained (one class, no rows, diverging loss)."""


@dataclass(frozen=True)
class ModelBundle:
    """A trained fold model as plain data: what train tasks return and the registry stores.

    Attributes
    ----------
    kind : str
        ``xgboost``, ``mlp`` or ``lstm``.
    meta : dict
        JSON-able sidecar: format, model_id, architecture, mean/std, features, sha256 of blob.
    blob : bytes
        XGBoost UBJSON or a zipped torch ``state_dict``.
    """

    kind: str
    meta: dict[str, Any]
    blob: bytes = field(repr=False)

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])


# --- parameter schemas --------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One model keyword argument: default, type and closed/open bounds."""

    default: Any
    type: type
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    doc: str = ""


PARAMS: dict[str, dict[str, Param]] = {
    "xgboost": {
        "n_estimators": Param(100, int, 1, 100_000, doc="boosting rounds"),
        "max_depth": Param(4, int, 1, 32, doc="maximum tree depth"),
        "learning_rate": Param(0.1, float, 0, 1, lo_open=True, doc="shrinkage (eta)"),
        "subsample": Param(1.0, float, 0, 1, lo_open=True, doc="row sampling per tree"),
        "colsample_bytree": Param(1.0, float, 0, 1, lo_open=True, doc="feature sampling per tree"),
        "min_child_weight": Param(1.0, float, 0, None, doc="minimum hessian per leaf"),
        "reg_lambda": Param(1.0, float, 0, None, doc="L2 regularization"),
        "reg_alpha": Param(0.0, float, 0, None, doc="L1 regularization"),
        "gamma": Param(0.0, float, 0, None, doc="minimum loss reduction to split"),
        "max_bin": Param(256, int, 2, 4096, doc="histogram bins"),
    },
    "mlp": {
        "hidden": Param(32, int, 1, 4096, doc="units per hidden layer"),
        "layers": Param(2, int, 1, 16, doc="hidden layers"),
        "epochs": Param(20, int, 1, 10_000, doc="passes over the training rows"),
        "lr": Param(1e-3, float, 0, 10, lo_open=True, doc="Adam learning rate"),
        "batch_size": Param(256, int, 1, 10_000_000, doc="rows per step"),
        "weight_decay": Param(0.0, float, 0, None, doc="Adam weight decay"),
    },
    "lstm": {
        "hidden": Param(16, int, 1, 4096, doc="LSTM hidden size"),
        "layers": Param(1, int, 1, 8, doc="stacked LSTM layers"),
        "epochs": Param(10, int, 1, 10_000, doc="passes over the training rows"),
        "lr": Param(1e-3, float, 0, 10, lo_open=True, doc="Adam learning rate"),
        "batch_size": Param(256, int, 1, 10_000_000, doc="sequences per step"),
        "weight_decay": Param(0.0, float, 0, None, doc="Adam weight decay"),
    },
}


def default_params(kind: str) -> dict[str, Any]:
    """The default model keyword arguments of `kind`."""
    return {k: p.default for k, p in PARAMS[kind].items()}


# --- training -----------------------------------------------------------------------------


def fit(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    seed: int,
    nthreads: int = 1,
    device: str = "cpu",
    timing: dict[str, float] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Train one model on standardized rows and return ``(blob, architecture)``.

    Parameters
    ----------
    kind : str
        ``xgboost``, ``mlp`` or ``lstm``.
    x : ndarray
        float32 ``(n, F)`` (``(n, lookback, F)`` for ``lstm``), finite.
    y : ndarray
        ``(n,)`` labels 0/1 with both classes present.
    params : dict
        Complete model keyword arguments (see `PARAMS`).
    seed : int
        Seed of every random choice (init, shuffling, row/column sampling).
    nthreads : int
        Threads the library may use (the worker's thread count).
    device : str
        ``cpu`` or ``cuda``.
    timing : dict, optional
        Receives ``fit_s`` (wall) and ``fit_cpu_s`` (CPU time of the process) spent fitting,
        not counting the wait for the torch lock.

    Raises
    ------
    TrainingFailed
        The loss diverged (NaN/inf) or the library refused the data.
    """
    timing = {} if timing is None else timing
    if kind == "xgboost":
        return _fit_xgboost(x, y, params, seed, nthreads, device, timing)
    if kind in TORCH_KINDS:
        return _fit_torch(kind, x, y, params, seed, nthreads, device, timing)
    raise ValueError(f"unknown ML kind {kind!r}")


def _fit_xgboost(x, y, params, seed, nthreads, device, timing):
    import xgboost as xgb

    t0, c0 = time.perf_counter(), time.process_time()
    booster_params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "device": device,
        "eta": float(params["learning_rate"]),
        "max_depth": int(params["max_depth"]),
        "subsample": float(params["subsample"]),
        "colsample_bytree": float(params["colsample_bytree"]),
        "min_child_weight": float(params["min_child_weight"]),
        "lambda": float(params["reg_lambda"]),
        "alpha": float(params["reg_alpha"]),
        "gamma": float(params["gamma"]),
        "max_bin": int(params["max_bin"]),
        "seed": int(seed),
        "nthread": int(nthreads),
        "verbosity": 0,
    }
    try:
        dtrain = xgb.DMatrix(x, label=y, nthread=int(nthreads))
        booster = xgb.train(booster_params, dtrain, num_boost_round=int(params["n_estimators"]))
    except xgb.core.XGBoostError as exc:
        raise TrainingFailed(f"xgboost refused the data: {str(exc).splitlines()[0]}") from exc
    blob = bytes(booster.save_raw(raw_format="ubj"))
    timing["fit_s"] = time.perf_counter() - t0
    timing["fit_cpu_s"] = time.process_time() - c0
    return blob, {"n_features": int(x.shape[-1])}


def _torch_module(kind: str, arch: dict[str, Any]):
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self, n_features: int, hidden: int, layers: int) -> None:
            super().__init__()
            mods: list[nn.Module] = []
            d = n_features
            for _ in range(layers):
                mods += [nn.Linear(d, hidden), nn.ReLU()]
                d = hidden
            mods.append(nn.Linear(d, 1))
            self.net = nn.Sequential(*mods)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x).squeeze(-1)

    class LSTM(nn.Module):
        def __init__(self, n_features: int, hidden: int, layers: int) -> None:
            super().__init__()
            self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.head(out[:, -1]).squeeze(-1)

    cls = MLP if kind == "mlp" else LSTM
    return cls(int(arch["n_features"]), int(arch["hidden"]), int(arch["layers"]))


def set_torch_threads(nthreads: int) -> None:
    """Give torch the calling worker's thread count (process-wide setting, cheap to repeat)."""
    import torch

    n = max(1, int(nthreads))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _fit_torch(kind, x, y, params, seed, nthreads, device, timing):
    import torch
    import torch.nn.functional as F

    arch = {
        "n_features": int(x.shape[-1]),
        "hidden": int(params["hidden"]),
        "layers": int(params["layers"]),
    }
    with _TORCH_LOCK:
        t0, c0 = time.perf_counter(), time.process_time()
        set_torch_threads(nthreads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(int(seed))
        model = _torch_module(kind, arch).to(device)
        opt = torch.optim.Adam(
            model.parameters(), lr=float(params["lr"]), weight_decay=float(params["weight_decay"])
        )
        gen = torch.Generator().manual_seed(int(seed))
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(device)
        n, bs = xt.shape[0], int(params["batch_size"])
        model.train()
        for epoch in range(int(params["epochs"])):
            perm = torch.randperm(n, generator=gen).to(device)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                opt.zero_grad(set_to_none=True)
                loss = F.binary_cross_entropy_with_logits(model(xt[idx]), yt[idx])
                if not torch.isfinite(loss):
                    raise TrainingFailed(
                        f"training loss diverged ({float(loss.detach())}) in epoch {epoch + 1}"
                    )
                loss.backward()
                opt.step()
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        timing["fit_s"] = time.perf_counter() - t0
        timing["fit_cpu_s"] = time.process_time() - c0
    if not all(bool(torch.isfinite(v).all()) for v in state.values()):
        raise TrainingFailed("training diverged: the weights are not finite")
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue(), arch


# --- loading and prediction ---------------------------------------------------------------


class FoldModel:
    """A loaded fold model: standardizes raw features with its training stats, then predicts.

    Build with `load_bundle` (or `admf_dask.ml.registry.load_model`), never from untrusted
    pickles.
    """

    def __init__(self, kind: str, meta: dict[str, Any], impl: Any) -> None:
        self.kind = kind
        self.meta = meta
        self._impl = impl
        self.mean = np.asarray(meta["mean"], dtype=np.float64)
        self.std = np.asarray(meta["std"], dtype=np.float64)
        self._lock = threading.Lock()
        self._nthreads: int | None = None

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    def predict_proba(self, x: np.ndarray, nthreads: int = 1) -> np.ndarray:
        """P(up) for raw (unstandardized) rows; NaN where any input of a row is missing.

        Parameters
        ----------
        x : ndarray
            ``(n, F)`` or, for ``lstm``, ``(n, lookback, F)`` raw feature values.
        nthreads : int
            Threads for the library.
        """
        x = np.asarray(x, dtype=np.float64)
        out = np.full(x.shape[0], np.nan)
        ok = K.finite_rows(x)
        if not ok.any():
            return out
        xs = K.standardize(x[ok], self.mean, self.std)
        if self.kind == "xgboost":
            # a Booster is not safe to reconfigure while another thread predicts with it
            with self._lock:
                if self._nthreads != nthreads:
                    self._impl.set_param({"nthread": int(nthreads)})
                    self._nthreads = nthreads
                out[ok] = np.asarray(self._impl.inplace_predict(xs), dtype=np.float64)
            return out
        import torch

        device = next(self._impl.parameters()).device
        res = []
        # the process-wide torch lock: no torch op runs beside a seeded training, whose results
        # must not depend on what else the process does
        with _TORCH_LOCK, torch.no_grad():
            set_torch_threads(nthreads)
            # blocks of one fixed size (the last padded with zeros): a row's value does not
            # depend on how many rows the call has (BLAS picks its path by the row count), so
            # the time chunking changes no signal (docs/TIME.md)
            n = xs.shape[0]
            for i in range(0, n, _PREDICT_ROWS):
                xb = xs[i : i + _PREDICT_ROWS]
                if xb.shape[0] < _PREDICT_ROWS:
                    pad = np.zeros((_PREDICT_ROWS - xb.shape[0],) + xb.shape[1:], xb.dtype)
                    xb = np.concatenate([xb, pad])
                y = torch.sigmoid(self._impl(torch.from_numpy(xb).to(device)))
                res.append(y.double().cpu().numpy().reshape(-1)[: min(_PREDICT_ROWS, n - i)])
        out[ok] = np.concatenate(res)
        return out


#: rows per forward pass of a torch model (3 * 2**10: a whole number of any BLAS row tile)
_PREDICT_ROWS = 3072


def blob_sha256(blob: bytes) -> str:
    """Hex sha256 of a model blob (stored in the sidecar, checked on load)."""
    return hashlib.sha256(blob).hexdigest()


def load_bundle(bundle: ModelBundle, where: str = "<model>", device: str = "cpu") -> FoldModel:
    """Turn a bundle into a `FoldModel` without ever unpickling arbitrary objects.

    Raises
    ------
    ModelFileError
        The blob is not the kind's safe format, is truncated or modified, or does not fit the
        architecture in its sidecar.
    """
    kind, meta, blob = bundle.kind, bundle.meta, bundle.blob
    check_meta(meta, where)
    if meta["kind"] != kind:
        raise ModelFileError(where, f"sidecar says kind '{meta['kind']}', file is '{kind}'")
    if meta.get("sha256") and meta["sha256"] != blob_sha256(blob):
        raise ModelFileError(
            where,
            "model file does not match its sidecar checksum (truncated or modified)",
            "retrain: rerun the pipeline",
        )
    if kind == "xgboost":
        return FoldModel(kind, meta, _load_xgboost(blob, meta, where))
    # building a module draws its (then overwritten) initial weights from torch's global RNG:
    # under the lock, or a load beside a seeded training would shift that training's init
    with _TORCH_LOCK:
        return FoldModel(kind, meta, _load_torch(kind, blob, meta, where, device))


def check_meta(meta: Any, where: str) -> None:
    """Refuse a sidecar that is not ours (wrong format tag, kind or missing fields)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(where, f"not an admf-dask model sidecar (expected format '{FORMAT}')")
    missing = [k for k in ("model_id", "kind", "features", "mean", "std", "arch") if k not in meta]
    if missing:
        raise ModelFileError(where, f"model sidecar lacks {', '.join(missing)}")
    if meta["kind"] not in KINDS:
        raise ModelFileError(where, f"unknown model kind '{meta['kind']}'")
    n = len(meta["features"])
    if len(meta["mean"]) != n or len(meta["std"]) != n:
        raise ModelFileError(where, "standardization stats do not match the feature list")


def _load_xgboost(blob: bytes, meta: dict[str, Any], where: str):
    import xgboost as xgb

    # UBJSON and JSON models both start with '{'; a pickle starts with b'\x80' and is refused
    # here, before any parser sees it (xgboost's own parser would not execute it either).
    if not blob[:1] == b"{":
        raise ModelFileError(
            where, "not an XGBoost UBJSON/JSON model", "retrain: rerun the pipeline"
        )
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(blob))
    except xgb.core.XGBoostError as exc:
        raise ModelFileError(
            where, f"cannot read XGBoost model ({str(exc).splitlines()[0]})"
        ) from exc
    if booster.num_features() != int(meta["arch"]["n_features"]):
        raise ModelFileError(
            where,
            f"model expects {booster.num_features()} features, sidecar says "
            f"{meta['arch']['n_features']}",
        )
    return booster


def _load_torch(kind: str, blob: bytes, meta: dict[str, Any], where: str, device: str):
    import zipfile

    import torch

    # torch.save writes a zip archive; anything else (a raw pickle, a truncated file) is refused
    # before torch.load. Inside the zip, weights_only=True unpickles tensors and containers only.
    if blob[:4] != b"PK\x03\x04" or not zipfile.is_zipfile(io.BytesIO(blob)):
        raise ModelFileError(where, "not a torch state_dict file (zip archive expected)")
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any refusal or parse failure is a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(where, f"refused to load torch file ({first})") from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelFileError(where, "torch file is not a state_dict of tensors")
    try:
        module = _torch_module(kind, meta["arch"])
        module.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(
            where, f"weights do not fit the {kind} architecture ({first})"
        ) from exc
    module.eval()
    return module.to(device)
