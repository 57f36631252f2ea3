"""The seeded synthetic market: OHLC invariants, determinism, stylized facts, calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admf_dask.data import FIELDS, fingerprint, load_market_data, symbol_names, synthetic_ohlcv
from admf_dask.errors import ConfigError


def _check_invariants(d: dict[str, np.ndarray], n_bars: int, n_symbols: int) -> None:
    for f in FIELDS:
        assert d[f].shape == (n_bars, n_symbols)
        assert d[f].dtype == np.float64
    nan = np.isnan(d["close"])
    for f in FIELDS:  # a missing bar is missing in all five fields
        np.testing.assert_array_equal(np.isnan(d[f]), nan)
    o, h, lo, c, v = (d[f][~nan] for f in FIELDS)
    assert np.isfinite([o, h, lo, c, v]).all()
    assert (lo > 0).all()
    assert (h >= np.maximum(o, c)).all()
    assert (np.minimum(o, c) >= lo).all()
    assert (v >= 1).all()


@settings(max_examples=40, deadline=None)
@given(
    n_bars=st.integers(1, 300),
    n_symbols=st.integers(1, 7),
    seed=st.integers(0, 2**63),
    missing=st.sampled_from([0.0, 0.05, 0.5, 0.95]),
    late_listed=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_ohlc_ordering_positivity_and_determinism(n_bars, n_symbols, seed, missing, late_listed):
    a = synthetic_ohlcv(n_bars, n_symbols, seed, missing=missing, late_listed=late_listed)
    _check_invariants(a, n_bars, n_symbols)
    b = synthetic_ohlcv(n_bars, n_symbols, seed, missing=missing, late_listed=late_listed)
    for f in FIELDS:
        np.testing.assert_array_equal(a[f], b[f])
    nan = np.isnan(a["close"])
    assert not nan[-1].any(), "the last bar is never a gap"
    for j in range(n_symbols):  # history starts at the first listed bar, then only gaps
        first = int(np.argmax(~nan[:, j]))
        assert not nan[first, j]
        assert nan[:first, j].all()


def test_same_seed_same_market_other_seed_other_market():
    a = synthetic_ohlcv(500, 5, 1)
    b = synthetic_ohlcv(500, 5, 1)
    c = synthetic_ohlcv(500, 5, 2)
    np.testing.assert_array_equal(a["close"], b["close"])
    assert not np.allclose(a["close"], c["close"])


def test_stylized_facts():
    d = synthetic_ohlcv(2520, 20, 7)
    r = np.diff(np.log(d["close"]), axis=0)
    ann_vol = r.std(axis=0).mean() * np.sqrt(252)
    assert 0.1 < ann_vol < 0.8
    # volatility clustering: |r| is autocorrelated over days to weeks
    ar = np.abs(r - r.mean(axis=0))
    acf = [
        np.mean([np.corrcoef(ar[k:, j], ar[:-k, j])[0, 1] for j in range(20)]) for k in (1, 5, 10)
    ]
    assert min(acf) > 0.02, acf
    # a market factor: symbols move together
    corr = np.corrcoef(r.T)[np.triu_indices(20, 1)].mean()
    assert 0.1 < corr < 0.7
    # fat tails and jumps
    z = (r - r.mean(axis=0)) / r.std(axis=0)
    assert (z**4).mean() > 3.5
    assert np.abs(z).max() > 5
    # volume rises with |return|
    vcorr = np.mean([np.corrcoef(d["volume"][1:, j], ar[:, j])[0, 1] for j in range(20)])
    assert vcorr > 0.2
    # overnight gaps exist: opens differ from the previous close
    assert (d["open"][1:] != d["close"][:-1]).mean() > 0.99


def test_missing_and_late_listing_fractions():
    d = synthetic_ohlcv(1000, 40, 3, missing=0.1)
    frac = np.isnan(d["close"]).mean()
    assert 0.08 < frac < 0.12
    late = synthetic_ohlcv(1000, 8, 3, late_listed=0.25)
    nan = np.isnan(late["close"])
    starts = np.argmax(~nan, axis=0)
    assert (starts > 0).sum() == 2
    assert ((starts == 0) | ((starts >= 100) & (starts <= 900))).all()


def test_kernel_rejects_bad_arguments():
    with pytest.raises(ValueError):
        synthetic_ohlcv(0, 1, 1)
    with pytest.raises(ValueError):
        synthetic_ohlcv(10, 1, -1)
    with pytest.raises(ValueError):
        synthetic_ohlcv(10, 1, 1, missing=1.0)


def test_symbol_names_are_zero_padded():
    assert symbol_names(3) == ["S000", "S001", "S002"]
    assert symbol_names(1000)[-1] == "S999"
    assert symbol_names(1001)[0] == "S0000"


def test_load_synthetic_dataset_shape_calendar_and_chunks():
    ds = load_market_data({"symbols": 20, "bars": 2520, "seed": 7, "chunks": {"time": 504}})
    assert list(ds.data_vars) == list(FIELDS)
    for f in FIELDS:
        assert ds[f].dims == ("time", "symbol")
        assert ds[f].dtype == np.float64
        assert ds[f].chunks == ((504,) * 5, (20,))
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    t = pd.DatetimeIndex(ds["time"].values)
    assert t[0] == pd.Timestamp("2010-01-04")
    assert t.is_monotonic_increasing and t.is_unique
    assert (t.dayofweek < 5).all()
    assert list(ds["symbol"].values[:2]) == ["S000", "S001"]
    assert all(isinstance(s, str) for s in ds["symbol"].values)
    assert ds.attrs["source"] == "synthetic"
    assert ds.attrs["fingerprint"] == fingerprint(ds)
    _check_invariants({f: ds[f].values for f in FIELDS}, 2520, 20)


def test_load_synthetic_names_window_and_gaps():
    spec = {
        "symbols": ["SPY", "QQQ", "IWM"],
        "bars": 300,
        "missing": 0.05,
        "late_listed": 0.34,
        "calendar_start": "2021-01-01",
        "start": "2021-02-01",
        "end": "2021-06-30",
    }
    ds = load_market_data(spec)
    assert list(ds["symbol"].values) == ["SPY", "QQQ", "IWM"]
    t = pd.DatetimeIndex(ds["time"].values)
    assert t[0] == pd.Timestamp("2021-02-01") and t[-1] == pd.Timestamp("2021-06-30")
    assert np.isnan(ds["close"].values).any()
    again = load_market_data(spec)
    assert again.attrs["fingerprint"] == ds.attrs["fingerprint"]
    other = load_market_data({**spec, "seed": 8})
    assert other.attrs["fingerprint"] != ds.attrs["fingerprint"]


def test_calendar_past_datetime64_ns_is_held_in_seconds():
    ds = load_market_data({"symbols": 1, "bars": 100_000})  # 2010-01-04 on: 383 years
    t = ds["time"].values
    assert ds.sizes["time"] == 100_000 and t.dtype == np.dtype("datetime64[s]")
    assert str(t[0]) == "2010-01-04T00:00:00" and str(t[-1]) == "2393-04-23T00:00:00"
    # the market's values do not depend on the dates: the same as on an ns calendar
    near = load_market_data({"symbols": 1, "bars": 100_000, "calendar_start": "1700-01-01"})
    assert near["time"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(ds["close"].values, near["close"].values)
    assert ds.attrs["fingerprint"] != near.attrs["fingerprint"]  # the dates differ


def test_bad_synthetic_settings_are_config_errors():
    with pytest.raises(ConfigError, match=r"^data\.seed: "):
        load_market_data({"seed": -1})
    with pytest.raises(ConfigError, match=r"^data\.calendar_start: "):
        load_market_data({"calendar_start": "someday"})
    with pytest.raises(ConfigError, match=r"^data\.symbols: 'A' is listed twice"):
        load_market_data({"symbols": ["A", "B", "A"]})
