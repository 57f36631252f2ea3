"""Walk-forward plan, spec validation, no look-ahead, determinism and failure isolation."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ml_synth import make_ctx, make_features, make_market, market_from_close

import admf_dask.ml as ml
from admf_dask.errors import ConfigError, InputError
from admf_dask.ml.models import TrainingFailed, default_params, fit
from admf_dask.ml.walkforward import Fold, walk_forward_folds

FEATURES = ["ret_1", "ret_5", "ret_20"]
TINY = {
    "xgboost": {"n_estimators": 15, "max_depth": 3},
    "mlp": {"hidden": 8, "layers": 1, "epochs": 3, "batch_size": 128},
    "lstm": {"hidden": 6, "epochs": 2, "batch_size": 128},
}


def tiny_spec(kind: str, **over) -> dict:
    spec = {
        "kind": kind,
        "features": FEATURES,
        "train_window": 150,
        "retrain_every": 100,
        "horizon": 5,
        "params": TINY[kind],
    }
    if kind == "lstm":
        spec["lookback"] = 10
    spec.update(over)
    return spec


def run(kind, data, feats, ctx=None, name="m", **over):
    ctx = ctx or make_ctx()
    sig = ml.run_ml_strategy(data, feats, tiny_spec(kind, **over), ctx, name=name)
    return sig, ctx


# --- fold plan ----------------------------------------------------------------------------


def test_fold_boundaries_exact():
    assert walk_forward_folds(1000, 504, 252, 5) == [
        Fold(0, 0, 499, 504, 756),
        Fold(1, 252, 751, 756, 1000),
    ]
    folds = walk_forward_folds(2520, 504, 252, 5)
    assert [(f.train_start, f.train_end, f.predict_start, f.predict_end) for f in folds] == [
        (b - 504, b - 5, b, b + 252) for b in range(504, 2520, 252)
    ]
    assert len(folds) == 8 and folds[-1].predict_end == 2520
    assert walk_forward_folds(504, 504, 252, 5) == []  # no bar left to predict
    assert walk_forward_folds(505, 504, 252, 5) == [Fold(0, 0, 499, 504, 505)]
    # train_window not a multiple: the first window starts at 0, later ones slide
    assert walk_forward_folds(30, 10, 7, 2) == [
        Fold(0, 0, 8, 10, 17),
        Fold(1, 7, 15, 17, 24),
        Fold(2, 14, 22, 24, 30),
    ]
    with pytest.raises(ValueError):
        walk_forward_folds(100, 10, 5, 10)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 400),
    tw=st.integers(2, 120),
    re=st.integers(1, 90),
    h=st.integers(1, 20),
    extra=st.integers(0, 5),
)
def test_folds_tile_and_purge_keeps_labels_before_the_first_predicted_bar(n, tw, re, h, extra):
    purge = h + extra
    if purge >= tw:
        return
    folds = walk_forward_folds(n, tw, re, purge)
    covered = [t for f in folds for t in range(f.predict_start, f.predict_end)]
    assert covered == list(range(tw, n)) if n > tw else covered == []
    for f in folds:
        assert f.train_start == max(0, f.predict_start - tw)
        assert f.train_end == f.predict_start - purge
        last_train_row = f.train_end - 1
        # its label needs close[t + h]: known at the close of the bar before the first prediction
        assert last_train_row + h <= f.predict_start - 1


def test_training_rows_in_trace_follow_the_plan():
    data = make_market(400, 3)
    _, ctx = run("xgboost", data, make_features(data), purge=7)
    rows = [r["rows"] for r in ctx.trace if r["stage"] == "train"]
    assert rows == [[0, 143], [100, 243], [200, 343]]
    q = ctx.quality["m"]
    assert [x["bars"]["predict_start"] for x in q] == [150, 250, 350]
    assert q[0]["train_end"] == str(data.time.values[142])[:10]


# --- spec ---------------------------------------------------------------------------------


def test_spec_defaults_and_errors():
    out = ml.validate_ml_spec("s", {"kind": "lstm", "features": ["a"]})
    assert out == {
        "kind": "lstm",
        "features": ["a"],
        "horizon": 5,
        "train_window": 504,
        "retrain_every": 252,
        "purge": 5,
        "lookback": 20,
        "params": default_params("lstm"),
        "seed": 0,
    }
    assert (
        ml.validate_ml_spec("s", {"kind": "xgboost", "features": "a", "horizon": 3})["purge"] == 3
    )
    bad = [
        ({"kind": "xgboost", "features": ["a"], "lookback": 5}, "strategies.s.lookback"),
        ({"kind": "mlp", "features": ["a"], "purge": 2}, "strategies.s.purge"),
        ({"kind": "mlp", "features": ["a"], "train_widow": 5}, "strategies.s.train_widow"),
        ({"kind": "mlp", "features": []}, "strategies.s.features"),
        ({"kind": "mlp", "features": ["a"], "horizon": True}, "strategies.s.horizon"),
        ({"kind": "mlp", "features": ["a"], "horizon": 2.5}, "strategies.s.horizon"),
        ({"kind": "mlp", "features": ["a"], "params": {"hiden": 3}}, "strategies.s.params.hiden"),
        (
            {"kind": "xgboost", "features": ["a"], "params": {"learning_rate": 0}},
            "strategies.s.params.learning_rate",
        ),
        (
            {"kind": "xgboost", "features": ["a"], "params": {"random_state": 1}},
            "strategies.s.params.random_state",
        ),
        ({"kind": "mlp", "features": ["a"], "train_window": 5, "purge": 5}, "strategies.s.purge"),
        ({"kind": "svm", "features": ["a"]}, "strategies.s.kind"),
    ]
    for spec, where in bad:
        with pytest.raises(ConfigError) as err:
            ml.validate_ml_spec("s", spec)
        assert err.value.where == where, (spec, err.value.line)
        assert "\n" not in err.value.line
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        ml.validate_ml_spec("s", {"kind": "mlp", "features": ["a"], "params": {"hiden": 3}})
    with pytest.raises(ConfigError, match="unknown feature 'b'"):
        ml.validate_ml_spec("s", {"kind": "mlp", "features": ["b"]}, feature_names={"a"})


def test_missing_feature_variable_is_a_config_error():
    data = make_market(200, 2)
    with pytest.raises(ConfigError) as err:
        run("xgboost", data, make_features(data), features=["ret_1", "sma_3"])
    assert err.value.where == "strategies.m.features"


# --- no look-ahead ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xgboost", "mlp", "lstm"])
def test_changing_the_future_changes_nothing_before(kind):
    T = 260  # inside fold 1's predictions (bars 250..349) and data chunk 200..299
    data = make_market(400, 4, seed=5)
    close = data["close"].values
    rng = np.random.default_rng(99)
    other = close.copy()
    other[T + 1 :] = close[T] * np.exp(np.cumsum(0.03 * rng.standard_normal((400 - T - 1, 4)), 0))
    data2 = market_from_close(other)
    s1, c1 = run(kind, data, make_features(data))
    s2, c2 = run(kind, data2, make_features(data2))
    a, b = s1.values, s2.values
    assert np.abs(a[150 : T + 1]).min() > 0  # predictions exist up to T, so the test has teeth
    np.testing.assert_array_equal(a[: T + 1], b[: T + 1])
    assert not np.array_equal(a[T + 1 :], b[T + 1 :])
    assert (a[:150] == 0).all()  # before the first model: no signal
    assert np.abs(a).max() <= 1.0
    assert not c1.warnings and not c2.warnings


def test_lstm_nan_input_means_no_signal_for_its_lookback():
    data = make_market(400, 3, seed=2)
    feats = make_features(data)
    f2 = feats.copy(deep=True)
    f2["ret_5"][300, 1] = np.nan
    s1, _ = run("lstm", data, feats)
    s2, _ = run("lstm", data, f2)
    a, b = s1.values, s2.values
    assert (b[300:310, 1] == 0).all() and (a[300:310, 1] != 0).all()
    np.testing.assert_array_equal(a[:300], b[:300])
    # fold 1 (bars 250..349) was trained before bar 300; fold 2 trains on it (minus the NaN rows).
    # Same model, same inputs, but the NaN rows leave the inference batch, and float32 GEMM
    # kernels (oneDNN) block by batch size: equal to a few float32 ulps, not bit for bit. A NaN
    # leaking past its lookback would differ by orders of magnitude more.
    np.testing.assert_allclose(a[310:350], b[310:350], rtol=0, atol=1e-6)
    np.testing.assert_allclose(a[:350, [0, 2]], b[:350, [0, 2]], rtol=0, atol=1e-6)


# --- determinism --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xgboost", "mlp", "lstm"])
def test_two_runs_identical(kind):
    data = make_market(300, 3, seed=11)
    feats = make_features(data)
    over = {"params": {**TINY[kind], "subsample": 0.7}} if kind == "xgboost" else {}
    s1, c1 = run(kind, data, feats, **over)
    s2, c2 = run(kind, data, feats, **over)
    np.testing.assert_array_equal(s1.values, s2.values)
    assert [r["model_id"] for r in c1.trace] == [r["model_id"] for r in c2.trace]
    s3, _ = run(kind, data, feats, seed=1, **over)
    assert not np.array_equal(s1.values, s3.values)  # the seed matters, so it is really fixed


def test_torch_loads_and_predictions_wait_for_a_seeded_training():
    """Building a module draws from torch's global RNG: a load beside a training between its
    manual_seed and its init would change the trained weights (seen as a flaky cluster-vs-local
    mismatch). Loads and predictions therefore take the same process lock as training."""
    import threading

    from admf_dask.ml import models

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    params = {**default_params("mlp"), "hidden": 4, "epochs": 1}
    blob, arch = fit("mlp", x, y, params, seed=3)
    meta = {
        "format": models.FORMAT,
        "model_id": "m",
        "kind": "mlp",
        "features": ["a", "b", "c"],
        "mean": [0.0] * 3,
        "std": [1.0] * 3,
        "arch": arch,
    }
    model = models.load_bundle(models.ModelBundle("mlp", meta, blob))
    for work in (
        lambda: models.load_bundle(models.ModelBundle("mlp", meta, blob)),
        lambda: model.predict_proba(x),
    ):
        done = threading.Event()
        with models._TORCH_LOCK:  # what a training holds
            t = threading.Thread(target=lambda w=work, d=done: (w(), d.set()))
            t.start()
            assert not done.wait(0.3)
        t.join(10)
        assert done.is_set()
    assert fit("mlp", x, y, params, seed=3)[0] == blob


def test_signal_chunks_follow_the_data():
    data = make_market(330, 2, chunk=60)
    sig, _ = run("xgboost", data, make_features(data))
    assert sig.chunks[0] == data["close"].chunks[0]
    assert sig.dims == ("time", "symbol")
    assert (sig.time.values == data.time.values).all()


# --- failure isolation --------------------------------------------------------------------


def _one_class_market():
    rng = np.random.default_rng(4)
    up = 100 * np.exp(0.01 * np.arange(200))[:, None] * np.ones((1, 3))
    rest = up[-1] * np.exp(np.cumsum(0.01 * rng.standard_normal((200, 3)), 0))
    return market_from_close(np.vstack([up, rest]))


@pytest.mark.parametrize("kind", ["xgboost", "mlp"])
def test_one_class_fold_warns_and_gives_zero(kind, caplog):
    data = _one_class_market()  # fold 0 trains on bars 0..144: every label is "up"
    with caplog.at_level(logging.WARNING, logger="admf_dask"):
        sig, ctx = run(kind, data, make_features(data), name="mono")
    v = sig.values
    assert len(ctx.warnings) == 1
    assert ctx.warnings[0].startswith("strategies.mono: fold 0") and "one class" in ctx.warnings[0]
    assert "one class" in caplog.text
    assert (v[:250] == 0).all() and np.abs(v[250:]).max() > 0
    q = ctx.quality["mono"]
    assert q[0]["status"] == "failed" and q[0]["ic"] is None and q[1]["status"] == "ok"
    assert [r["ok"] for r in ctx.trace if r["stage"] == "train"] == [False, True, True]


def test_one_class_fold_strict_raises():
    data = _one_class_market()
    with pytest.raises(InputError) as err:
        run("xgboost", data, make_features(data), ctx=make_ctx(strict=True), name="mono")
    assert err.value.where == "strategies.mono"
    assert "fold 0" in err.value.line and "\n" not in err.value.line


def test_no_finite_rows_warns():
    data = make_market(300, 2)
    feats = make_features(data)
    feats["ret_1"][:150] = np.nan
    sig, ctx = run("mlp", data, feats, name="holes")
    assert "no training rows" in ctx.warnings[0]
    assert (sig.values[:250] == 0).all()


def test_too_short_history_warns_or_raises():
    data = make_market(120, 2)
    sig, ctx = run("xgboost", data, make_features(data))
    assert (sig.values == 0).all() and "no fold trained" in ctx.warnings[0]
    with pytest.raises(InputError):
        run("xgboost", data, make_features(data), ctx=make_ctx(strict=True))


def test_diverging_torch_loss_is_a_training_failure():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (rng.uniform(size=64) > 0.5).astype(np.float32)
    params = {**default_params("mlp"), "lr": 1e30, "epochs": 5, "batch_size": 16}
    with pytest.raises(TrainingFailed, match="diverged"):
        fit("mlp", x, y, params, seed=0)
