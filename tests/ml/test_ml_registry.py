"""Model files: reload reproduces the run's predictions; corrupt or foreign files are refused."""

from __future__ import annotations

import io
import json
import pathlib
import pickle
import shutil

import numpy as np
import pytest
from ml_synth import make_ctx, make_features, make_market

import admf_dask.ml as ml
from admf_dask.errors import ModelFileError
from admf_dask.ml import _kernels as K
from admf_dask.ml.models import blob_sha256

FEATURES = ["ret_1", "ret_5", "ret_20"]
TINY = {
    "xgboost": {"n_estimators": 10, "max_depth": 3},
    "mlp": {"hidden": 8, "layers": 1, "epochs": 2},
    "lstm": {"hidden": 6, "epochs": 2},
}


class Payload:
    """Unpickling this writes a marker file: proof of code execution."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (self.marker, "payload ran"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data = make_market(360, 3, seed=8)
    feats = make_features(data)
    out = {}
    for kind in ("xgboost", "mlp", "lstm"):
        run_dir = tmp_path_factory.mktemp(kind)
        spec = {
            "kind": kind,
            "features": FEATURES,
            "train_window": 150,
            "retrain_every": 100,
            "params": TINY[kind],
        }
        if kind == "lstm":
            spec["lookback"] = 8
        ctx = make_ctx(run_dir=run_dir)
        sig = ml.run_ml_strategy(data, feats, spec, ctx, name=f"s_{kind}")
        out[kind] = (data, feats, spec, ctx, sig.values, run_dir / "models")
    return out


def predict(model, x, spec, b, c):
    """Raw feature rows of bars [b, c) (with the lookback halo) through a reloaded model."""
    n_feat = x.shape[-1]
    if model.kind == "lstm":
        L = spec["lookback"]
        rows = K.sequence_windows(x[b - L + 1 : c], L).reshape(-1, L, n_feat)
    else:
        rows = x[b:c].reshape(-1, n_feat)
    return model.predict_proba(rows).reshape(c - b, -1)


@pytest.mark.parametrize("kind", ["xgboost", "mlp", "lstm"])
def test_reload_gives_identical_predictions(runs, kind):
    data, feats, spec, ctx, sig, models = runs[kind]
    x = np.stack([feats[f].values for f in FEATURES], axis=-1)
    table = ctx.quality[f"s_{kind}"]
    assert len(list(models.glob("*.json"))) == len(table) == 3
    for row in table:
        model = ml.load_model(models, row["model_id"])
        assert model.features == FEATURES and model.meta["fold"] == row["fold"]
        b, c = row["bars"]["predict_start"], row["bars"]["predict_end"]
        whole = predict(model, x, spec, b, c)
        # a row's prediction does not depend on the rows beside it in the call (float32 GEMM
        # kernels depend on the row count: the models predict in fixed-size blocks), so the
        # whole fold, the run's blocks (data time chunks) and any other split are equal exactly
        np.testing.assert_array_equal(K.signal_from_proba(whole), sig[b:c])
        for step in (100, 1, 7):
            edges = [b, *range((b // step + 1) * step, c, step), c]
            for s0, s1 in zip(edges[:-1], edges[1:], strict=True):
                p = predict(model, x, spec, s0, s1)
                np.testing.assert_array_equal(K.signal_from_proba(p), sig[s0:s1])
    listed = ml.list_models(models)
    assert [m["fold"] for m in listed] == [0, 1, 2]
    assert {m["model_id"] for m in listed} == {r["model_id"] for r in table}
    # the sidecar names the exact blob; loading by file path works too
    blob = next(p for p in models.iterdir() if p.suffix in (".ubj", ".pt"))
    assert ml.load_model(blob).model_id == blob.stem


def _copy(models: pathlib.Path, tmp: pathlib.Path) -> tuple[pathlib.Path, str, pathlib.Path]:
    dst = tmp / "models"
    shutil.copytree(models, dst)
    meta_path = sorted(dst.glob("*.json"))[0]
    mid = meta_path.stem
    blob = next(p for p in dst.iterdir() if p.stem == mid and p.suffix != ".json")
    return dst, mid, blob


def _forge(blob: pathlib.Path, data: bytes, keep_checksum_valid: bool = True) -> None:
    """Replace a model file; an attacker who can write it can also fix the sidecar checksum."""
    blob.write_bytes(data)
    meta_path = blob.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if keep_checksum_valid:
        meta["sha256"] = blob_sha256(data)
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("kind", ["xgboost", "mlp"])
def test_malicious_pickle_is_refused_and_never_run(runs, kind, tmp_path):
    models, mid, blob = _copy(runs[kind][5], tmp_path)
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(Payload(marker))
    # the payload is live: plain pickle.loads would run it
    probe = tmp_path / "probe.txt"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()

    _forge(blob, payload)
    with pytest.raises(ModelFileError) as err:
        ml.load_model(models, mid)
    assert "\n" not in err.value.line and str(blob) in err.value.line
    assert not marker.exists()


def test_torch_save_of_arbitrary_object_is_refused_and_never_run(runs, tmp_path):
    import torch

    models, mid, blob = _copy(runs["lstm"][5], tmp_path)
    marker = tmp_path / "pwned.txt"
    buf = io.BytesIO()
    torch.save({"lstm.weight_ih_l0": Payload(marker)}, buf)  # a zip archive, like a real one
    _forge(blob, buf.getvalue())
    with pytest.raises(ModelFileError, match="refused to load torch file"):
        ml.load_model(models, mid)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["xgboost", "mlp"])
def test_truncated_file_is_refused(runs, kind, tmp_path):
    models, mid, blob = _copy(runs[kind][5], tmp_path)
    data = blob.read_bytes()
    blob.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="checksum"):
        ml.load_model(models, mid)
    _forge(blob, data[: len(data) // 2])  # checksum "fixed": the parser must still refuse
    with pytest.raises(ModelFileError):
        ml.load_model(models, mid)


def test_wrong_architecture_is_refused(runs, tmp_path):
    models, mid, blob = _copy(runs["mlp"][5], tmp_path)
    meta_path = blob.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["arch"]["hidden"] = 5
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="do not fit the mlp architecture"):
        ml.load_model(models, mid)


def test_foreign_or_mismatched_sidecar_is_refused(runs, tmp_path):
    models, mid, blob = _copy(runs["xgboost"][5], tmp_path)
    meta_path = blob.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(ModelFileError, match="not an admf-dask model sidecar"):
        ml.load_model(models, mid)
    meta_path.write_text(json.dumps({**meta, "model_id": "0" * 24}))
    with pytest.raises(ModelFileError, match="sidecar is for model"):
        ml.load_model(models, mid)
    meta_path.write_text("{not json")
    with pytest.raises(ModelFileError, match="unreadable model sidecar"):
        ml.load_model(models, mid)
    with pytest.raises(ModelFileError, match="no model"):
        ml.load_model(models, "f" * 24)


def test_model_id_is_a_content_hash():
    a = ml.model_id("mlp", {"x": 1}, 0, "fh", "fp")
    assert a == ml.model_id("mlp", {"x": 1}, 0, "fh", "fp")
    others = [
        ml.model_id("lstm", {"x": 1}, 0, "fh", "fp"),
        ml.model_id("mlp", {"x": 2}, 0, "fh", "fp"),
        ml.model_id("mlp", {"x": 1}, 1, "fh", "fp"),
        ml.model_id("mlp", {"x": 1}, 0, "gh", "fp"),
        ml.model_id("mlp", {"x": 1}, 0, "fh", "gp"),
    ]
    assert a not in others and len(set(others)) == 5
