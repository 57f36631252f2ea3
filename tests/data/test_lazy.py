"""Market data built in tasks: same values as the eager reference, small graphs, checks in tasks."""

from __future__ import annotations

import pickle
import warnings

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _graphs import arrays_in as _arrays_in

from admf_dask.data import FIELDS, fingerprint, lazy, load_market_data, synthetic_ohlcv
from admf_dask.data._synthetic import _BLOCK, block, plan
from admf_dask.data.load import finish_fingerprint
from admf_dask.data.universe import read_universe, universe_mask, universe_rows
from admf_dask.errors import DataError

CASES = [
    # bars, symbols, seed, missing, late_listed, delisted
    (300, 6, 11, 0.0, 0.0, 0.0),
    (60, 2, 1, 0.2, 0.5, 0.5),
    (_BLOCK, 3, 2, 0.1, 0.5, 0.5),
    (2 * _BLOCK + 37, 7, 5, 0.05, 0.3, 0.4),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("chunk", [1, 77, _BLOCK, 5000])
def test_synthetic_in_tasks_equals_the_eager_generator_bit_for_bit(case, chunk):
    bars, n, seed, missing, late, delisted = case
    if chunk == 1 and bars > 100:
        chunk = 9  # one task per bar is slow for nothing more
    eager = synthetic_ohlcv(bars, n, seed, missing=missing, late_listed=late, delisted=delisted)
    spec = {
        "symbols": n,
        "bars": bars,
        "seed": seed,
        "missing": missing,
        "late_listed": late,
        "delisted": delisted,
        "chunks": {"time": chunk},
    }
    ds = load_market_data(spec)
    assert ds["close"].chunks[0][0] == min(chunk, bars)
    for f in FIELDS:
        got = ds[f].values
        assert got.tobytes() == eager[f].tobytes(), f  # NaN patterns included
    if missing or late or delisted:
        assert np.isnan(ds["close"].values).any()


def test_window_and_symbol_names_cut_the_same_values():
    eager = synthetic_ohlcv(2 * _BLOCK + 10, 4, 9, missing=0.1, late_listed=0.5, delisted=0.5)
    spec = {
        "symbols": ["A", "B", "C", "D"],
        "bars": 2 * _BLOCK + 10,
        "seed": 9,
        "missing": 0.1,
        "late_listed": 0.5,
        "delisted": 0.5,
        "chunks": {"time": 100},
    }
    full = load_market_data(spec)
    t = full["time"].values
    ds = load_market_data({**spec, "start": str(t[900])[:10], "end": str(t[1500])[:10]})
    assert ds.sizes["time"] == 601 and list(ds["symbol"].values) == ["A", "B", "C", "D"]
    for f in FIELDS:
        assert ds[f].values.tobytes() == eager[f][900:1501].tobytes()


def test_block_chain_is_the_eager_loop():
    p, state = plan(3 * _BLOCK - 5, 5, 4, missing=0.2, late_listed=0.4, delisted=0.4)
    eager = synthetic_ohlcv(3 * _BLOCK - 5, 5, 4, missing=0.2, late_listed=0.4, delisted=0.4)
    first = state
    parts = []
    for k in range(p.n_blocks):
        out, state = block(k, p, state)
        parts.append(out["volume"])
    np.testing.assert_array_equal(np.concatenate(parts), eager["volume"])
    again, _ = block(0, p, first)  # the state is not mutated by a block
    np.testing.assert_array_equal(again["volume"], parts[0])


def test_vol_scale_scales_the_moves():
    base = synthetic_ohlcv(500, 20, 3)
    small = synthetic_ohlcv(500, 20, 3, vol_scale=0.1)
    r_base = np.nanstd(np.diff(np.log(base["close"]), axis=0))
    r_small = np.nanstd(np.diff(np.log(small["close"]), axis=0))
    assert 0.05 < r_small / r_base < 0.2


def test_graph_of_a_big_market_is_small_and_holds_no_value_arrays():
    ds = load_market_data({"symbols": 2000, "bars": 5040}, compute_fingerprint=False)
    assert "fingerprint" not in ds.attrs
    graph = ds.__dask_graph__()
    size = len(cloudpickle.dumps(dict(graph)))
    assert size < 1_000_000, size
    assert all(a.size <= 2000 for a in _arrays_in(graph))
    # and the distributed protocol's pickling of the high-level graph agrees
    from distributed.protocol import dumps

    assert sum(len(f) for f in dumps(graph)) < 1_000_000


def test_universe_mask_per_chunk_equals_the_full_mask(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text(
        "symbol,start,end\nS000,2010-02-01,2010-05-03\nS002,2010-03-15,\nNOPE,2010-01-01,\n"
    )
    spec = {"symbols": 3, "bars": 200, "seed": 1, "chunks": {"time": 30}, "universe": str(path)}
    ds = load_market_data(spec)
    assert ds["universe"].chunks == ds["close"].chunks
    assert _arrays_in(ds["universe"].data.__dask_graph__())[0].size <= 3
    table = read_universe(path, "u.csv")
    want, unknown = universe_mask(table, ds["time"].values, ["S000", "S001", "S002"])
    np.testing.assert_array_equal(ds["universe"].values, want)
    assert unknown == ["NOPE"] and "NOPE" in ds.attrs["universe_warning"]
    lo, hi, _ = universe_rows(table, ds["time"].values, ["S000", "S001", "S002"])
    assert lo[1] == hi[1]  # no row: never in


def test_fingerprint_does_not_depend_on_chunks_and_equals_on_a_cluster(client):
    spec = {"symbols": 5, "bars": 400, "seed": 2, "missing": 0.1}
    a = load_market_data({**spec, "chunks": {"time": 33}})
    b = load_market_data({**spec, "chunks": {"time": 400}}, compute_fingerprint=False)
    assert fingerprint(b.compute()) == a.attrs["fingerprint"]
    persisted = client.persist(b)
    assert finish_fingerprint(persisted, client) == a.attrs["fingerprint"]
    assert persisted.attrs["fingerprint"] == a.attrs["fingerprint"]
    other = load_market_data({**spec, "seed": 3})
    assert other.attrs["fingerprint"] != a.attrs["fingerprint"]


def test_row_digests_see_every_value():
    x = np.arange(12.0).reshape(4, 3)
    d = lazy.row_digests([x])
    y = x.copy()
    y[2, 1] = np.nextafter(y[2, 1], np.inf)
    e = lazy.row_digests([y])
    assert (d[[0, 1, 3]] == e[[0, 1, 3]]).all() and (d[2] != e[2]).any()


def _zarr(ds: xr.Dataset, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w")


def _market(n_time: int = 60) -> xr.Dataset:
    ds = load_market_data({"symbols": 3, "bars": n_time, "seed": 4}).compute()
    ds.attrs = {}
    return ds


def test_zarr_is_read_lazily_and_unsorted_times_are_sorted(tmp_path):
    plain = _market()
    shuffled = plain.isel(time=np.random.default_rng(1).permutation(plain.sizes["time"]))
    _zarr(shuffled.chunk({"time": 7}), tmp_path / "s.zarr")
    ds = load_market_data(
        {"source": "zarr", "path": "s.zarr", "chunks": {"time": 25}, "symbols": ["S002", "S000"]},
        base_dir=tmp_path,
        compute_fingerprint=False,
    )
    assert ds["close"].chunks == ((25, 25, 10), (2,))
    xr.testing.assert_identical(
        ds.compute().drop_attrs(), plain.sel(symbol=["S002", "S000"]).drop_attrs()
    )
    assert all(a.size <= plain.sizes["time"] for a in _arrays_in(ds.__dask_graph__()))


def test_zarr_bad_bar_in_a_late_chunk_raises_in_its_task(tmp_path, client):
    plain = _market()
    plain["high"][47, 1] = plain["low"][47, 1] / 2
    _zarr(plain, tmp_path / "bad.zarr")
    spec = {"source": "zarr", "path": "bad.zarr", "chunks": {"time": 20}}
    ds = load_market_data(spec, base_dir=tmp_path, compute_fingerprint=False)
    when = str(pd.Timestamp(plain["time"].values[47]).isoformat())
    pattern = rf"^bad\.zarr time={when} symbol=S001: high .* is below low"
    assert ds["close"].compute().shape == (60, 3)  # read, not yet checked
    with pytest.raises(DataError, match=pattern):
        finish_fingerprint(ds)  # the digest tasks check the bars
    persisted = client.persist(ds)
    with pytest.raises(DataError, match=pattern) as info:
        finish_fingerprint(persisted, client)  # found on a worker, raised on the client
    assert "\n" not in str(info.value) and "fingerprint" not in persisted.attrs
    with pytest.raises(DataError, match=pattern):
        load_market_data(spec, base_dir=tmp_path)  # the default fingerprint checks every bar
    plain["open"][12, 0] = np.nan  # an earlier bad bar (partial NaN) in another chunk wins
    _zarr(plain, tmp_path / "bad.zarr")
    first = load_market_data(spec, base_dir=tmp_path, compute_fingerprint=False)
    with pytest.raises(DataError, match=r"time=2010-01-20T00:00:00 symbol=S000: open missing"):
        finish_fingerprint(client.persist(first), client)


def test_one_line_errors_pickle():
    e = DataError("f.zarr time=2020-01-02 symbol=A", "high 1 is below low 2", "fix it")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is DataError and back.line == e.line and back.fix == "fix it"


def test_cli_run_on_a_bad_zarr_store_is_one_line_exit_2(tmp_path, small_pipeline, client):
    import yaml
    from _cli import main

    plain = _market(120)
    plain["open"][100, 2] = -1.0
    _zarr(plain, tmp_path / "bad.zarr")
    small_pipeline["data"] = {"source": "zarr", "path": "bad.zarr", "chunks": {"time": 50}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(small_pipeline))
    out = tmp_path / "runs" / "bad"
    # in-process, on the session's cluster (the store is read once the run has a cluster)
    addr = ("--address", client.scheduler.address)
    proc = main("run", str(tmp_path / "p.yaml"), "--out", str(out), *addr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    when = pd.Timestamp(plain["time"].values[100]).isoformat()
    assert lines[0].startswith(f"error: bad.zarr time={when} symbol=S002: open price -1"), lines[0]
    assert not out.exists()
