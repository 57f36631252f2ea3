"""Model files in the run folder: one blob + one JSON sidecar per fold model, named by content id.

``models/<model_id>.ubj`` (XGBoost) or ``models/<model_id>.pt`` (torch ``state_dict``), next to
``models/<model_id>.json`` (kind, architecture, standardization stats, features, checksum). The id
is a hash of what determines the model (kind, spec, fold, feature hash, data fingerprint), so the
same inputs give the same file name and a different input can never overwrite another's model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from admf_dask.dasktools.files import atomic_write_bytes
from admf_dask.errors import ModelFileError
from admf_dask.ml.models import FORMAT, FoldModel, ModelBundle, check_meta, load_bundle

EXTENSIONS = {"xgboost": ".ubj", "mlp": ".pt", "lstm": ".pt"}


def _digest(obj: Any, n: int = 24) -> str:
    from admf_dask.dasktools.ids import identity

    return identity("model", obj, length=n)


def model_id(
    kind: str, params: dict[str, Any], fold: int, feature_hash: str, fingerprint: str
) -> str:
    """Content id of a fold model.

    Parameters
    ----------
    kind : str
        Model kind.
    params : dict
        The validated strategy spec (features, horizon, windows, model params, seed).
    fold : int
        Fold number.
    feature_hash : str
        `feature_hash` of the model's inputs.
    fingerprint : str
        The market data fingerprint.
    """
    return _digest(
        {
            "kind": kind,
            "params": params,
            "fold": int(fold),
            "features": feature_hash,
            "data": fingerprint,
        }
    )


def feature_hash(names: list[str], tokens: list[str]) -> str:
    """Hash of the feature names and deterministic tokens of their values (dask tokenize)."""
    return _digest({"names": list(names), "tokens": list(tokens)}, 16)


def model_paths(models_dir: str | Path, mid: str, kind: str) -> tuple[Path, Path]:
    """``(blob path, sidecar path)`` of a model id."""
    d = Path(models_dir)
    return d / f"{mid}{EXTENSIONS[kind]}", d / f"{mid}.json"


def save_model(models_dir: str | Path, bundle: ModelBundle) -> Path:
    """Write a bundle's blob and sidecar (atomically: temp file then rename); return the blob path."""
    d = Path(models_dir)
    d.mkdir(parents=True, exist_ok=True)
    blob_path, meta_path = model_paths(d, bundle.model_id, bundle.kind)
    atomic_write_bytes(blob_path, bundle.blob)
    atomic_write_bytes(meta_path, json.dumps(bundle.meta, indent=1, sort_keys=True).encode())
    return blob_path


def _resolve(models_dir_or_file: str | Path, mid: str | None) -> tuple[Path, str]:
    p = Path(models_dir_or_file)
    if mid is not None:
        return p, mid
    if p.is_dir():
        raise ModelFileError(str(p), "a models folder needs a model id", "pass model_id=")
    return p.parent, p.name.split(".")[0]


def read_bundle(models_dir_or_file: str | Path, mid: str | None = None) -> ModelBundle:
    """Read a model's sidecar and blob without interpreting the blob.

    Parameters
    ----------
    models_dir_or_file : path
        The ``models`` folder (with `mid`) or a sidecar / blob path.
    mid : str, optional
        Model id when a folder is given.

    Raises
    ------
    ModelFileError
        Missing files, an unreadable or foreign sidecar, or an id that does not match the file.
    """
    p, mid = _resolve(models_dir_or_file, mid)
    meta_path = p / f"{mid}.json"
    where = str(meta_path)
    if not meta_path.is_file():
        raise ModelFileError(where, f"no model '{mid}' here", "check the run folder's models/")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(where, f"unreadable model sidecar ({exc})") from exc
    check_meta(meta, where)
    if meta["model_id"] != mid:
        raise ModelFileError(where, f"sidecar is for model '{meta['model_id']}', not '{mid}'")
    blob_path, _ = model_paths(p, mid, meta["kind"])
    try:
        blob = blob_path.read_bytes()
    except OSError as exc:
        raise ModelFileError(str(blob_path), f"cannot read model file ({exc})") from exc
    return ModelBundle(meta["kind"], meta, blob)


def load_model(
    models_dir_or_file: str | Path, model_id: str | None = None, device: str = "cpu"
) -> FoldModel:
    """Load a fold model from the registry, safely (no pickle is ever executed).

    Parameters
    ----------
    models_dir_or_file : path
        The run's ``models`` folder (with `model_id`), or a model's sidecar or blob path.
    model_id : str, optional
        Which model, when a folder is given.
    device : str
        Torch device for ``mlp``/``lstm``.

    Returns
    -------
    FoldModel
        ``predict_proba(raw_features)`` reproduces the run's predictions.

    Raises
    ------
    ModelFileError
        Corrupt, truncated, foreign or mismatched files, as one line.
    """
    folder, mid = _resolve(models_dir_or_file, model_id)
    bundle = read_bundle(folder, mid)
    blob_path, _ = model_paths(folder, mid, bundle.kind)
    return load_bundle(bundle, where=str(blob_path), device=device)


def list_models(models_dir: str | Path) -> list[dict[str, Any]]:
    """The sidecars of every model in a ``models`` folder, sorted by (strategy, fold)."""
    out = []
    for p in sorted(Path(models_dir).glob("*.json")):
        try:
            meta = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(meta, dict) and meta.get("format") == FORMAT:
            out.append(meta)
    return sorted(out, key=lambda m: (str(m.get("strategy", "")), int(m.get("fold", 0))))
