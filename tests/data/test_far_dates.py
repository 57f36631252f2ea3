"""Times past 2262-04-11 (docs/TIME.md): one unit rule (`time_unit`, `as_time`), exact
comparisons across units, and every source reading such dates as datetime64[s]."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr

from admf_dask.data import load_market_data
from admf_dask.data.dates import as_time, bound_on_axis, open_zarr, time_unit
from admf_dask.data.ingest import ingest_csv
from admf_dask.errors import DataError

S = np.dtype("datetime64[s]")
NS = np.dtype("datetime64[ns]")
FAR = np.array(["2262-01-02", "2262-01-03", "2300-01-02T09:30", "2300-01-03"], "datetime64[s]")


def test_the_unit_rule():
    near = np.array(["2020-01-02T09:30:00.5"], "datetime64[us]")
    assert time_unit(near) == "ns" and as_time(near).dtype == NS
    assert as_time(near)[0] == np.datetime64("2020-01-02T09:30:00.500", "ns")
    assert time_unit(FAR) == "s" and as_time(FAR).dtype == S
    assert time_unit(np.array(["1600-01-03"], "datetime64[D]")) == "s"
    assert time_unit(np.empty(0, "datetime64[s]")) == "ns"
    ns = as_time(FAR[:2])  # fits: [ns], exactly as before
    assert ns.dtype == NS and (ns == FAR[:2]).all()
    # a time on the other side of 2262 than its axis: an error, never a wrapped date
    with pytest.raises(DataError, match=r"^orders: time 2300-01-02T09:30:00 does not fit"):
        as_time(FAR, "ns", where="orders")
    with pytest.raises(DataError, match=r"has a fraction of a second"):
        as_time(np.array(["2020-01-02T09:30:00.5"], "datetime64[ms]"), "s")


def test_bounds_compare_exactly_across_units():
    ns = np.array(["2020-01-02", "2262-01-02"], "datetime64[ns]")
    # numpy compares mixed units in the finer one, where 2300 wraps around to 1715
    far = np.datetime64("2300-01-01", "s")
    assert (ns < bound_on_axis(far, ns)).all() and not (ns >= bound_on_axis(far, ns)).any()
    old = np.datetime64("1600-01-01", "s")
    assert (ns >= bound_on_axis(old, ns)).all()
    # a bound between two whole seconds rounds up on a seconds axis
    sec = np.array(["2300-01-02T09:30:00", "2300-01-02T09:30:01"], "datetime64[s]")
    b = bound_on_axis(np.datetime64("2300-01-02T09:30:00.5", "ms"), sec)
    np.testing.assert_array_equal(sec >= b, [False, True])
    assert np.isnat(bound_on_axis(np.array(["NaT"], "datetime64[ns]"), sec)).all()


def _table(times: np.ndarray, symbols=("A", "B")) -> pa.Table:
    n = len(symbols)
    return pa.table(
        {
            "time": pa.array(np.repeat(times, n)),
            "symbol": list(symbols) * len(times),
            "open": [1.0] * (n * len(times)),
            "high": [99.0] * (n * len(times)),
            "low": [0.5] * (n * len(times)),
            "close": np.arange(n * len(times)) + 1.0,
            "volume": [1.0] * (n * len(times)),
        }
    )


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_parquet_past_2262_in_any_unit_and_across_row_groups(tmp_path, unit):
    # the first row group fits datetime64[ns], the second does not: the table is in seconds
    pq.write_table(_table(FAR.astype(f"datetime64[{unit}]")), tmp_path / "p.parquet", 4)
    ds = load_market_data({"source": "parquet", "path": "p.parquet"}, base_dir=tmp_path)
    assert ds["time"].dtype == S
    np.testing.assert_array_equal(ds["time"].values, FAR)
    np.testing.assert_array_equal(ds["close"].values, np.arange(8.0).reshape(4, 2) + 1)
    # data.start / data.end past 2262 (an end that is a date keeps its whole day)
    spec = {"source": "parquet", "path": "p.parquet", "start": "2263-01-01", "end": "2300-01-02"}
    sel = load_market_data(spec, base_dir=tmp_path)
    np.testing.assert_array_equal(sel["time"].values, FAR[2:3])


def test_parquet_text_dates_and_duplicates_past_2262(tmp_path):
    text = _table(FAR).set_column(0, "time", pa.array([str(t) for t in np.repeat(FAR, 2)]))
    pq.write_table(text, tmp_path / "t.parquet", 4)
    ds = load_market_data({"source": "parquet", "path": "t.parquet"}, base_dir=tmp_path)
    np.testing.assert_array_equal(ds["time"].values, FAR)
    table = _table(FAR)
    pq.write_table(pa.concat_tables([table, table.slice(4, 1)]), tmp_path / "d.parquet", 4)
    with pytest.raises(
        DataError, match=r"^d\.parquet rows 5 and 9: duplicate bar for \(2300-01-02T09:30:00, A\)"
    ):
        load_market_data({"source": "parquet", "path": "d.parquet"}, base_dir=tmp_path)


def test_csv_past_2262_eager_and_ingested(tmp_path):
    rows = [
        f"{t},{s},1,9,0.5,{2 + i},10"
        for i, (t, s) in enumerate((str(t), s) for t in FAR for s in ("A", "B"))
    ]
    (tmp_path / "p.csv").write_text("\n".join(["time,symbol,open,high,low,close,volume", *rows]))
    ds = load_market_data({"source": "csv", "path": "p.csv"}, base_dir=tmp_path)
    assert ds["time"].dtype == S
    np.testing.assert_array_equal(ds["time"].values, FAR)
    ingest_csv(tmp_path / "p.csv", tmp_path / "store", block_bytes=64)
    lazy = load_market_data({"source": "parquet", "path": "store"}, base_dir=tmp_path)
    xr.testing.assert_identical(lazy.compute().drop_attrs(), ds.compute().drop_attrs())
    # a selection whose bars all fit datetime64[ns] is a [ns] axis, as any such data
    near = load_market_data(
        {"source": "csv", "path": "p.csv", "end": "2262-01-02"}, base_dir=tmp_path
    )
    assert near["time"].dtype == NS
    np.testing.assert_array_equal(near["time"].values, FAR[:1])
    # an ns file selected from and up to dates beyond datetime64[ns] keeps every bar
    (tmp_path / "n.csv").write_text(
        "\n".join(["time,symbol,open,high,low,close,volume", *rows[:4]])
    )
    spec = {"source": "csv", "path": "n.csv", "start": "1600-01-01", "end": "2400-01-01"}
    whole = load_market_data(spec, base_dir=tmp_path)
    assert whole["time"].dtype == NS
    np.testing.assert_array_equal(whole["time"].values, FAR[:2])


def test_a_fraction_of_a_second_past_2262_is_one_line(tmp_path):
    rows = ["2300-01-02T09:30:00.25,A,1,9,0.5,2,10", "2300-01-03,A,1,9,0.5,2,10"]
    (tmp_path / "f.csv").write_text("\n".join(["time,symbol,open,high,low,close,volume", *rows]))
    with pytest.raises(DataError) as info:
        load_market_data({"source": "csv", "path": "f.csv"}, base_dir=tmp_path)
    assert str(info.value).startswith("f.csv row 2: time 2300-01-02T09:30:00.250000 has a fraction")
    assert "round the bar times to whole seconds" in str(info.value)


def _zarr(times: np.ndarray, path) -> None:
    rng = np.random.default_rng(0)
    close = 10 + rng.random((times.size, 2))
    ds = xr.Dataset(
        {
            "open": (("time", "symbol"), close),
            "high": (("time", "symbol"), close + 1),
            "low": (("time", "symbol"), close - 1),
            "close": (("time", "symbol"), close),
            "volume": (("time", "symbol"), np.ones_like(close)),
        },
        coords={"time": times, "symbol": ["A", "B"]},
    )
    ds.to_zarr(path, mode="w")


def test_zarr_store_past_2262_reads_in_seconds_and_ns_stores_stay_ns(tmp_path):
    shuffled = FAR[[2, 0, 3, 1]]
    _zarr(shuffled, tmp_path / "far.zarr")
    ds = load_market_data({"source": "zarr", "path": "far.zarr"}, base_dir=tmp_path)
    assert ds["time"].dtype == S
    np.testing.assert_array_equal(ds["time"].values, FAR)  # sorted
    raw = open_zarr(tmp_path / "far.zarr")
    np.testing.assert_array_equal(ds["close"].values, raw["close"].sel(time=FAR).values)
    near = np.array(["2020-01-02", "2020-01-03T09:30:00.000000001"], "datetime64[ns]")
    _zarr(near, tmp_path / "near.zarr")
    assert open_zarr(tmp_path / "near.zarr")["time"].dtype == NS
    ds = load_market_data({"source": "zarr", "path": "near.zarr"}, base_dir=tmp_path)
    np.testing.assert_array_equal(ds["time"].values, near)


def test_zarr_bad_bar_past_2262_is_named_by_its_time(tmp_path):
    _zarr(FAR, tmp_path / "bad.zarr")
    store = xr.open_zarr(tmp_path / "bad.zarr", decode_times=False).load()
    store["volume"][2, 1] = np.nan
    store.to_zarr(tmp_path / "bad2.zarr", mode="w")
    with pytest.raises(DataError, match=r"^bad2\.zarr time=2300-01-02T09:30:00 symbol=B: volume"):
        load_market_data({"source": "zarr", "path": "bad2.zarr"}, base_dir=tmp_path).compute()


def test_universe_past_2262(tmp_path):
    days = pd.bdate_range("2262-04-01", periods=10).to_numpy().astype("datetime64[s]")
    pq.write_table(_table(days), tmp_path / "p.parquet")
    pd.DataFrame(
        {"symbol": ["A", "B"], "start": ["2262-04-05", "2262-04-01"], "end": ["", "2262-04-12"]}
    ).to_csv(tmp_path / "u.csv", index=False)
    spec = {"source": "parquet", "path": "p.parquet", "universe": "u.csv"}
    u = load_market_data(spec, base_dir=tmp_path)["universe"].values
    t = pd.DatetimeIndex(days)
    np.testing.assert_array_equal(u[:, 0], t >= pd.Timestamp("2262-04-05"))
    np.testing.assert_array_equal(u[:, 1], t < pd.Timestamp("2262-04-13"))
