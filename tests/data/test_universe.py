"""Point-in-time universes: the table, the mask in the market data, its errors (README, pipeline file)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admf_dask.data import load_market_data
from admf_dask.errors import DataError

SYN = {"source": "synthetic", "symbols": 5, "bars": 120, "chunks": {"time": 40}}


def _write(tmp_path, text, name="u.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_mask_from_intervals(tmp_path):
    p = _write(
        tmp_path,
        "Symbol,Start,End\nS000,2010-01-04,\nS001,2010-02-01,2010-03-31\nS003,2010-03-01,2010-03-01\n",
    )
    ds = load_market_data({**SYN, "universe": str(p)})
    u = ds["universe"]
    assert u.dtype == bool and u.chunks == ds["close"].chunks
    t = pd.DatetimeIndex(ds["time"].values)
    m = u.values
    assert m[:, 0].all()
    np.testing.assert_array_equal(m[:, 1], (t >= "2010-02-01") & (t <= "2010-03-31"))
    assert not m[:, 2].any() and not m[:, 4].any()  # no row: never in
    np.testing.assert_array_equal(m[:, 3], t == "2010-03-01")  # both ends inclusive
    assert "universe_warning" not in ds.attrs


def test_relative_path_and_parquet(tmp_path):
    df = pd.DataFrame(
        {
            "symbol": ["S000", "S002"],
            "start": pd.to_datetime(["2010-01-04", "2010-02-01"]),
            "end": [pd.NaT, pd.Timestamp("2010-04-01")],
        }
    )
    df.to_parquet(tmp_path / "u.parquet")
    _write(tmp_path, "symbol,start,end\nS000,2010-01-04,\nS002,2010-02-01,2010-04-01\n")
    a = load_market_data({**SYN, "universe": "u.parquet"}, base_dir=tmp_path)
    b = load_market_data({**SYN, "universe": "u.csv"}, base_dir=tmp_path)
    np.testing.assert_array_equal(a["universe"].values, b["universe"].values)
    assert a.attrs["fingerprint"] == b.attrs["fingerprint"]


def test_no_end_column_means_still_listed(tmp_path):
    p = _write(tmp_path, "symbol,start\nS000,2010-03-01\n")
    m = load_market_data({**SYN, "universe": str(p)})["universe"].values
    assert not m[:, 0][:5].any() and m[-1, 0]


def test_fingerprint_includes_the_universe(tmp_path):
    a = _write(tmp_path, "symbol,start,end\nS000,2010-01-04,\n", "a.csv")
    b = _write(tmp_path, "symbol,start,end\nS000,2010-01-05,\n", "b.csv")
    plain = load_market_data(SYN).attrs["fingerprint"]
    fa = load_market_data({**SYN, "universe": str(a)}).attrs["fingerprint"]
    fb = load_market_data({**SYN, "universe": str(b)}).attrs["fingerprint"]
    assert len({plain, fa, fb}) == 3


def test_unknown_symbols_warn(tmp_path):
    p = _write(tmp_path, "symbol,start,end\nS000,2010-01-04,\nNOPE,2010-01-04,\nZED,2011-01-01,\n")
    ds = load_market_data({**SYN, "universe": str(p)})
    assert "NOPE, ZED" in ds.attrs["universe_warning"]
    assert ds["universe"].values[:, 0].all()


def test_bokeh_stocks_with_a_universe(tmp_path):
    p = _write(tmp_path, "symbol,start,end\nAAPL,2005-01-01,2009-12-31\nFB,2012-05-18,\n")
    ds = load_market_data({"source": "bokeh_stocks", "universe": str(p)})
    t = pd.DatetimeIndex(ds["time"].values)
    syms = list(ds["symbol"].values)
    m = ds["universe"].values
    np.testing.assert_array_equal(
        m[:, syms.index("AAPL")], (t >= "2005-01-01") & (t <= "2009-12-31")
    )
    assert not m[:, syms.index("IBM")].any()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "does not exist"),
        ("ticker,start,end\nS000,2010-01-04,\n", "no 'symbol' column"),
        ("symbol,end\nS000,2010-01-04\n", "no 'start' column"),
        ("symbol,start,end\nS000,2010-13-45,\n", "row 1: start '2010-13-45' is not a date"),
        ("symbol,start,end\nS000,2010-01-04,soon\n", "end 'soon' is not a date"),
        ("symbol,start,end\nS000,,\n", "row 1: empty start"),
        ("symbol,start,end\nS000,2010-01-04,\nS001,2011-01-04,2010-01-04\n", "row 2 (S001)"),
        ("symbol,start,end\nS000,2010-01-04,\nS000,2011-01-04,\n", "more than once: 'S000'"),
    ],
)
def test_bad_tables(tmp_path, text, words):
    p = tmp_path / "u.csv" if text is None else _write(tmp_path, text)
    with pytest.raises(DataError) as exc:
        load_market_data({**SYN, "universe": str(p)})
    assert exc.value.where == "data.universe"
    assert words in str(exc.value)
    assert "\n" not in str(exc.value)


def test_synthetic_delisted():
    base = load_market_data({**SYN, "late_listed": 0.4})
    got = load_market_data({**SYN, "late_listed": 0.4, "delisted": 0.4})
    c0, c1 = base["close"].values, got["close"].values
    gone = np.isnan(c1) & ~np.isnan(c0)
    ended = [j for j in range(c1.shape[1]) if gone[:, j].any()]
    assert len(ended) == 2
    for j in ended:  # NaN from the delisting bar to the end, values unchanged before it
        first = int(np.flatnonzero(gone[:, j])[0])
        assert np.isnan(c1[first:, j]).all() and np.isfinite(c0[first:, j]).any()
    keep = ~gone
    np.testing.assert_array_equal(c1[keep], c0[keep])
    assert (
        load_market_data({**SYN, "delisted": 0.0}).attrs["fingerprint"]
        == (load_market_data(SYN).attrs["fingerprint"])
    )


def test_date_end_keeps_that_days_intraday_bars(tmp_path):
    """An ``end`` given as a date keeps every bar of that day (as ``data.end``); an end with a
    time keeps the bars up to it, inclusive; the row bounds and the mask agree."""
    from admf_dask.data.universe import read_universe, universe_mask, universe_rows

    p = _write(
        tmp_path,
        "symbol,start,end\nA,2020-01-02,2020-01-03\nB,2020-01-02 10:00,2020-01-03 11:00\n"
        "C,2020-01-03 14:00,2020-01-03\n",
    )
    table = read_universe(p, "u.csv")
    t = pd.date_range("2020-01-02 09:00", "2020-01-06 16:00", freq="h")
    t = t[(t.hour >= 9) & (t.hour <= 16)]
    mask, unknown = universe_mask(table, t.values, ["A", "B", "C"])
    assert unknown == []
    np.testing.assert_array_equal(mask[:, 0], t < "2020-01-04")  # all of Jan 3's bars
    np.testing.assert_array_equal(mask[:, 1], (t >= "2020-01-02 10:00") & (t <= "2020-01-03 11:00"))
    np.testing.assert_array_equal(mask[:, 2], (t >= "2020-01-03 14:00") & (t < "2020-01-04"))
    assert mask[:, 0].sum() == 16 and mask[:, 2].sum() == 3
    lo, hi, _ = universe_rows(table, t.values, ["A", "B", "C"])
    rows = np.arange(len(t))[:, None]
    np.testing.assert_array_equal((rows >= lo) & (rows < hi), mask)
