"""Each source reads into the same (time, symbol) Dataset: csv, parquet, zarr, bokeh_stocks."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from admf_dask.data import FIELDS, load_market_data
from admf_dask.data.sources import bokeh_stocks_file
from admf_dask.errors import DataError


def _frame(ds: xr.Dataset) -> pd.DataFrame:
    return (
        ds.to_dataframe().dropna().reset_index().sort_values(["time", "symbol"], ignore_index=True)
    )


def test_csv_aliases_case_unsorted_rows_and_missing_bar(tmp_path):
    (tmp_path / "p.csv").write_text(
        " Date ,TICKER,Open,HIGH,low,Close,Volume\n"
        "2020-01-06,AAA,11.5,12,11,11.75,120\n"
        "2020-01-03,BBB,20.5,21,20,20.25,250\n"
        "2020-01-02,AAA,10,11,9,10.5,100\n"
        "2020-01-03,AAA,10.5,12,10,11.5,150\n"
        "2020-01-02,BBB,20,21,19,20.5,200\n"
    )
    ds = load_market_data(
        {"source": "csv", "path": "p.csv", "chunks": {"time": 2}}, base_dir=tmp_path
    )
    assert list(ds["symbol"].values) == ["AAA", "BBB"]
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%m-%d")) == [
        "01-02",
        "01-03",
        "01-06",
    ]
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(ds["close"].sel(symbol="AAA").values, [10.5, 11.5, 11.75])
    assert ds["volume"].sel(symbol="BBB").values[1] == 250
    for f in FIELDS:  # BBB has no bar on 01-06: NaN in all five
        assert ds[f].dtype == np.float64
        assert np.isnan(ds[f].sel(symbol="BBB").values[2])
        assert ds[f].chunks == ((2, 1), (2,))
    assert ds.attrs["source"] == "csv"
    assert ds.attrs["path"] == str(tmp_path / "p.csv")


def test_csv_gzip_blank_lines_timezones_and_mixed_formats(tmp_path):
    text = (
        "time,symbol,open,high,low,close,volume\n"
        "2020-01-02T15:00:00+01:00,AAA,10,11,9,10.5,100\n"
        "\n"
        "2020-01-03 14:00:00Z,AAA,10.5,12,10,11.5,150\n"
    )
    with gzip.open(tmp_path / "p.csv.gz", "wt") as f:
        f.write(text)
    ds = load_market_data({"source": "csv", "path": "p.csv.gz"}, base_dir=tmp_path)
    assert list(ds["time"].values) == list(
        np.array(["2020-01-02T14:00", "2020-01-03T14:00"], dtype="datetime64[ns]")
    )


def test_csv_numeric_tickers_keep_leading_zeros(tmp_path):
    (tmp_path / "p.csv").write_text(
        "date,ticker,open,high,low,close,volume\n2020-01-02,0700,1,2,0.5,1.5,10\n"
    )
    ds = load_market_data({"source": "csv", "path": "p.csv"}, base_dir=tmp_path)
    assert list(ds["symbol"].values) == ["0700"]


@pytest.fixture(scope="module")
def bokeh() -> xr.Dataset:
    return load_market_data({"source": "bokeh_stocks"})


def test_parquet_file_and_folder_dataset_match_csv(tmp_path, bokeh):
    frame = _frame(bokeh)
    frame.to_parquet(tmp_path / "one.parquet")
    frame.to_parquet(tmp_path / "parts", partition_cols=["symbol"])
    frame.to_csv(tmp_path / "all.csv", index=False)
    loaded = [
        load_market_data({"source": "parquet", "path": "one.parquet"}, base_dir=tmp_path),
        load_market_data({"source": "parquet", "path": "parts"}, base_dir=tmp_path),
        load_market_data({"source": "csv", "path": "all.csv"}, base_dir=tmp_path),
    ]
    for ds in loaded:
        xr.testing.assert_allclose(ds.compute(), bokeh.compute(), rtol=1e-12)
    assert loaded[0].attrs["fingerprint"] == loaded[1].attrs["fingerprint"]


def test_parquet_pandas_index_column_is_ignored(tmp_path):
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(["2020-01-02"]),
            "symbol": ["A"],
            "open": [1.0],
            "high": [2.0],
            "low": [0.5],
            "close": [1.5],
            "volume": [10],
        },
        index=pd.Index([7]),
    )
    frame.to_parquet(tmp_path / "p.parquet")
    ds = load_market_data({"source": "parquet", "path": "p.parquet"}, base_dir=tmp_path)
    assert ds.sizes == {"time": 1, "symbol": 1}


def _to_zarr(ds: xr.Dataset, path) -> None:
    with warnings.catch_warnings():  # zarr v3 notes on consolidated metadata
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w")


def test_zarr_round_trip_sorts_time_and_keeps_gaps(tmp_path, bokeh):
    plain = bokeh.compute()
    plain.attrs = {}
    shuffled = plain.isel(time=np.random.default_rng(0).permutation(plain.sizes["time"]))
    _to_zarr(shuffled.transpose("symbol", "time"), tmp_path / "s.zarr")
    ds = load_market_data(
        {"source": "zarr", "path": "s.zarr", "chunks": {"time": 1000}}, base_dir=tmp_path
    )
    xr.testing.assert_identical(ds.compute().drop_attrs(), plain)
    assert ds["close"].chunks == ((1000, 1000, 1000, 270), (5,))


def test_bokeh_stocks_symbols_and_listing_gaps(bokeh):
    assert list(bokeh["symbol"].values) == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    t = pd.DatetimeIndex(bokeh["time"].values)
    assert t[0] == pd.Timestamp("2000-03-01") and t[-1] == pd.Timestamp("2013-03-01")
    close = bokeh["close"].to_pandas()
    assert close["GOOG"].first_valid_index() == pd.Timestamp("2004-08-19")
    assert close["FB"].first_valid_index() == pd.Timestamp("2012-05-18")
    for f in FIELDS:
        v = bokeh[f].to_pandas()
        assert v.loc[:"2004-08-18", "GOOG"].isna().all()
        assert v.loc[:"2012-05-17", "FB"].isna().all()
        assert v.loc["2012-05-18", "FB"] > 0
        assert v[["AAPL", "IBM", "MSFT"]].notna().all().all()


def test_bokeh_adjusted_prices_are_continuous_across_aapl_splits(bokeh):
    raw = load_market_data({"source": "bokeh_stocks", "adjust": False, "symbols": ["AAPL"]})
    adj = np.log(bokeh["close"].sel(symbol="AAPL").to_pandas()).diff()
    unadj = np.log(raw["close"].sel(symbol="AAPL").to_pandas()).diff()
    for split in ("2000-06-21", "2005-02-28"):  # AAPL 2:1 splits
        assert unadj[split] < np.log(0.55), "the raw series shows the split"
        assert abs(adj[split]) < 0.1, "the adjusted series does not"
        # the open gaps over the split too; adjusted it does not
        o_adj = bokeh["open"].sel(symbol="AAPL").to_pandas()
        assert (
            abs(np.log(o_adj[split] / bokeh["close"].sel(symbol="AAPL").to_pandas().shift()[split]))
            < 0.1
        )
    # dollar volume is unchanged by the adjustment
    dv_adj = (bokeh["close"] * bokeh["volume"]).sel(symbol="AAPL").values
    dv_raw = (raw["close"] * raw["volume"]).sel(symbol="AAPL").values
    np.testing.assert_allclose(dv_adj, dv_raw, rtol=1e-12)
    # adjusted close is the file's Adj Close
    first = pd.read_csv(bokeh_stocks_file(), nrows=1)
    assert bokeh["close"].sel(symbol="AAPL").values[0] == pytest.approx(first["Adj Close"][0])
    assert raw["close"].values[0, 0] == first["Close"][0]
    for f in ("open", "high", "low"):
        ratio = bokeh[f].sel(symbol="AAPL").values / raw[f].sel(symbol="AAPL").values
        np.testing.assert_allclose(
            ratio, bokeh["close"].sel(symbol="AAPL").values / raw["close"].values[:, 0]
        )


def test_symbol_selection_keeps_order_and_calendar_of_kept_rows():
    ds = load_market_data({"source": "bokeh_stocks", "symbols": ["MSFT", "FB"]})
    assert list(ds["symbol"].values) == ["MSFT", "FB"]
    assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2000-03-01")
    fb = load_market_data({"source": "bokeh_stocks", "symbols": ["FB"]})
    assert pd.Timestamp(fb["time"].values[0]) == pd.Timestamp("2012-05-18")
    assert not np.isnan(fb["close"].values).any()


def test_start_end_filter_is_inclusive(bokeh):
    ds = load_market_data({"source": "bokeh_stocks", "start": "2010-01-04", "end": "2010-12-31"})
    t = pd.DatetimeIndex(ds["time"].values)
    assert t[0] == pd.Timestamp("2010-01-04") and t[-1] == pd.Timestamp("2010-12-31")
    np.testing.assert_array_equal(
        ds["close"].values, bokeh["close"].sel(time=slice("2010-01-04", "2010-12-31")).values
    )


def test_zarr_partial_nan_bar_is_an_error(tmp_path, bokeh):
    plain = bokeh.isel(time=slice(0, 10)).compute()
    plain.attrs = {}
    plain["volume"][3, 0] = np.nan
    _to_zarr(plain, tmp_path / "p.zarr")
    with pytest.raises(
        DataError, match=r"^p\.zarr time=2000-03-06T00:00:00 symbol=AAPL: volume missing"
    ):
        load_market_data({"source": "zarr", "path": "p.zarr"}, base_dir=tmp_path)


def test_zarr_missing_and_extra_variables_and_duplicate_times(tmp_path, bokeh):
    plain = bokeh.isel(time=slice(0, 10)).compute()
    plain.attrs = {}
    _to_zarr(plain.drop_vars("volume"), tmp_path / "a.zarr")
    with pytest.raises(
        DataError, match=r"^a\.zarr: missing variable\(s\) volume; found close, high, low, open"
    ):
        load_market_data({"source": "zarr", "path": "a.zarr"}, base_dir=tmp_path)
    _to_zarr(plain.assign(vwap=plain["close"]), tmp_path / "b.zarr")
    with pytest.raises(DataError, match=r"^b\.zarr: unknown variable\(s\) vwap"):
        load_market_data({"source": "zarr", "path": "b.zarr"}, base_dir=tmp_path)
    dup = plain.assign_coords(time=np.r_[plain["time"].values[:9], plain["time"].values[8:9]])
    _to_zarr(dup, tmp_path / "c.zarr")
    with pytest.raises(DataError, match=r"^c\.zarr: time 2000-03-13.* appears twice"):
        load_market_data({"source": "zarr", "path": "c.zarr"}, base_dir=tmp_path)
    (tmp_path / "d.zarr").mkdir()
    with pytest.raises(DataError, match=r"^d\.zarr: is not a readable Zarr store"):
        load_market_data({"source": "zarr", "path": "d.zarr"}, base_dir=tmp_path)
