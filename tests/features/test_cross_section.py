"""Cross-sectional features (rank, cs_zscore) and ``input:`` composition (README, pipeline file)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from admf_dask.errors import ConfigError
from admf_dask.features import _kernels as K
from admf_dask.features import compute_features, validate_feature_specs


def _rank_twin(x: np.ndarray, mask: np.ndarray, ascending: bool = True) -> np.ndarray:
    df = pd.DataFrame(np.where(mask, x, np.nan))
    n = df.count(axis=1).to_numpy()[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        q = ((df.rank(axis=1, ascending=ascending) - 1).to_numpy()) / (n - 1)
    return np.where((n == 1) & df.notna().to_numpy(), 0.5, q)


def _zscore_twin(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    df = pd.DataFrame(np.where(mask, x, np.nan))
    std = df.std(axis=1, ddof=0)
    z = df.sub(df.mean(axis=1), axis=0).div(std, axis=0)
    return z.where((df.count(axis=1) >= 2) & (std != 0), np.nan, axis=0).to_numpy()


def _random(seed: int, n_t: int = 60, n_s: int = 13, ties: bool = True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_t, n_s))
    if ties:
        x = np.round(x, 1)  # many ties
    x[rng.random(x.shape) < 0.2] = np.nan
    x[5] = np.nan  # a bar with no value
    x[6, 1:] = np.nan  # a bar with one value
    x[7] = 1.5  # a flat bar (std 0)
    mask = rng.random(x.shape) > 0.15
    return x, mask


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_matches_pandas(seed, ascending):
    x, mask = _random(seed)
    got = K.cs_rank(x, mask.astype(float), ascending)
    np.testing.assert_array_equal(got, _rank_twin(x, mask, ascending))
    if mask[6, 0] and np.isfinite(x[6, 0]):
        assert got[6, 0] == 0.5
    assert np.isnan(got[5]).all()


def test_rank_without_universe_is_all_listed():
    x, _ = _random(3)
    np.testing.assert_array_equal(K.cs_rank(x), _rank_twin(x, np.ones(x.shape, bool)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cs_zscore_matches_pandas(seed):
    x, mask = _random(seed, ties=False)
    got = K.cs_zscore(x, mask.astype(float))
    np.testing.assert_allclose(got, _zscore_twin(x, mask), rtol=1e-12, atol=1e-14)
    assert np.isnan(got[6]).all() and np.isnan(got[7]).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.integers(1, 12))
def test_rank_properties(seed, n_s, n_t):
    x, mask = _random(seed, n_t=max(n_t, 8), n_s=n_s)
    got = K.cs_rank(x, mask.astype(float))
    ok = np.isfinite(x) & mask
    assert np.array_equal(np.isfinite(got), ok)
    assert np.all((got[ok] >= 0) & (got[ok] <= 1))


def _market(n_t=120, n_s=7, seed=0, chunks=(40, 3)):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_t, n_s)), 0))
    c[rng.random(c.shape) < 0.05] = np.nan
    ds = xr.Dataset(
        {f: (("time", "symbol"), c.copy()) for f in ("open", "high", "low", "close", "volume")},
        coords={
            "time": pd.bdate_range("2020-01-01", periods=n_t),
            "symbol": [f"S{i}" for i in range(n_s)],
        },
    )
    ds["universe"] = (("time", "symbol"), rng.random(c.shape) > 0.1)
    return ds.chunk({"time": chunks[0], "symbol": chunks[1]})


SPECS = {
    "mom_rank": {"kind": "rank", "input": "mom"},
    "mom": {"kind": "roc", "window": 5},
    "mom_z": {"kind": "cs_zscore", "input": "mom"},
    "smooth": {"kind": "ema", "input": "mom_rank", "window": 4},
    "smooth_sma": {"kind": "sma", "input": "smooth", "window": 3},
    "bb": {"kind": "bbands", "input": "mom", "window": 5},
    "bb_rank": {"kind": "rank", "input": "bb_lower", "ascending": False},
}


def test_input_dag_matches_composition():
    ds = _market()
    lazy = compute_features(ds, SPECS)
    assert lazy["mom_rank"].chunks == ds["close"].chunks
    f = lazy.compute()
    assert list(f.data_vars)[:3] == ["mom_rank", "mom", "mom_z"]
    mask = ds["universe"].values
    mom = f["mom"].values
    np.testing.assert_array_equal(f["mom_rank"].values, _rank_twin(mom, mask))
    np.testing.assert_allclose(f["mom_z"].values, _zscore_twin(mom, mask), rtol=1e-12)
    # a window indicator on a recursive input: the pandas twin on the computed input
    ema = compute_features(
        ds.assign(close=f["mom_rank"]).drop_vars("universe"),
        {"e": {"kind": "ema", "window": 4}},
    )["e"].values
    np.testing.assert_array_equal(f["smooth"].values, ema)
    sma = pd.DataFrame(f["smooth"].values).rolling(3).mean().to_numpy()
    np.testing.assert_allclose(f["smooth_sma"].values, sma, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(
        f["bb_rank"].values, _rank_twin(f["bb_lower"].values, mask, False)
    )


@pytest.mark.parametrize("chunks", [(120, 7), (1, 2), (17, 7), (50, 1)])
def test_chunk_invariance(chunks):
    ref = compute_features(_market(chunks=(120, 7)), SPECS).compute()
    got = compute_features(_market(chunks=chunks), SPECS).compute()
    for v in ref.data_vars:
        np.testing.assert_array_equal(got[v].values, ref[v].values, err_msg=v)


def test_no_lookahead():
    ds = _market()
    ref = compute_features(ds, SPECS).compute()
    cut = 70
    fut = ds.copy()
    for f in ("open", "high", "low", "close", "volume"):
        v = fut[f].values.copy()
        v[cut:] *= 1.7
        fut[f] = (("time", "symbol"), v)
    got = compute_features(fut.chunk({"time": 40}), SPECS).compute()
    for v in ref.data_vars:
        np.testing.assert_array_equal(got[v].values[:cut], ref[v].values[:cut], err_msg=v)


def test_out_of_universe_is_left_out():
    ds = _market()
    f = compute_features(ds, {"r": {"kind": "rank", "input": "close"}}).compute()
    assert np.isnan(f["r"].values[~ds["universe"].values]).all()


@pytest.mark.parametrize(
    ("specs", "where", "text"),
    [
        (
            {
                "a": {"kind": "sma", "window": 2, "input": "b"},
                "b": {"kind": "ema", "window": 3, "input": "a"},
            },
            "features.a.input",
            "a -> b -> a",
        ),
        ({"a": {"kind": "sma", "window": 2, "input": "a"}}, "features.a.input", "a -> a"),
        ({"a": {"kind": "sma", "window": 2, "input": "nope"}}, "features.a.input", "'nope'"),
        ({"a": {"kind": "rank"}}, "features.a.input", "needs an input"),
        (
            {"b": {"kind": "bbands", "window": 5}, "a": {"kind": "rank", "input": "b"}},
            "features.a.input",
            "b_upper, b_middle, b_lower",
        ),
        ({"a": {"kind": "rank", "input": 3}}, "features.a.input", "must name"),
        (
            {"a": {"kind": "sma", "window": 2, "input": "close", "field": "open"}},
            "features.a.input",
            "both",
        ),
        ({"a": {"kind": "rank", "input": "close", "x": 1}}, "features.a", "x"),
    ],
)
def test_bad_specs(specs, where, text):
    with pytest.raises(ConfigError) as exc:
        validate_feature_specs(specs)
    assert exc.value.where.startswith(where)
    assert text in str(exc.value)
    assert "\n" not in str(exc.value)


def test_specs_without_input_keep_their_normal_form():
    norm = validate_feature_specs({"s": {"kind": "sma", "window": 3}})
    assert norm == {"s": {"kind": "sma", "window": 3, "field": "close"}}
    again = validate_feature_specs(
        validate_feature_specs({"r": {"kind": "rank", "input": "close"}})
    )
    assert again == {"r": {"kind": "rank", "ascending": True, "input": "close"}}
