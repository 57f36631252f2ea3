"""Fold models in the disk cache: a later process reads them instead of training again."""

from __future__ import annotations

import numpy as np
from ml_synth import make_ctx, make_features, make_market

import admf_dask.ml as ml
from admf_dask.cache import DiskCache

SPEC = {
    "kind": "xgboost",
    "features": ["ret_1", "ret_5", "ret_20"],
    "train_window": 150,
    "retrain_every": 100,
    "horizon": 5,
    "params": {"n_estimators": 10, "max_depth": 3},
}


def _run(data, feats, cache, run_id):
    ctx = make_ctx(run_id=run_id)
    ctx.cache = cache
    sig = ml.run_ml_strategy(data, feats, dict(SPEC), ctx, name="xgb")
    return np.asarray(sig.values), ctx


def _train(ctx):
    return [r for r in ctx.trace if r["stage"] == "train"]


def test_fold_models_are_trained_once_then_read(tmp_path):
    data = make_market(n_bars=400, n_sym=3, seed=4)
    feats = make_features(data)
    s1, c1 = _run(data, feats, DiskCache(tmp_path / "c"), "first")
    assert [r["cache"] for r in _train(c1)] == ["write"] * 3
    # a new process: a fresh DiskCache object on the same folder
    cache = DiskCache(tmp_path / "c")
    s2, c2 = _run(data, feats, cache, "second")
    assert [r["cache"] for r in _train(c2)] == ["hit"] * 3
    assert all(r["fit_s"] is None for r in _train(c2))  # nothing was fitted
    assert cache.hits == {"models": 3}
    assert s1.tobytes() == s2.tobytes()
    assert [r["model_id"] for r in _train(c1)] == [r["model_id"] for r in _train(c2)]
    # another spec is another model
    ctx = make_ctx()
    ctx.cache = cache
    ml.run_ml_strategy(data, feats, {**SPEC, "seed": 99}, ctx, name="xgb")
    assert {r["cache"] for r in _train(ctx)} == {"write"}


def test_corrupt_fold_model_is_retrained_with_a_warning(tmp_path):
    data = make_market(n_bars=300, n_sym=3, seed=5)
    feats = make_features(data)
    s1, _ = _run(data, feats, DiskCache(tmp_path / "c"), "first")
    entries = sorted((tmp_path / "c" / "models").iterdir())
    blob = next(p for p in entries[0].iterdir() if p.suffix == ".ubj")
    raw = blob.read_bytes()
    blob.write_bytes(bytes(255 - b for b in raw))  # same size: the checksum catches it
    cache = DiskCache(tmp_path / "c")
    s2, c2 = _run(data, feats, cache, "second")
    assert sorted(r["cache"] for r in _train(c2)) == ["hit", "write"]
    assert any("corrupt" in w for w in cache.warnings)
    assert s1.tobytes() == s2.tobytes()
