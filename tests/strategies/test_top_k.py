"""The ``top_k`` strategy against a plain reference of README, pipeline file, and the universe mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from admf_dask.errors import ConfigError
from admf_dask.features import compute_features
from admf_dask.strategies import _kernels as K
from admf_dask.strategies import compute_signals, validate_strategy_spec


def reference_top_k(score, universe, k, short_k=0, every=1, buffer=0):
    """README, pipeline file top_k, one bar and one name at a time with Python sets."""
    n_t, n_s = score.shape
    out = np.zeros((n_t, n_s))
    long_set: set[int] = set()
    short_set: set[int] = set()
    for t in range(n_t):
        long_set = {s for s in long_set if universe[t, s]}
        short_set = {s for s in short_set if universe[t, s]}
        if t % every == 0:
            valid = [s for s in range(n_s) if universe[t, s] and np.isfinite(score[t, s])]
            ranked = sorted(valid, key=lambda s: (-score[t, s], s))
            rank = {s: r + 1 for r, s in enumerate(ranked)}
            new_long = {s for s in long_set if s in rank and rank[s] <= k + buffer}
            for s in ranked:
                if len(new_long) >= min(k, len(ranked)):
                    break
                new_long.add(s)
            rest = sorted((s for s in valid if s not in new_long), key=lambda s: (score[t, s], s))
            srank = {s: r + 1 for r, s in enumerate(rest)}
            new_short = {s for s in short_set if s in srank and srank[s] <= short_k + buffer}
            for s in rest:
                if len(new_short) >= min(short_k, len(rest)):
                    break
                new_short.add(s)
            long_set, short_set = new_long, new_short
        for s in long_set:
            out[t, s] = 1.0
        for s in short_set:
            out[t, s] = -1.0
    return out


def _scores(seed, n_t=80, n_s=11):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(n_t, n_s)), 1)  # ties
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:4] = np.nan  # no finite score at the start
    x[30] = np.nan  # a rebalance bar with nothing to rank
    u = np.ones(x.shape, bool)
    for s in range(n_s):  # list late, delist, relist
        a, b = sorted(rng.integers(0, n_t, 2))
        if s % 3 == 0:
            u[:a, s] = False
        elif s % 3 == 1:
            u[b:, s] = False
        else:
            u[a:b, s] = False
    return x, u


CASES = [
    {"k": 3},
    {"k": 3, "short_k": 2},
    {"k": 2, "short_k": 3, "every": 5, "buffer": 2},
    {"k": 4, "every": 3, "buffer": 1},
    {"k": 20, "short_k": 20, "every": 2},
    {"k": 1, "short_k": 1, "every": 7, "buffer": 5},
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_reference(case, seed):
    x, u = _scores(seed)
    got, _ = K.top_k(x, u.astype(float), **case)
    np.testing.assert_array_equal(got, reference_top_k(x, u, **case))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n_t=st.integers(1, 40),
    n_s=st.integers(1, 9),
    k=st.integers(1, 6),
    short_k=st.integers(0, 6),
    every=st.integers(1, 6),
    buffer=st.integers(0, 4),
    cut=st.integers(0, 40),
)
def test_kernel_matches_reference_property(seed, n_t, n_s, k, short_k, every, buffer, cut):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (n_t, n_s)).astype(float)  # many ties
    x[rng.random(x.shape) < 0.25] = np.nan
    u = rng.random(x.shape) > 0.2
    case = {"k": k, "short_k": short_k, "every": every, "buffer": buffer}
    ref = reference_top_k(x, u, **case)
    cut = min(cut, n_t)
    a, state = K.top_k(x[:cut], u[:cut].astype(float), **case)
    b, _ = K.top_k(x[cut:], u[cut:].astype(float), state=state, **case)
    np.testing.assert_array_equal(np.concatenate([a, b]), ref)
    longs, shorts = (ref == 1).sum(axis=1), (ref == -1).sum(axis=1)
    assert (longs <= k).all() and (shorts <= short_k).all()


@pytest.mark.parametrize("case", CASES[1:4])
def test_kernel_state_carries_across_chunks(case):
    x, u = _scores(5)
    ref, _ = K.top_k(x, u.astype(float), **case)
    for cuts in ([1, 2, 3, 10, 41], [7, 14, 79], [33]):
        state, parts = None, []
        for a, b in zip([0, *cuts], [*cuts, len(x)], strict=True):
            out, state = K.top_k(x[a:b], u[a:b].astype(float), state=state, **case)
            parts.append(out)
        np.testing.assert_array_equal(np.concatenate(parts), ref)


def _market(chunks=(25, 4), seed=0, n_t=90, n_s=9):
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
    u = np.ones(c.shape, bool)
    u[:20, 0] = False
    u[60:, 1] = False
    u[30:50, 2] = False
    ds["universe"] = (("time", "symbol"), u)
    return ds.chunk({"time": chunks[0], "symbol": chunks[1]})


FEATS = {
    "mom": {"kind": "roc", "window": 3},
    "mom_rank": {"kind": "rank", "input": "mom"},
    "sma_2": {"kind": "sma", "window": 2},
    "sma_5": {"kind": "sma", "window": 5},
    "ch": {"kind": "donchian", "window": 5},
    "bb": {"kind": "bbands", "window": 5, "k": 0.5},
    "rsi": {"kind": "rsi", "window": 5},
}
STRATS = {
    "book": {"kind": "top_k", "feature": "mom_rank", "k": 2, "short_k": 2, "every": 4, "buffer": 1},
    "raw": {"kind": "top_k", "feature": "mom", "k": 3, "every": 3},
    "xo": {"kind": "ma_crossover", "fast": "sma_2", "slow": "sma_5"},
    "mo": {"kind": "momentum", "feature": "mom"},
    "rv": {"kind": "rsi_reversion", "rsi": "rsi", "low": 45, "high": 55},
    "bo": {"kind": "bollinger_reversion", "bands": "bb"},
    "br": {"kind": "breakout", "channel": "ch"},
}


def _signals(ds, strats=STRATS):
    return compute_signals(ds, compute_features(ds, FEATS), strats).compute()


def test_strategy_matches_reference_and_chunking():
    ds = _market()
    sig = _signals(ds)
    f = compute_features(ds, FEATS).compute()
    u = ds["universe"].values
    for name in ("book", "raw"):
        spec = {k: v for k, v in STRATS[name].items() if k not in ("kind", "feature")}
        ref = reference_top_k(f[STRATS[name]["feature"]].values, u, **spec)
        np.testing.assert_array_equal(sig.sel(strategy=name).values, ref, err_msg=name)
    for chunks in ((90, 9), (1, 9), (7, 2), (40, 1)):
        other = _signals(_market(chunks=chunks))
        np.testing.assert_array_equal(other.values, sig.values, err_msg=str(chunks))


def test_universe_mask_in_every_kind():
    ds = _market()
    sig = _signals(ds)
    out = ~ds["universe"].values
    assert (sig.values[out] == 0).all()
    listed = _signals(ds.drop_vars("universe"))
    for name in STRATS:  # something to mask: every kind trades those names when all listed
        assert (listed.sel(strategy=name).values[out] != 0).any(), name
    keep = ~out
    for name in ("xo", "mo", "rv", "bo", "br"):  # pure kinds only lose the masked bars
        np.testing.assert_array_equal(
            sig.sel(strategy=name).values[keep], listed.sel(strategy=name).values[keep]
        )


def test_no_lookahead():
    ds = _market()
    ref = _signals(ds)
    cut = 55
    fut = ds.copy()
    for f in ("open", "high", "low", "close", "volume"):
        v = fut[f].values.copy()
        v[cut:] = v[cut:] * np.linspace(0.5, 2.0, v.shape[1])
        fut[f] = (("time", "symbol"), v)
    u = fut["universe"].values.copy()
    u[cut:, 3] = False
    fut["universe"] = (("time", "symbol"), u)
    got = _signals(fut.chunk({"time": 25, "symbol": 4}))
    np.testing.assert_array_equal(got.values[:cut], ref.values[:cut])


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"k": 0}, "strategies.t.k"),
        ({"k": 2, "short_k": -1}, "strategies.t.short_k"),
        ({"k": 2, "every": 0}, "strategies.t.every"),
        ({"k": 2, "buffer": -1}, "strategies.t.buffer"),
        ({}, "strategies.t.k"),
        ({"k": 2, "feature": "nope"}, "strategies.t.feature"),
    ],
)
def test_bad_params(spec, where):
    full = {"kind": "top_k", "feature": "mom", **spec}
    with pytest.raises(ConfigError) as exc:
        validate_strategy_spec("t", full, FEATS)
    assert exc.value.where == where
    assert "\n" not in str(exc.value)


def test_universe_mask_in_ml_kinds():
    ds = _market(n_t=160)
    ml = {
        "ml": {
            "kind": "xgboost",
            "features": ["mom", "sma_2"],
            "train_window": 60,
            "retrain_every": 40,
            "horizon": 2,
            "params": {"n_estimators": 5, "max_depth": 2},
        }
    }
    sig = compute_signals(ds, compute_features(ds, FEATS), ml).compute()
    listed = compute_signals(
        ds.drop_vars("universe"), compute_features(ds.drop_vars("universe"), FEATS), ml
    ).compute()
    out = ~ds["universe"].values
    assert (listed.values[..., 0][out] != 0).any()
    assert (sig.values[..., 0][out] == 0).all()
    np.testing.assert_array_equal(sig.values[..., 0][~out], listed.values[..., 0][~out])
