"""Parquet read per row group in tasks: same Dataset and same first error as the eager reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from admf_dask.data import load_market_data
from admf_dask.data.load import _pivot
from admf_dask.data.sources import read_parquet
from admf_dask.errors import DataError


def _frame(n_time: int = 30, symbols: tuple[str, ...] = ("AAA", "BBB", "CCC")) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for k, s in enumerate(symbols):
        times = pd.bdate_range("2021-01-04", periods=n_time)[k::1]  # later listings
        close = 10 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, times.size)))
        rows.append(
            pd.DataFrame(
                {
                    "time": times,
                    "symbol": s,
                    "open": close * 0.99,
                    "high": close * 1.02,
                    "low": close * 0.97,
                    "close": close,
                    "volume": rng.integers(100, 1000, times.size).astype(float),
                }
            )
        )
    return pd.concat(rows).sort_values(["time", "symbol"], kind="stable").reset_index(drop=True)


def _eager(path, label, **kw) -> xr.Dataset:
    dense = _pivot(read_parquet(path, label), kw.get("symbols"), None, None)
    return xr.Dataset(
        {f: (("time", "symbol"), v) for f, v in dense.values.items()},
        coords={"time": dense.time, "symbol": np.array(dense.symbols, dtype=object)},
    )


def _eager_error(path, label) -> str:
    with pytest.raises(DataError) as info:
        read_parquet(path, label)
    return str(info.value)


def _lazy_error(tmp_path, name) -> str:
    with pytest.raises(DataError) as info:
        load_market_data({"source": "parquet", "path": name}, base_dir=tmp_path)
    return str(info.value)


def _no_arrays_in_graph(ds: xr.Dataset, max_size: int) -> None:
    """The graph holds coordinates of one chunk at most, never the values."""
    graph = ds["close"].data.__dask_graph__()
    for task in dict(graph).values():
        stack = [task]
        while stack:
            x = stack.pop()
            if isinstance(x, np.ndarray):
                assert x.size <= max_size
            elif isinstance(x, tuple | list):
                stack.extend(x)


def test_row_groups_and_partitions_read_in_tasks_match_eager(tmp_path):
    frame = _frame()
    frame.to_parquet(tmp_path / "rg.parquet", row_group_size=7)  # boundaries split a day
    frame.to_parquet(tmp_path / "parts", partition_cols=["symbol"], row_group_size=5)
    frame.assign(day=frame["time"].dt.strftime("%Y-%m")).to_parquet(
        tmp_path / "bydate.parquet", row_group_size=11
    )
    want = _eager(tmp_path / "rg.parquet", "rg.parquet")
    for name in ("rg.parquet", "parts"):
        ds = load_market_data(
            {"source": "parquet", "path": name, "chunks": {"time": 4}}, base_dir=tmp_path
        )
        assert ds["close"].chunks[0][0] == 4
        _no_arrays_in_graph(ds, 4)
        xr.testing.assert_identical(ds[list(want.data_vars)].compute().drop_attrs(), want)
    one = load_market_data({"source": "parquet", "path": "rg.parquet"}, base_dir=tmp_path)
    parts = load_market_data({"source": "parquet", "path": "parts"}, base_dir=tmp_path)
    assert one.attrs["fingerprint"] == parts.attrs["fingerprint"]
    frame.iloc[::-1].to_parquet(tmp_path / "rev.parquet", row_group_size=9)
    rev = load_market_data({"source": "parquet", "path": "rev.parquet"}, base_dir=tmp_path)
    assert rev.attrs["fingerprint"] == one.attrs["fingerprint"]
    changed = frame.copy()
    changed.loc[5, "volume"] += 1
    changed.to_parquet(tmp_path / "changed.parquet")
    other = load_market_data({"source": "parquet", "path": "changed.parquet"}, base_dir=tmp_path)
    assert other.attrs["fingerprint"] != one.attrs["fingerprint"]


def test_hive_partition_by_date(tmp_path):
    frame = _frame(n_time=12)
    frame.assign(month=frame["time"].dt.strftime("%Y-%m")).to_parquet(
        tmp_path / "months", partition_cols=["month"]
    )
    frame.to_parquet(tmp_path / "flat.parquet")
    ds = load_market_data(
        {"source": "parquet", "path": "flat.parquet", "chunks": {"time": 5}}, base_dir=tmp_path
    )
    # a partition key the table does not know is an unknown column, as in the eager reader
    assert _lazy_error(tmp_path, "months") == _eager_error(tmp_path / "months", "months")
    day = frame.assign(time=frame["time"].dt.strftime("%Y-%m-%d"))
    day.to_parquet(tmp_path / "days", partition_cols=["time"])
    by_day = load_market_data(
        {"source": "parquet", "path": "days", "chunks": {"time": 5}}, base_dir=tmp_path
    )
    xr.testing.assert_identical(by_day.compute().drop_attrs(), ds.compute().drop_attrs())


def test_symbol_selection_and_window_use_the_kept_bars_calendar(tmp_path):
    frame = _frame()
    frame = frame[~((frame.symbol == "AAA") & (frame.index % 4 == 0))]
    frame.to_parquet(tmp_path / "p.parquet", row_group_size=6)
    frame.to_csv(tmp_path / "p.csv", index=False)
    for spec in (
        {"symbols": ["AAA"]},
        {"symbols": ["CCC", "AAA"], "start": "2021-01-08", "end": "2021-01-20"},
    ):
        lazy = load_market_data(
            {"source": "parquet", "path": "p.parquet", **spec}, base_dir=tmp_path
        )
        eager = load_market_data({"source": "csv", "path": "p.csv", **spec}, base_dir=tmp_path)
        xr.testing.assert_identical(lazy.compute().drop_attrs(), eager.compute().drop_attrs())
    with pytest.raises(DataError, match=r"^data\.symbols: unknown symbol\(s\) 'ZZZ'"):
        load_market_data(
            {"source": "parquet", "path": "p.parquet", "symbols": ["ZZZ"]}, base_dir=tmp_path
        )
    with pytest.raises(DataError, match=r"^data\.start: no bars in the selected window"):
        load_market_data(
            {"source": "parquet", "path": "p.parquet", "start": "2030-01-01"}, base_dir=tmp_path
        )


def _bad(frame: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    out = frame.copy()
    for k, v in values.items():
        if k in ("high", "low", "open", "close", "volume") and isinstance(v, str):
            out[k] = out[k].astype(str)  # a text column, as a spreadsheet export may give
        out.loc[row, k] = v
    return out


@pytest.mark.parametrize(
    "damage",
    [
        # a later row group's earlier check wins over an earlier row group's later check
        [(3, {"high": 0.1}), (40, {"symbol": ""})],
        [(3, {"volume": -1.0}), (50, {"time": pd.Timestamp("1500-01-01")})],
        [(60, {"close": float("inf")}), (61, {"open": 0.0})],
        [(2, {"low": "x"}), (70, {"high": "y"})],  # the first field, not the first row
        [(25, {"time": pd.NaT})],
        [],  # a duplicate across row groups (added below)
    ],
)
def test_first_error_of_the_table_as_the_eager_reader(tmp_path, damage):
    frame = _frame()
    for row, values in damage:
        frame = _bad(frame, row, **values)
    if not damage:
        frame.loc[20, ["time", "symbol"]] = frame.loc[8, ["time", "symbol"]].to_numpy()
        frame.loc[40, ["time", "symbol"]] = frame.loc[8, ["time", "symbol"]].to_numpy()
    frame.to_parquet(tmp_path / "bad.parquet", row_group_size=8)
    want = _eager_error(tmp_path / "bad.parquet", "bad.parquet")
    assert _lazy_error(tmp_path, "bad.parquet") == want
    frame.to_parquet(tmp_path / "bad_one.parquet")  # one row group: the same line
    assert _lazy_error(tmp_path, "bad_one.parquet") == want.replace(
        "bad.parquet", "bad_one.parquet"
    )


def test_duplicates_across_partition_files_name_both_files(tmp_path):
    frame = _frame(n_time=10)
    (tmp_path / "d").mkdir()
    frame.iloc[:20].to_parquet(tmp_path / "d" / "a.parquet")
    frame.iloc[15:].to_parquet(tmp_path / "d" / "b.parquet")  # rows 15-19 twice
    line = _lazy_error(tmp_path, "d")
    assert line == _eager_error(tmp_path / "d", "d")
    assert line.startswith("d/a.parquet row 16 and d/b.parquet row 1: duplicate bar for")


def test_text_dates_are_inferred_from_the_whole_column(tmp_path):
    frame = _frame(n_time=15)
    text = frame.assign(time=frame["time"].dt.strftime("%d/%m/%Y"))
    text.to_parquet(tmp_path / "t.parquet", row_group_size=4)
    frame.to_parquet(tmp_path / "n.parquet")
    a = load_market_data({"source": "parquet", "path": "t.parquet"}, base_dir=tmp_path)
    b = load_market_data({"source": "parquet", "path": "n.parquet"}, base_dir=tmp_path)
    xr.testing.assert_identical(a.compute().drop_attrs(), b.compute().drop_attrs())
    assert a.attrs["fingerprint"] == b.attrs["fingerprint"]
    text.loc[33, "time"] = "2021-02-01"
    text.to_parquet(tmp_path / "mixed.parquet", row_group_size=4)
    assert _lazy_error(tmp_path, "mixed.parquet") == _eager_error(
        tmp_path / "mixed.parquet", "mixed.parquet"
    )


class _Tasks:
    """The keys of the tasks the local scheduler runs (a dask callback)."""

    def __init__(self) -> None:
        from dask.callbacks import Callback

        self.keys: list = []
        self.callback = Callback(pretask=lambda key, dsk, state: self.keys.append(key))

    def checks(self) -> list:
        return [k for k in self.keys if str(k).startswith(("_check_part", "_cross_duplicate"))]

    def __enter__(self):
        self.callback.__enter__()
        return self

    def __exit__(self, *exc):
        self.callback.__exit__(*exc)


def _read_store(tmp_path) -> tuple[xr.Dataset, list]:
    with _Tasks() as tasks:
        ds = load_market_data({"source": "parquet", "path": "store"}, base_dir=tmp_path)
    return ds, tasks.checks()


def test_an_ingested_store_is_checked_once_until_it_changes(tmp_path):
    import os
    import shutil

    import pyarrow.parquet as pq

    from admf_dask.data.ingest import ingest_csv
    from admf_dask.data.parquet import CHECKED

    frame = _frame(40)
    frame["time"] = frame["time"].dt.strftime("%Y-%m-%d")
    frame.to_csv(tmp_path / "p.csv", index=False)
    store = tmp_path / "store"
    ingest_csv(tmp_path / "p.csv", store, block_bytes=600)  # many row groups
    parts = sorted(store.glob("*.parquet"))
    assert len(parts) > 3
    first, checks = _read_store(tmp_path)
    assert len(checks) >= len(parts) and (store / CHECKED).is_file()
    again, checks = _read_store(tmp_path)
    assert checks == []  # the kept check: no task reads the row groups before the values
    xr.testing.assert_identical(again.compute(), first.compute())
    assert again.attrs == first.attrs

    moved = tmp_path / "moved"  # a renamed store (a disk cache entry is) keeps its check
    shutil.copytree(store, moved)
    for p in store.iterdir():
        os.utime(moved / p.name, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns))
    with _Tasks() as tasks:
        load_market_data({"source": "parquet", "path": "moved"}, base_dir=tmp_path)
    assert tasks.checks() == []

    st = parts[1].stat()  # the same bytes, touched: checked again, and kept again
    os.utime(parts[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched, checks = _read_store(tmp_path)
    assert len(checks) >= len(parts)
    xr.testing.assert_identical(touched.compute(), first.compute())
    assert _read_store(tmp_path)[1] == []

    table = pq.read_table(parts[2])  # a bad bar written into the store: its error, every read
    low = table.column("low").to_pylist()
    low[1] = -1.0
    pq.write_table(table.set_column(table.schema.get_field_index("low"), "low", [low]), parts[2])
    fresh = tmp_path / "fresh"  # the same store, never read: the error of a first read
    shutil.copytree(store, fresh)
    (fresh / CHECKED).unlink()
    with pytest.raises(DataError) as expected:
        load_market_data({"source": "parquet", "path": "fresh"}, base_dir=tmp_path)
    for _ in range(2):
        with pytest.raises(DataError) as got:
            _read_store(tmp_path)
        assert str(got.value) == str(expected.value)
        assert "p.csv" in str(got.value)  # names the CSV's row


def test_a_plain_parquet_folder_is_not_written_to(tmp_path):
    from admf_dask.data.parquet import CHECKED

    folder = tmp_path / "store"
    folder.mkdir()
    _frame().to_parquet(folder / "a.parquet", row_group_size=20)
    for _ in range(2):
        _, checks = _read_store(tmp_path)
        assert checks
    assert not (folder / CHECKED).exists()
