"""``admf-dask ingest``: a CSV converted in blocks into a Parquet store, same data, same errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import xarray as xr

from admf_dask.cli import main
from admf_dask.data import load_market_data
from admf_dask.data.ingest import MANIFEST, ingest_csv
from admf_dask.errors import DataError

HEADER = "Date,Ticker,open,high,low,close,volume"


def _rows(n_days: int = 14) -> list[str]:
    rows = []
    for d in range(n_days):
        day = f"{d + 1:02d}/03/2021"  # day-first: days above 12 decide the format
        for k, sym in enumerate(("AAA", "BBB", "CCC")):
            if sym == "CCC" and d < 3:
                continue  # listed later
            p = 10 * (k + 1) + d * 0.25
            rows.append(f"{day},{sym},{p},{p + 1},{p - 1},{p + 0.5},{100 + d}")
    return rows


def _write(path: Path, rows: list[str], header: str = HEADER) -> None:
    text = "\n".join([header, *rows]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".admf-ingest"))


def test_store_reads_as_the_csv_in_any_block_size(tmp_path):
    rows = _rows()
    rows.insert(7, "")  # a blank line: later rows keep their line numbers
    _write(tmp_path / "p.csv.gz", rows)
    _write(tmp_path / "p.csv", rows)
    eager = load_market_data({"source": "csv", "path": "p.csv"}, base_dir=tmp_path)
    for block in (64, 1 << 20):  # many row groups, one
        m = ingest_csv(tmp_path / "p.csv.gz", tmp_path / "store", block_bytes=block)
        assert m["rows"] == len(rows) - 1 and m["symbols"] == 3
        lazy = load_market_data(
            {"source": "parquet", "path": "store", "chunks": {"time": 5}}, base_dir=tmp_path
        )
        xr.testing.assert_identical(lazy.compute().drop_attrs(), eager.compute().drop_attrs())
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("row", "bad"),
    [
        (5, "2021-13-45,AAA,1,2,0.5,1.5,10"),  # not a date in the column's format
        (30, "13/03/2021,AAA,1,abc,0.5,1.5,10"),
        (30, "13/03/2021,,1,2,0.5,1.5,10"),
        (20, "13/03/2021,AAA,1,0.4,0.5,0.45,10"),
        (25, "13/03/2021,AAA,1,2,0.5,inf,10"),
        (10, "01/03/2021,AAA,10,11,9,10.5,100"),  # a duplicate of row 2 in another block
        (12, "x,y,z"),  # a malformed row
    ],
)
def test_bad_rows_give_the_csv_readers_line_and_nothing_is_written(tmp_path, row, bad):
    rows = _rows()
    rows.insert(row, bad)
    rows.insert(33, "20/03/2021,BBB,1,2,0.5,1.6,-3")  # a later, lesser check fails too
    _write(tmp_path / "p.csv", rows)
    with pytest.raises(DataError) as eager:
        load_market_data({"source": "csv", "path": "p.csv"}, base_dir=tmp_path)
    with pytest.raises(DataError) as ingested:
        ingest_csv(tmp_path / "p.csv", tmp_path / "store", label="p.csv", block_bytes=128)
    assert str(ingested.value) == str(eager.value)
    assert not (tmp_path / "store").exists()
    assert _leftovers(tmp_path) == []


def test_store_errors_name_the_csv_rows_and_foreign_folders_are_kept(tmp_path):
    _write(tmp_path / "p.csv", _rows())
    ingest_csv(tmp_path / "p.csv", tmp_path / "store", label="p.csv", block_bytes=128)
    assert (tmp_path / "store" / MANIFEST).is_file()
    ingest_csv(tmp_path / "p.csv", tmp_path / "store", label="p.csv")  # its own: replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="mine: exists and was not written by admf-dask ingest"):
        ingest_csv(tmp_path / "p.csv", tmp_path / "mine")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "x"
    with pytest.raises(DataError, match=r"^data\.symbols: unknown symbol\(s\) 'ZZZ'"):
        load_market_data(
            {"source": "parquet", "path": "store", "symbols": ["ZZZ"]}, base_dir=tmp_path
        )


def test_cli_ingest_exit_codes(tmp_path, capsys):
    _write(tmp_path / "p.csv", _rows(), header="day,sym,open,high,low,close,volume")
    out = tmp_path / "store"
    args = ["ingest", str(tmp_path / "p.csv"), str(out), "--columns", "time=day,symbol=sym"]
    assert main(args) == 0
    assert ": 39 bars, 3 symbols, 14 times, 2021-03-01" in capsys.readouterr().out
    assert main([*args[:3], "--columns", "tim=day"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --columns: unknown column key 'tim'") and err.count("\n") == 1
    assert main([*args, "--date-format", "%m/%d/%Y"]) == 2
    err = capsys.readouterr().err
    assert "does not match data.date_format '%m/%d/%Y'" in err and err.count("\n") == 1
    assert (out / MANIFEST).is_file()  # the failed runs left the store as it was


def test_csv_source_converts_once_into_the_disk_cache(tmp_path, monkeypatch):
    from admf_dask.config.models import CacheConfig
    from admf_dask.data import ingest

    monkeypatch.setattr(ingest, "AUTO_MIN_BYTES", 0)  # every CSV is "big"
    _write(tmp_path / "p.csv", _rows())
    spec = {"source": "csv", "path": "p.csv", "chunks": {"time": 4}}
    eager = load_market_data(spec, base_dir=tmp_path)
    cache = CacheConfig(dir=str(tmp_path / "cache"))
    market = tmp_path / "cache" / "market"

    def entries() -> list[Path]:
        return sorted(p for p in market.iterdir() if not p.name.startswith("."))

    first = load_market_data(spec, base_dir=tmp_path, cache=cache)
    (entry,) = entries()
    stamp = (entry / "store" / MANIFEST).stat().st_mtime_ns
    second = load_market_data(spec, base_dir=tmp_path, cache=cache)
    assert entries() == [entry] and (entry / "store" / MANIFEST).stat().st_mtime_ns == stamp
    for ds in (first, second):
        assert ds["close"].chunks[0][0] == 4
        xr.testing.assert_identical(ds.compute().drop_attrs(), eager.compute().drop_attrs())
    rows = _rows()
    rows[0] = rows[0].replace(",100", ",999")  # another file: converted again
    _write(tmp_path / "p.csv", rows)
    changed = load_market_data(spec, base_dir=tmp_path, cache=cache)
    assert len(entries()) == 2 and float(changed["volume"][0, 0]) == 999.0
    off = CacheConfig(dir=str(tmp_path / "off"), enabled=False)  # parsed on the client
    xr.testing.assert_identical(
        load_market_data(spec, base_dir=tmp_path, cache=off).compute().drop_attrs(),
        changed.compute().drop_attrs(),
    )
    assert not (tmp_path / "off").exists()
    rows.insert(20, "13/03/2021,AAA,1,0.4,0.5,0.45,10")
    _write(tmp_path / "p.csv", rows)
    with pytest.raises(DataError) as eager_error:
        load_market_data(spec, base_dir=tmp_path)
    with pytest.raises(DataError) as cached_error:
        load_market_data(spec, base_dir=tmp_path, cache=cache)
    assert str(cached_error.value) == str(eager_error.value)
    assert len(entries()) == 2  # nothing cached for the bad file


def _entries(market: Path) -> list[Path]:
    return sorted(p for p in market.iterdir() if not p.name.startswith("."))


def test_csv_url_converts_once_and_a_hit_downloads_nothing(tmp_path, monkeypatch):
    import fsspec

    from admf_dask.config.models import CacheConfig
    from admf_dask.dasktools import fs as admf_fs
    from admf_dask.data import ingest

    monkeypatch.setattr(ingest, "AUTO_MIN_BYTES", 0)  # every CSV is "big"
    store = fsspec.filesystem("memory")
    url = f"memory://admf-ingest-test/{tmp_path.name}/p.csv"

    def put(rows: list[str]) -> None:
        with store.open(url, "w") as f:
            f.write("\n".join([HEADER, *rows]) + "\n")

    put(_rows())
    spec = {"source": "csv", "path": url, "chunks": {"time": 4}}
    cache = CacheConfig(dir=str(tmp_path / "cache"))
    market = tmp_path / "cache" / "market"
    try:
        eager = load_market_data(spec)  # no cache: downloaded and parsed on the client
        copies = len(admf_fs._INPUT_COPIES)
        first = load_market_data(spec, cache=cache)  # a miss: downloaded once, converted
        assert len(admf_fs._INPUT_COPIES) == copies + 1
        (entry,) = _entries(market)
        second = load_market_data(spec, cache=cache)  # a hit: the store is not read again
        assert len(admf_fs._INPUT_COPIES) == copies + 1 and _entries(market) == [entry]
        for ds in (first, second):
            assert ds["close"].chunks[0][0] == 4
            xr.testing.assert_identical(ds.compute().drop_attrs(), eager.compute().drop_attrs())
        rows = _rows()
        rows[0] = rows[0].replace(",100", ",999")  # the file changed on the store: converted again
        put(rows)
        changed = load_market_data(spec, cache=cache)
        assert len(_entries(market)) == 2 and float(changed["volume"][0, 0]) == 999.0
    finally:
        store.rm(f"memory://admf-ingest-test/{tmp_path.name}", recursive=True)
