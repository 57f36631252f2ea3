"""Replayed signals read in tasks: the eager reader's values, errors and warnings; a small graph."""

from __future__ import annotations

import hashlib
import json

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from _graphs import arrays_in as _arrays_in

from admf_dask.errors import DataError
from admf_dask.features import compute_features
from admf_dask.strategies import StrategyContext, compute_signals
from admf_dask.strategies.replay import read_signal_table, signal_array


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()


def _chunks(n: int, size: int) -> tuple[int, ...]:
    return tuple([size] * (n // size) + ([n % size] if n % size else []))


def _table(market, rng, n_rows: int, text_times: bool = False) -> pd.DataFrame:
    """Random rows on the bars (some off them, some before the data), unsorted, unique keys."""
    t = pd.DatetimeIndex(market.time.values)
    syms = [str(s) for s in market.symbol.values]
    cells = rng.choice(len(t) * len(syms), size=n_rows, replace=False)
    when = t[cells // len(syms)]
    off = rng.random(n_rows) < 0.1
    when = when.where(~off, when + pd.Timedelta(hours=5))
    sig = np.round(rng.uniform(-1, 1, n_rows), 3)
    sig[rng.random(n_rows) < 0.1] = np.nan
    sig[rng.random(n_rows) < 0.05] = -0.0
    df = pd.DataFrame({"time": when, "symbol": np.asarray(syms)[cells % len(syms)], "signal": sig})
    if text_times:
        df["time"] = df["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return df


def _eager(market, path, label, **kw):
    t = pd.DatetimeIndex(market.time.values)
    return read_signal_table(path, label, t, [str(s) for s in market.symbol.values], **kw)


def _lazy(market, path, label, size=64, **kw):
    t = pd.DatetimeIndex(market.time.values)
    syms = [str(s) for s in market.symbol.values]
    arr = signal_array(path, label, t, syms, _chunks(len(t), size), **kw)
    return arr


@pytest.mark.parametrize("text_times", [False, True])
def test_parquet_row_groups_equal_the_eager_reader_for_every_chunking(market, tmp_path, text_times):
    df = _table(market, np.random.default_rng(3), 900, text_times)
    path = tmp_path / "sig.parquet"
    df.to_parquet(path, row_group_size=97)
    want = _eager(market, path, "sig.parquet")
    assert np.count_nonzero(want) > 500
    for size in (1, 37, 64, 400):
        arr = _lazy(market, path, "sig.parquet", size=size)
        assert arr.chunks[0][0] == size
        assert _digest(arr.compute()) == _digest(want), size


def test_a_folder_of_files_and_hive_partitions_equal_the_eager_reader(market, tmp_path):
    df = _table(market, np.random.default_rng(4), 700)
    folder = tmp_path / "sig"
    folder.mkdir()
    for k in range(3):
        df.iloc[k * 250 : (k + 1) * 250].to_parquet(folder / f"part-{k}.parquet", row_group_size=50)
    hive = tmp_path / "hive"
    df.to_parquet(hive, partition_cols=["symbol"])
    for path in (folder, hive):
        want = _eager(market, path, path.name)
        assert _digest(_lazy(market, path, path.name, size=50).compute()) == _digest(want)


def test_csv_blocks_equal_the_eager_reader(market, tmp_path):
    df = _table(market, np.random.default_rng(5), 600, text_times=True)
    df.to_csv(tmp_path / "sig.csv", index=False, na_rep="")
    want = _eager(market, tmp_path / "sig.csv", "sig.csv")
    for rows in (13, 77, 10_000):
        got = _lazy(market, tmp_path / "sig.csv", "sig.csv", size=29, block_rows=rows).compute()
        assert _digest(got) == _digest(want), rows


def _same_outcome(market, path, label, **kw) -> str:
    """The eager and the lazy reader raise the same line (returned), or agree on the values."""
    warn_e: list[str] = []
    warn_l: list[str] = []
    try:
        want = _eager(market, path, label, warnings=warn_e, **kw)
    except DataError as e:
        with pytest.raises(DataError) as info:
            _lazy(market, path, label, size=31, block_rows=3, **kw)
        assert info.value.line == e.line
        return e.line
    got = _lazy(market, path, label, size=31, block_rows=3, warnings=warn_l, **kw).compute()
    assert _digest(got) == _digest(want) and warn_l == warn_e
    return ""


def _faulty(market, rng) -> pd.DataFrame:
    """A random table with one or two faults of the kinds the reader reports."""
    df = _table(market, rng, 40, text_times=True).astype({"signal": object})
    kinds = ["symbol", "number", "range", "dup", "dup", "time", "nonbar", "nonbar", "none"]
    for fault in rng.choice(kinds, size=int(rng.integers(1, 3))):
        i = int(rng.integers(0, len(df)))
        if fault == "symbol":
            df.loc[i, "symbol"] = "NOPE"
        elif fault == "number":
            df.loc[i, "signal"] = "buy"
        elif fault == "range":
            df.loc[i, "signal"] = 1.5
        elif fault == "dup":
            j = int(rng.integers(0, len(df)))
            df.loc[i, ["time", "symbol"]] = df.loc[j, ["time", "symbol"]].to_numpy()
        elif fault == "time":
            df.loc[i, "time"] = "not a time"
        elif fault == "nonbar":  # every row on a bar but this one (inside the span)
            df["time"] = df["time"].str.slice(0, 10) + " 00:00:00"
            df.loc[i, "time"] = "2015-03-04 01:00:00"
    df["signal"] = df["signal"].astype(str).replace("nan", "")
    return df


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_first_error_in_the_eager_order_across_parts(market, tmp_path, fmt):
    seen = set()
    path = tmp_path / f"sig.{fmt}"
    for seed in range(14):
        df = _faulty(market, np.random.default_rng(seed))
        if fmt == "csv":
            df.to_csv(path, index=False)
        else:
            df.to_parquet(path, row_group_size=3)
        for strict in (False, True):
            line = _same_outcome(market, path, path.name, strict=strict)
            seen.add(line.split(": ", 1)[-1].split(" ")[0] if line else "ok")
            seen.add("two" if "two signals" in line else "not a bar" if "not a bar" in line else "")
    assert {"ok", "two", "not a bar", "unknown", "signal", "unparseable"} <= seen, seen


@pytest.mark.parametrize("name", ["e.csv", "e.parquet"])
def test_a_file_without_rows_replays_zeros(market, tmp_path, name):
    empty = pd.DataFrame({"time": pd.Series([], dtype=str), "symbol": [], "signal": []})
    if name.endswith(".csv"):
        empty.to_csv(tmp_path / name, index=False)
    else:
        empty.astype({"time": "datetime64[ns]"}).to_parquet(tmp_path / name)
    assert _same_outcome(market, tmp_path / name, name) == ""
    assert not _lazy(market, tmp_path / name, name).compute().any()


def test_duplicates_across_row_groups_name_the_eager_rows(market, tmp_path):
    t = pd.DatetimeIndex(market.time.values)
    rows = [(t[5], "T1", 0.5), (t[9], "T2", 0.1), (t[5], "T0", 1.0)]
    rows += [(t[7], "T3", 0.2), (t[9], "T2", -1.0), (t[5], "T1", 0.25)]
    df = pd.DataFrame(rows, columns=["time", "symbol", "signal"])
    df.to_parquet(tmp_path / "d.parquet", row_group_size=2)
    line = _same_outcome(market, tmp_path / "d.parquet", "d.parquet")
    assert line.startswith("d.parquet rows 1 and 6: two signals for T1 at 2015-01-08"), line


def test_timestamps_with_a_zone_and_nat(market, tmp_path):
    t = pd.DatetimeIndex(market.time.values)
    df = pd.DataFrame({"time": t[:30].tz_localize("UTC"), "symbol": "T3", "signal": 0.5})
    df.to_parquet(tmp_path / "z.parquet", row_group_size=4)
    assert _same_outcome(market, tmp_path / "z.parquet", "z.parquet") == ""
    df["time"] = df["time"].astype(object)
    df.loc[13, "time"] = None
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df.to_parquet(tmp_path / "z.parquet", row_group_size=4)
    line = _same_outcome(market, tmp_path / "z.parquet", "z.parquet")
    assert line.startswith("z.parquet row 14: unparseable time"), line


def test_on_a_cluster_csv_blocks_are_scattered_not_in_the_graph(market, tmp_path, client):
    df = _table(market, np.random.default_rng(8), 500, text_times=True)
    df.to_csv(tmp_path / "sig.csv", index=False)
    df.to_parquet(tmp_path / "sig.parquet", row_group_size=64)
    feats = compute_features(market, {})
    specs = {
        "c": {"kind": "signals", "path": "sig.csv"},
        "p": {"kind": "signals", "path": "sig.parquet"},
    }
    ctx = StrategyContext(base_dir=tmp_path, client=client)
    sig = compute_signals(market, feats, specs, ctx)
    graph = dict(sig.sel(strategy="c").data.__dask_graph__())
    assert len(cloudpickle.dumps(graph)) < 200_000
    got = client.compute(sig.data).result()
    want = _eager(market, tmp_path / "sig.csv", "sig.csv")
    assert _digest(got[:, :, 0]) == _digest(want)
    assert _digest(got[:, :, 1]) == _digest(want)


def test_a_url_is_read_in_tasks_with_its_storage_options(market, tmp_path):
    import fsspec

    df = _table(market, np.random.default_rng(9), 300)
    df.to_parquet(tmp_path / "sig.parquet", row_group_size=40)
    fs = fsspec.filesystem("memory")
    fs.pipe("/replay-test/sig.parquet", (tmp_path / "sig.parquet").read_bytes())
    try:
        feats = compute_features(market, {})
        spec = {"kind": "signals", "path": "memory://replay-test/sig.parquet"}
        spec["storage_options"] = {"skip_instance_cache": False}
        got = compute_signals(market, feats, {"r": spec}, StrategyContext()).values[:, :, 0]
        want = _eager(market, tmp_path / "sig.parquet", "sig.parquet")
        assert _digest(got) == _digest(want)
        from admf_dask.strategies.replay import file_hash, resolve_path

        loc = resolve_path(spec["path"], None, "strategies.r.path")
        assert file_hash(loc) == file_hash(tmp_path / "sig.parquet")
        # the signal check's diagnosis reads the URL's time column too
        from admf_dask.strategies.diagnose import check_signals

        late = df.assign(time=df["time"] + pd.Timedelta(hours=16))
        fs.pipe("/replay-test/late.parquet", late.to_parquet())
        ctx = StrategyContext()
        spec = {**spec, "path": "memory://replay-test/late.parquet"}
        check_signals(compute_signals(market, feats, {"late": spec}, ctx), market, feats, ctx)
        assert ctx.warnings == [
            f"strategy 'late': 0 of {len(df)} signal rows match a bar of the data "
            "(times 16:00:00 vs bars at 00:00:00)"
        ]
    finally:
        fs.rm("/replay-test", recursive=True)


def test_graph_of_big_replayed_signals_is_small_and_holds_no_value_arrays(tmp_path):
    from admf_dask.data import load_market_data

    data = load_market_data(
        {"symbols": 2000, "bars": 5040, "chunks": {"time": 252}}, compute_fingerprint=False
    )
    t = pd.DatetimeIndex(data.time.values)
    syms = np.asarray(data.symbol.values).astype(str)
    rows = pd.DataFrame(
        {"time": np.repeat(t[::40], len(syms)), "symbol": np.tile(syms, len(t[::40]))}
    )
    rows["signal"] = np.where(np.arange(len(rows)) % 3 == 0, 1.0, -0.5)
    rows.to_parquet(tmp_path / "big.parquet", row_group_size=20_000)
    arr = signal_array(tmp_path / "big.parquet", "big.parquet", t, list(syms), (252,) * 20)
    graph = arr.__dask_graph__()
    size = len(cloudpickle.dumps(dict(graph)))
    assert size < 1_000_000, size
    assert all(a.size <= 2000 for a in _arrays_in(graph))
    from distributed.protocol import dumps

    assert sum(len(f) for f in dumps(graph)) < 1_000_000
    block = arr.blocks[1].compute()  # bars 252..503: rows at bars 280, 320, ...
    assert (block[280 - 252] != 0).all() and (block[0] == 0).all()


def test_an_unset_storage_options_leaves_the_spec_and_cache_key_as_before():
    from admf_dask.strategies import validate_strategy_spec

    spec = {"kind": "signals", "path": "s.parquet"}
    want = {"kind": "signals", "path": "s.parquet", "date_format": None}
    assert validate_strategy_spec("r", spec, None) == want
    assert validate_strategy_spec("r", {**spec, "storage_options": {}}, None) == want
    got = validate_strategy_spec("r", {**spec, "storage_options": {"anon": True}}, None)
    assert got["storage_options"] == {"anon": True}


def test_run_json_masks_a_replay_urls_credentials(small_pipeline):
    from admf_dask.config import load_pipeline
    from admf_dask.pipeline.runner import _public_config

    small_pipeline["strategies"]["rep"] = {
        "kind": "signals",
        "path": "s3://bucket/sig.parquet",
        "storage_options": {"key": "AKIA-SECRET", "endpoint_url": "http://minio:9000"},
    }
    public = _public_config(load_pipeline(small_pipeline))["strategies"]["rep"]
    assert public["storage_options"] == {"key": "***", "endpoint_url": "http://minio:9000"}


def test_workers_on_other_machines_must_see_a_local_parquet_replay(tmp_path):
    from admf_dask.cluster.reach import replay_inputs

    pd.DataFrame({"time": [], "symbol": [], "signal": []}).to_parquet(tmp_path / "s.parquet")
    (tmp_path / "s.csv").write_text("time,symbol,signal\n")
    strategies = {
        "p": {"kind": "signals", "path": "s.parquet"},
        "c": {"kind": "signals", "path": "s.csv"},  # the client reads a CSV
        "u": {"kind": "signals", "path": "s3://bucket/s.parquet"},  # the store's own checks
        "t": {"kind": "ma_crossover", "fast": "a", "slow": "b"},
    }
    assert replay_inputs(strategies, tmp_path) == {"strategies.p.path": tmp_path / "s.parquet"}


def test_one_file_read_with_two_date_formats_gives_two_arrays(market, tmp_path):
    t = pd.DatetimeIndex(market.time.values)
    picks = [i for i in range(len(t)) if t[i].day <= 12 and t[i].day != t[i].month][:3]
    rows = [f"{t[i]:%d/%m/%Y},T0,1" for i in picks]
    (tmp_path / "sig.csv").write_text("\n".join(["date,symbol,signal", *rows]) + "\n")
    specs = {
        "dm": {"kind": "signals", "path": "sig.csv", "date_format": "%d/%m/%Y"},
        "md": {"kind": "signals", "path": "sig.csv", "date_format": "%m/%d/%Y"},
    }
    ctx = StrategyContext(base_dir=tmp_path)
    sig = compute_signals(market, compute_features(market, {}), specs, ctx)
    for name in specs:
        want = _eager(
            market, tmp_path / "sig.csv", "sig.csv", date_format=specs[name]["date_format"]
        )
        assert _digest(sig.sel(strategy=name).values) == _digest(want), name
    assert sorted(np.flatnonzero(sig.sel(strategy="dm").values[:, 0])) == picks


def _odd_tables(t: pd.DatetimeIndex) -> dict:
    """Tables whose types take the eager reader's other branches (name -> writer)."""
    day = t[:5].year * 10000 + t[:5].month * 100 + t[:5].day
    frames = {
        "index.parquet": pd.DataFrame({"time": t[:5], "symbol": "T1", "signal": 0.5}).set_index(
            "time"
        ),
        "bool.parquet": pd.DataFrame({"time": t[:3], "symbol": "T1", "signal": [True] * 3}),
        "ints.parquet": pd.DataFrame({"time": day, "symbol": "T1", "signal": 1}),
        "dates.parquet": pd.DataFrame({"time": t[:5].date, "symbol": "T1", "signal": -1}),
        "text.parquet": pd.DataFrame(
            {
                "Date": t[:5].strftime("%Y-%m-%d"),
                "TICKER": " T2 ",
                "Signal": ["0.5", "", "-1"] + ["1e-1"] * 2,
            }
        ),
    }
    out = {name: (lambda p, df=df: df.to_parquet(p)) for name, df in frames.items()}
    out["blank.csv"] = lambda p: p.write_text(
        "time,symbol,signal\n2015-01-01,T0,1\n\n2015-01-02,T0,x\n"
    )
    out["tab.tsv"] = lambda p: p.write_text("time\tsymbol\tsignal\n2015-01-01\tT0\t1\n")
    out["sig.json"] = lambda p: p.write_text("{}")
    return out


@pytest.mark.parametrize(
    "name",
    ["index.parquet", "bool.parquet", "ints.parquet", "dates.parquet", "text.parquet"]
    + ["blank.csv", "tab.tsv", "sig.json"],
)
def test_other_column_types_as_the_eager_reader(market, tmp_path, name):
    _odd_tables(pd.DatetimeIndex(market.time.values))[name](tmp_path / name)
    _same_outcome(market, tmp_path / name, name)


def test_symbol_chunks_of_the_data_are_kept(market, tmp_path):
    df = _table(market, np.random.default_rng(12), 300)
    df.to_parquet(tmp_path / "sig.parquet", row_group_size=50)
    data = market.chunk({"time": 50, "symbol": 2})
    sig = compute_signals(
        data,
        compute_features(data, {}),
        {"r": {"kind": "signals", "path": "sig.parquet"}},
        StrategyContext(base_dir=tmp_path),
    )
    assert sig.chunks[:2] == data["close"].chunks
    want = _eager(market, tmp_path / "sig.parquet", "sig.parquet")
    assert _digest(sig.values[:, :, 0]) == _digest(want)


def test_no_file_of_the_run_holds_a_replays_credentials(small_pipeline, client, tmp_path):
    import admf_dask as ad

    market = ad.load_market_data(small_pipeline["data"])
    df = _table(market, np.random.default_rng(5), 400)
    df.to_parquet(tmp_path / "sig.parquet")
    secret = "AKIA-NOT-IN-ANY-FILE"
    small_pipeline["strategies"]["rep"] = {
        "kind": "signals",
        "path": str(tmp_path / "sig.parquet"),
        "storage_options": {"key": secret, "endpoint_url": "http://minio:9000"},
    }
    small_pipeline["output"]["report"] = True
    res = ad.run(small_pipeline, client, out=tmp_path / "run")
    # the run used the replayed signals, and its signals.zarr keeps the masked options
    assert "rep" in [str(s) for s in res.signals.strategy.values]
    saved = json.loads(ad.open_run(tmp_path / "run").signals.attrs["strategy_specs"])
    assert saved["rep"]["storage_options"] == {"key": "***", "endpoint_url": "http://minio:9000"}
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) > 5
    assert not [p for p in files if secret.encode() in p.read_bytes()]
