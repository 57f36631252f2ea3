"""ndarray kernels: labels, row windows, standardization, fold metrics."""

from __future__ import annotations

import numpy as np
import pytest
from _oracles import require_module

from admf_dask.ml import _kernels as K


def test_forward_return_and_labels_never_reach_past_the_given_rows():
    close = np.array([[100.0], [101.0], [99.0], [99.0], [np.nan], [105.0]])
    fwd = K.forward_return(close, 2)
    np.testing.assert_allclose(fwd[:2, 0], [-0.01, 99 / 101 - 1])
    assert np.isnan(fwd[2, 0])  # close[4] is missing
    assert fwd[3, 0] == pytest.approx(105 / 99 - 1)
    assert np.isnan(fwd[4:, 0]).all()  # t+2 past the end
    y = K.binary_labels(fwd)
    np.testing.assert_array_equal(y[:, 0], [0.0, 0.0, np.nan, 1.0, np.nan, np.nan])
    assert K.binary_labels(np.array([0.0, 1e-9, -1e-9]))[0] == 0.0  # flat is "not up"


def test_take_rows_pads_before_the_data_with_nan():
    parts = [np.arange(6.0).reshape(3, 2), np.arange(6.0, 10.0).reshape(2, 2)]
    got = K.take_rows(parts, 10, 8, 13)  # rows 8..12, data covers 10..14
    assert np.isnan(got[:2]).all()
    np.testing.assert_array_equal(got[2:], np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(
        K.take_rows(parts, 10, 12, 15), np.arange(4.0, 10.0).reshape(3, 2)
    )


def test_sequence_windows_end_at_their_row():
    x = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    w = K.sequence_windows(x, 3)
    assert w.shape == (3, 2, 3, 3)
    np.testing.assert_array_equal(w[0, 1], x[0:3, 1])
    np.testing.assert_array_equal(w[2, 0, -1], x[4, 0])


def test_standardization_uses_given_rows_and_guards_constant_columns():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    mean, std = K.standardization_stats(x)
    np.testing.assert_array_equal(mean, [2.0, 5.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    np.testing.assert_array_equal(K.standardize(x, mean, std), [[-1, 0], [1, 0]])


def test_signal_from_proba():
    np.testing.assert_array_equal(
        K.signal_from_proba(np.array([0.0, 0.5, 1.0, np.nan])), [-1, 0, 1, 0]
    )


def test_metrics_match_scipy():
    stats = require_module("scipy.stats")
    rng = np.random.default_rng(1)
    p = np.round(rng.uniform(size=300), 2)  # ties on purpose
    fwd = 0.3 * (p - 0.5) + rng.standard_normal(300) * 0.2
    m = K.fold_metrics(p, fwd)
    assert m["ic"] == pytest.approx(stats.pearsonr(p, fwd)[0], abs=1e-12)
    assert m["rank_ic"] == pytest.approx(stats.spearmanr(p, fwd)[0], abs=1e-12)
    np.testing.assert_allclose(K.rankdata(p), stats.rankdata(p))
    y = fwd > 0
    u = stats.mannwhitneyu(p[y], p[~y]).statistic
    assert m["auc"] == pytest.approx(u / (y.sum() * (~y).sum()), abs=1e-12)
    assert m["accuracy"] == pytest.approx(((p > 0.5) == y).mean())
    assert m["n_eval"] == 300
    one_class = K.fold_metrics(np.array([0.2, 0.7]), np.array([0.1, 0.2]))
    assert np.isnan(one_class["auc"])
