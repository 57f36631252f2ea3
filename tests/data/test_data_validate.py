"""Every data error is one DataError/ConfigError line naming the file and row, or the key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admf_dask.data import load_market_data
from admf_dask.errors import ConfigError, DataError, InputError


def _fails(spec, tmp_path, kind=DataError) -> str:
    with pytest.raises(kind) as info:
        load_market_data(spec, base_dir=tmp_path)
    line = str(info.value)
    assert "\n" not in line
    assert isinstance(info.value, InputError)
    return line


def test_good_rows_load(write_csv, tmp_path, good_rows):
    ds = load_market_data(write_csv(good_rows), base_dir=tmp_path)
    assert ds.sizes == {"time": 3, "symbol": 2}


def test_missing_columns_named_with_found(write_csv, tmp_path):
    spec = write_csv(["2020-01-02,A,1,2,1.5,10"], header="time,symbol,open,high,close,volume")
    line = _fails(spec, tmp_path)
    assert line.startswith("prices.csv: missing column(s) low; found 'time', 'symbol', 'open'")


def test_unknown_columns_are_errors(write_csv, tmp_path):
    header = "time,symbol,open,high,low,close,volume,adj_close,Vwap"
    line = _fails(write_csv(["2020-01-02,A,1,2,0.5,1.5,10,1,1"], header=header), tmp_path)
    assert line.startswith("prices.csv: unknown column(s) 'adj_close', 'Vwap'")
    assert "remove them" in line


def test_time_and_date_together_are_ambiguous(write_csv, tmp_path):
    header = "time,date,symbol,open,high,low,close,volume"
    line = _fails(write_csv(["2020-01-02,2020-01-02,A,1,2,0.5,1.5,10"], header=header), tmp_path)
    assert line.startswith("prices.csv: columns 'time' and 'date' both give time")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("2020-13-45,AAA,1,2,0.5,1.5,10", "prices.csv row 4: time '2020-13-45' is not a date"),
        ("2020-01-07,AAA,1,abc,0.5,1.5,10", "prices.csv row 4: high 'abc' is not a number"),
        ("2020-01-07,AAA,1,2,0.5,,10", "prices.csv row 4: close empty or not a number"),
        ("2020-01-07,,1,2,0.5,1.5,10", "prices.csv row 4: symbol is empty"),
        ("2020-01-07,AAA,0,2,0.5,1.5,10", "prices.csv row 4: open price 0 is not positive"),
        ("2020-01-07,AAA,1,2,-0.5,1.5,10", "prices.csv row 4: low price -0.5 is not positive"),
        ("2020-01-07,AAA,1,0.4,0.5,0.45,10", "prices.csv row 4: high 0.4 is below low 0.5"),
        ("2020-01-07,AAA,1,2,0.5,2.5,10", "prices.csv row 4: high 2 is below close 2.5"),
        ("2020-01-07,AAA,1,2,1.2,1.5,10", "prices.csv row 4: low 1.2 is above open 1"),
        ("2020-01-07,AAA,1,2,0.5,1.5,-3", "prices.csv row 4: volume -3 is negative"),
        ("2020-01-07,AAA,1,2,0.5,inf,10", "prices.csv row 4: close is inf"),
        (
            "2300-01-07T09:30:00.5,AAA,1,2,0.5,1.5,10",
            "prices.csv row 4: time 2300-01-07T09:30:00.500000 has a fraction of a second",
        ),
        ("2020-01-07,AAA,1,2,0.5,1.5,10,9", "prices.csv row 4: has 8 fields, the header 7"),
    ],
)
def test_bad_value_names_file_and_line(write_csv, tmp_path, bad, message, good_rows):
    rows = [*good_rows[:2], bad, *good_rows[2:]]  # header is line 1: the bad row is line 4
    line = _fails(write_csv(rows), tmp_path)
    assert line.startswith(message), line


def test_row_numbers_count_blank_lines(write_csv, tmp_path, good_rows):
    rows = [good_rows[0], "", "", "2020-01-07,AAA,1,2,1.2,1.5,10"]
    assert _fails(write_csv(rows), tmp_path).startswith("prices.csv row 5: low 1.2 is above")


def test_first_bad_row_in_file_order_is_reported(write_csv, tmp_path, good_rows):
    rows = [*good_rows, "2020-01-08,AAA,1,2,0.5,1.5,-1", "2020-01-09,AAA,-1,2,0.5,1.5,1"]
    assert _fails(write_csv(rows), tmp_path).startswith("prices.csv row 7: volume -1")


def test_duplicate_bars_name_both_rows(write_csv, tmp_path, good_rows):
    rows = [*good_rows, "2020-01-03,BBB,20,21,19,20.5,1", "2020-01-02,AAA,10,11,9,10.5,100"]
    line = _fails(write_csv(rows), tmp_path)
    assert line.startswith("prices.csv rows 5 and 7: duplicate bar for (2020-01-03, BBB)")


def test_empty_table_and_empty_file(write_csv, tmp_path):
    assert _fails(write_csv([]), tmp_path).startswith("prices.csv: has no data rows")
    (tmp_path / "nothing.csv").write_text("")
    line = _fails({"source": "csv", "path": "nothing.csv"}, tmp_path)
    assert line.startswith("nothing.csv: is empty")


def test_path_that_does_not_exist(tmp_path):
    line = _fails({"source": "parquet", "path": "nope/prices.parquet"}, tmp_path)
    assert line.startswith("data.path: 'nope/prices.parquet' does not exist")


def test_parquet_errors_name_file_and_row(tmp_path):
    frame = pd.DataFrame(
        {
            "Date": pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-02"]),
            "Ticker": ["A", "A", "B"],
            "open": [1.0, 1.0, 1.0],
            "high": [2.0, 2.0, 2.0],
            "low": [0.5, 0.5, 0.5],
            "close": [1.5, 1.5, 2.5],
            "volume": [1, 2, 3],
        }
    )
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    line = _fails({"source": "parquet", "path": "p.parquet"}, tmp_path)
    assert line.startswith("p.parquet row 3: high 2 is below close 2.5")
    frame.to_parquet(tmp_path / "parts", partition_cols=["Ticker"])
    line = _fails({"source": "parquet", "path": "parts"}, tmp_path)
    assert line.startswith("parts/Ticker=B/") and " row 1: high 2 is below close 2.5" in line
    frame.assign(extra=1).to_parquet(tmp_path / "x.parquet")
    assert _fails({"source": "parquet", "path": "x.parquet"}, tmp_path).startswith(
        "x.parquet: unknown column(s) 'extra'"
    )
    frame.assign(high=["2", "2", "two"]).to_parquet(tmp_path / "s.parquet")
    assert _fails({"source": "parquet", "path": "s.parquet"}, tmp_path).startswith(
        "s.parquet row 3: high 'two' is not a number"
    )


def test_unknown_symbol_lists_available_and_suggests(write_csv, tmp_path, good_rows):
    spec = {**write_csv(good_rows), "symbols": ["AAA", "BBC"]}
    line = _fails(spec, tmp_path)
    assert line.startswith("data.symbols: unknown symbol(s) 'BBC' (did you mean 'BBB'?)")
    assert "available: AAA, BBB" in line
    line = _fails({"source": "bokeh_stocks", "symbols": ["APPL"]}, tmp_path)
    assert "(did you mean 'AAPL'?); available: AAPL, FB, GOOG, IBM, MSFT" in line


def test_start_after_end_and_empty_window(write_csv, tmp_path, good_rows):
    spec = write_csv(good_rows)
    line = _fails({**spec, "start": "2020-02-01", "end": "2020-01-01"}, tmp_path, ConfigError)
    assert line.startswith("data.start: start 2020-02-01 is after end 2020-01-01")
    line = _fails({**spec, "start": "2021-01-01"}, tmp_path)
    assert line.startswith("data.start: no bars in the selected window")
    assert "2020-01-02 to 2020-01-06" in line
    line = _fails({**spec, "end": "01/32/2020"}, tmp_path, ConfigError)
    assert line.startswith("data.end: '01/32/2020' is not a date")


@pytest.mark.parametrize("size", [0, -5])
def test_non_positive_chunks_are_config_errors(size):
    with pytest.raises(ConfigError) as info:
        load_market_data({"chunks": {"time": size}})
    assert str(info.value).startswith("data.chunks.time: chunk size must be a positive")


def test_config_errors_name_the_key(tmp_path):
    cases = {
        "data.colour: unknown key 'colour'": {"colour": 1},
        "data.chunks.tim: unknown key 'tim' (did you mean 'time'?)": {"chunks": {"tim": 3}},
        "data.symbols: expected int or list[str], got 'AAPL'": {"symbols": "AAPL"},
        "data.symbols[1]: Input should be a valid string": {"symbols": ["A", 2]},
        "data.path: source 'csv' needs a path": {"source": "csv"},
        "data.source: Input should be 'synthetic'": {"source": "sql"},
        "data.symbols: a number of symbols (3) only applies to source synthetic": {
            "source": "bokeh_stocks",
            "symbols": 3,
        },
    }
    for prefix, spec in cases.items():
        line = _fails(spec, tmp_path, ConfigError)
        assert line.startswith(prefix), line


def test_unsorted_input_is_sorted_not_refused(write_csv, tmp_path, good_rows):
    ds = load_market_data(write_csv(good_rows[::-1]), base_dir=tmp_path)
    t = ds["time"].values
    assert (np.diff(t.astype(np.int64)) > 0).all()
