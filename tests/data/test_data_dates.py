"""Text dates get one format per column; data.columns maps other column names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admf_dask.data import load_market_data
from admf_dask.errors import ConfigError, DataError

HEADER = "Date,Ticker,Open,High,Low,Close,Volume"


def _write(tmp_path, dates: list[str], name: str = "p.csv", header: str = HEADER) -> dict:
    rows = [f"{d},AAA,10,11,9,10.5,100" for d in dates]
    (tmp_path / name).write_text("\n".join([header, *rows]) + "\n")
    return {"source": "csv", "path": name}


def _days(ds) -> list[str]:
    return list(pd.DatetimeIndex(ds["time"].values).strftime("%Y-%m-%d"))


def _fails(spec: dict, tmp_path, exc=DataError) -> str:
    with pytest.raises(exc) as info:
        load_market_data(spec, base_dir=tmp_path)
    line = info.value.line
    assert "\n" not in line
    return line


# 1-3 and 13-14 March 2000 (Wed-Fri, Mon-Tue): days up to 12 read month-first would be January
MARCH = ["2000-03-01", "2000-03-02", "2000-03-03", "2000-03-13", "2000-03-14"]


def test_day_first_is_read_day_first_for_every_row(tmp_path):
    spec = _write(tmp_path, ["01/03/2000", "02/03/2000", "03/03/2000", "13/03/2000", "14/03/2000"])
    ds = load_market_data(spec, base_dir=tmp_path)
    assert _days(ds) == MARCH
    assert (pd.DatetimeIndex(ds["time"].values).dayofweek < 5).all()


def test_month_first_is_read_month_first_for_every_row(tmp_path):
    spec = _write(tmp_path, ["03/01/2000", "03/02/2000", "03/03/2000", "03/13/2000", "03/14/2000"])
    assert _days(load_market_data(spec, base_dir=tmp_path)) == MARCH


def test_two_digit_years_and_times_keep_one_format(tmp_path):
    spec = _write(tmp_path, ["01.03.00 09:30", "13.03.00 16:00"])
    ds = load_market_data(spec, base_dir=tmp_path)
    assert list(ds["time"].values) == list(
        np.array(["2000-03-01T09:30", "2000-03-13T16:00"], dtype="datetime64[ns]")
    )


def test_ambiguous_throughout_asks_for_date_format(tmp_path):
    spec = _write(tmp_path, ["01/03/2000", "02/03/2000", "03/03/2000"])
    line = _fails(spec, tmp_path)
    assert line.startswith("p.csv row 2: dates are ambiguous"), line
    assert "DD/MM/YYYY" in line and "MM/DD/YYYY" in line
    assert "data.date_format" in line


def test_explicit_date_format_resolves_and_checks_every_row(tmp_path):
    spec = _write(tmp_path, ["01/03/2000", "02/03/2000", "03/03/2000"])
    ds = load_market_data({**spec, "date_format": "%d/%m/%Y"}, base_dir=tmp_path)
    assert _days(ds) == MARCH[:3]
    ds = load_market_data({**spec, "date_format": "%m/%d/%Y"}, base_dir=tmp_path)
    assert _days(ds) == ["2000-01-03", "2000-02-03", "2000-03-03"]
    spec = _write(tmp_path, ["01/03/2000", "2000-03-02"], name="q.csv")
    line = _fails({**spec, "date_format": "%d/%m/%Y"}, tmp_path)
    assert line.startswith("q.csv row 3: time '2000-03-02' does not match data.date_format"), line


def test_explicit_date_format_applies_to_iso_looking_text_too(tmp_path):
    # Arrow would read this column as ISO dates by itself; the format says year-day-month
    spec = _write(tmp_path, ["2000-01-03", "2000-13-03"])
    ds = load_market_data({**spec, "date_format": "%Y-%d-%m"}, base_dir=tmp_path)
    assert _days(ds) == ["2000-03-01", "2000-03-13"]


@pytest.mark.parametrize(
    ("dates", "row", "value"),
    [
        (["01/03/2000", "03/13/2000", "13/03/2000"], 3, "03/13/2000"),  # day- and month-first
        (["13/03/2000", "14/03/2000", "2000-03-15"], 4, "2000-03-15"),  # ISO among day-first
        (["2000-03-01", "2000-03-02", "02/03/2000"], 4, "02/03/2000"),  # day-first among ISO
    ],
)
def test_inconsistent_formats_name_row_and_value(tmp_path, dates, row, value):
    line = _fails(_write(tmp_path, dates), tmp_path)
    assert line.startswith(f"p.csv row {row}: time '{value}' is not a date in the column"), line


def test_iso_with_and_without_times_still_work(tmp_path):
    spec = _write(tmp_path, ["2000-03-01", "2000-03-02 10:30", "2000-03-03T16:00:00"])
    ds = load_market_data(spec, base_dir=tmp_path)
    assert list(ds["time"].values) == list(
        np.array(
            ["2000-03-01T00:00", "2000-03-02T10:30", "2000-03-03T16:00"], dtype="datetime64[ns]"
        )
    )


def test_large_day_first_file(tmp_path):
    days = pd.bdate_range("2000-01-03", periods=2520)
    frame = pd.DataFrame(
        {
            "Date": np.tile(days.strftime("%d/%m/%Y"), 40),
            "Ticker": np.repeat([f"S{i:02d}" for i in range(40)], len(days)),
            "Open": 10.0,
            "High": 11.0,
            "Low": 9.0,
            "Close": 10.5,
            "Volume": 100.0,
        }
    )
    frame.to_csv(tmp_path / "big.csv", index=False)
    ds = load_market_data({"source": "csv", "path": "big.csv"}, base_dir=tmp_path)
    assert ds.sizes == {"time": 2520, "symbol": 40}
    np.testing.assert_array_equal(ds["time"].values, days.to_numpy().astype("datetime64[ns]"))


def test_parquet_text_dates_day_first_and_ambiguous(tmp_path):
    base = {"Ticker": "AAA", "Open": 10.0, "High": 11.0, "Low": 9.0, "Close": 10.5, "Volume": 1.0}
    pd.DataFrame({"Date": ["01/03/2000", "13/03/2000"], **base}).to_parquet(tmp_path / "a.pq")
    ds = load_market_data({"source": "parquet", "path": "a.pq"}, base_dir=tmp_path)
    assert _days(ds) == ["2000-03-01", "2000-03-13"]
    pd.DataFrame({"Date": ["01/03/2000", "02/03/2000"], **base}).to_parquet(tmp_path / "b.pq")
    line = _fails({"source": "parquet", "path": "b.pq"}, tmp_path)
    assert line.startswith("b.pq row 1: dates are ambiguous") and "data.date_format" in line
    ds = load_market_data(
        {"source": "parquet", "path": "b.pq", "date_format": "%d/%m/%Y"}, base_dir=tmp_path
    )
    assert _days(ds) == ["2000-03-01", "2000-03-02"]


def test_column_mapping(tmp_path):
    header = "Datum,Sym,Px Open,Px High,Px Low,Px Last,Qty"
    spec = _write(tmp_path, ["2000-03-01", "2000-03-02"], header=header)
    columns = {
        "time": "Datum",
        "symbol": "sym",  # case-insensitive when not exact
        "open": "Px Open",
        "high": "Px High",
        "low": "Px Low",
        "close": "Px Last",
        "volume": "Qty",
    }
    ds = load_market_data({**spec, "columns": columns}, base_dir=tmp_path)
    assert list(ds["symbol"].values) == ["AAA"]
    assert ds["close"].values.ravel().tolist() == [10.5, 10.5]
    # a partial mapping: the other columns by their usual names
    spec = _write(tmp_path, ["2000-03-01"], name="q.csv", header=HEADER.replace("Date", "When"))
    ds = load_market_data({**spec, "columns": {"time": "When"}}, base_dir=tmp_path)
    assert _days(ds) == ["2000-03-01"]
    pd.read_csv(tmp_path / "p.csv").to_parquet(tmp_path / "p.parquet")
    ds = load_market_data(
        {"source": "parquet", "path": "p.parquet", "columns": columns}, base_dir=tmp_path
    )
    assert _days(ds) == ["2000-03-01", "2000-03-02"]


def test_unknown_mapped_column_is_named(tmp_path):
    spec = _write(tmp_path, ["2000-03-01"])
    line = _fails({**spec, "columns": {"time": "Datum"}}, tmp_path)
    assert line.startswith("p.csv: no column 'Datum' (data.columns.time); found 'Date',"), line


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"columns": {"tiem": "Date"}}, "data.columns: unknown column key 'tiem'"),
        ({"columns": {"time": "Date", "symbol": "date"}}, "both name 'date'"),
        ({"date_format": "dd/mm/yyyy"}, "data.date_format: date_format 'dd/mm/yyyy' is not a"),
    ],
)
def test_bad_mapping_or_format_is_a_config_error(tmp_path, data, needle):
    spec = {**_write(tmp_path, ["2000-03-01"]), **data}
    assert needle in _fails(spec, tmp_path, ConfigError)


def test_date_format_and_columns_only_for_files():
    with pytest.raises(ConfigError, match=r"^data\.date_format: .*csv and parquet"):
        load_market_data({"source": "synthetic", "date_format": "%d/%m/%Y"})


def test_validate_refuses_an_ambiguous_file(tmp_path):
    from _cli import main

    _write(tmp_path, ["01/03/2000", "02/03/2000", "03/03/2000"])
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "data: {source: csv, path: p.csv}\n"
        "features: {f: {kind: sma, window: 2}, s: {kind: sma, window: 3}}\n"
        "strategies: {t: {kind: ma_crossover, fast: f, slow: s}}\n"
    )
    proc = main("validate", str(pipeline))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("error: p.csv row 2: dates are ambiguous"), lines[0]
    assert "data.date_format" in lines[0]
    # quoted: % starts YAML directives
    proc = main("validate", str(pipeline), "--set", "data.date_format='%d/%m/%Y'")
    assert proc.returncode == 0, proc.stderr
    assert "2000-03-01 to 2000-03-03" in proc.stdout
