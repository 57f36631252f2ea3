"""Trace records and fold quality as the lead writes them into run.json."""

from __future__ import annotations

import json

import numpy as np
from ml_synth import make_ctx, make_features, make_market

import admf_dask.ml as ml

REQUIRED = {
    "run_id",
    "stage",
    "key",
    "model_id",
    "feature_hash",
    "fold",
    "worker",
    "resources",
    "start",
    "stop",
}
QUALITY = {
    "fold",
    "train_start",
    "train_end",
    "predict_start",
    "predict_end",
    "n_train",
    "ic",
    "rank_ic",
    "accuracy",
    "auc",
}


def test_trace_and_quality_records(tmp_path):
    data = make_market(400, 4, seed=3)
    ctx = make_ctx(run_id="r-123")
    spec = {
        "kind": "xgboost",
        "features": ["ret_1", "ret_5", "ret_20"],
        "train_window": 150,
        "retrain_every": 100,
        "params": {"n_estimators": 20, "max_depth": 3},
    }
    ml.run_ml_strategy(data, make_features(data), spec, ctx, name="xgb")
    assert [r["stage"] for r in ctx.trace] == ["train", "inference", "inference"] * 2 + [
        "train",
        "inference",
    ]
    for r in ctx.trace:
        assert REQUIRED <= set(r)
        assert r["run_id"] == "r-123" and r["worker"] == "local" and r["start"] <= r["stop"]
        assert r["key"].startswith(f"ml-{r['stage'][:5]}")
    assert len({r["feature_hash"] for r in ctx.trace}) == 1
    assert len({r["model_id"] for r in ctx.trace}) == 3
    path = ml.write_trace_jsonl(ctx.trace, tmp_path / "t" / "trace.jsonl")
    assert ml.read_trace_jsonl(path) == json.loads(json.dumps(ctx.trace))
    assert len(path.read_text().splitlines()) == len(ctx.trace)

    table = ctx.quality["xgb"]
    assert [q["fold"] for q in table] == [0, 1, 2]
    for q in table:
        assert QUALITY <= set(q)
        assert q["n_train"] > 0 and -1 <= q["ic"] <= 1 and 0 <= q["auc"] <= 1
    # the last fold predicts bars 350..399; only rows whose 5-bar label is known count
    assert table[2]["n_eval"] == (399 - 5 - 350 + 1) * 4
    assert table[0]["n_eval"] == 100 * 4
    # the synthetic market has persistent drift: the model must find some of it
    assert np.mean([q["ic"] for q in table]) > 0.05
    json.dumps(ctx.quality, allow_nan=False)  # strict JSON: undefined metrics are null
