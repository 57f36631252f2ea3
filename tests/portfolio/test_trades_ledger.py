"""trades.parquet files: columns and types, portfolio / symbol filters that open only the files needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from portfolio_cases import make_market, make_signals, pack, random_params

from admf_dask.errors import ConfigError
from admf_dask.portfolio import _trades as TR
from admf_dask.portfolio.batch import simulate
from admf_dask.portfolio.trades import (
    TRADE_COLUMNS,
    benchmark_index,
    part_files,
    part_name,
    read_trades,
    write_batches,
    write_trades,
)


def _ledger(tmp_path, T=60, S=3, bounds=((0, 3), (3, 5)), cuts=(0, 25, 60)):
    rng = np.random.default_rng(3)
    open_, close = make_market(rng, T, S, gap=0.1, late=0.0)
    sig = make_signals(rng, T, S, 1, change=0.4)
    times = np.datetime64("2020-01-01", "ns") + np.arange(T) * np.timedelta64(1, "D")
    symbols = [f"S{i}" for i in range(S)]
    d = tmp_path / "trades.parquet"
    d.mkdir()
    write_batches(d, bounds)
    every = []
    for b, (p0, p1) in enumerate(bounds):
        params = [
            random_params(rng, 1) | {"allow_short": True, "sizing": "fixed"} for _ in range(p1 - p0)
        ]
        mixes, fp, ip = pack(params)
        _, _, orders, _ = simulate(open_, close, sig, None, mixes, fp, ip, 1e4)
        state = TR.TradeState.new(p1 - p0, S)
        for c, (a, z) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
            sel = (orders.time >= a) & (orders.time < z)
            tab = TR.step_trades(
                state,
                orders.portfolio[sel],
                orders.time[sel],
                orders.symbol[sel],
                orders.qty[sel],
                orders.price[sel],
                orders.commission[sel],
                close[a:z],
                a,
            )
            if z == T:
                last = np.array([close[~np.isnan(close[:, s]), s][-1] for s in range(S)])
                opened, _ = TR.finalize_trades(state, last, T - 1)
                tab = TR.TradeTable.concat([tab, opened])
            write_trades(tab, d / part_name(b, c), p0, times, symbols)
            rec = pd.DataFrame(tab.records())
            rec["portfolio"] += p0
            every.append(rec)
    return d, pd.concat(every, ignore_index=True), times, symbols


def test_columns_types_and_values(tmp_path):
    d, rec, times, symbols = _ledger(tmp_path)
    df = read_trades(d)
    assert tuple(df.columns) == TRADE_COLUMNS and len(df) == len(rec) > 0
    assert df["portfolio"].dtype == np.int64 and df["side"].dtype == np.int8
    assert isinstance(df["symbol"].dtype, pd.CategoricalDtype)
    assert df["entry_time"].dtype == "datetime64[ns]" and df["exit_time"].dtype == "datetime64[ns]"
    rec = rec.sort_values(["portfolio", "symbol", "entry_bar"], kind="stable").reset_index(
        drop=True
    )
    np.testing.assert_array_equal(df["portfolio"], rec["portfolio"])
    assert df["symbol"].astype(str).tolist() == [symbols[s] for s in rec["symbol"]]
    np.testing.assert_array_equal(df["entry_time"].to_numpy(), times[rec["entry_bar"]])
    open_ = rec["exit_bar"] < 0
    assert df["exit_time"].isna().tolist() == open_.tolist() and open_.any()
    np.testing.assert_array_equal(
        df["exit_time"][~open_].to_numpy(), times[rec["exit_bar"][~open_]]
    )
    for c in ("n_fills", "bars", "entry_price", "exit_price", "pnl", "cost", "return", "mfe"):
        np.testing.assert_array_equal(df[c].to_numpy(), rec[c].to_numpy(), err_msg=c)


def test_written_row_group_by_row_group(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from admf_dask.portfolio import trades

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole, _, _, _ = _ledger(tmp_path / "a")
    monkeypatch.setattr(trades, "ROW_GROUP", 4)  # several row groups per file
    parts, _, _, _ = _ledger(tmp_path / "b")
    names = sorted(p.name for p in whole.glob("part-*.parquet"))
    assert names == sorted(p.name for p in parts.glob("part-*.parquet"))
    groups = 0
    for name in names:
        a, b = pq.ParquetFile(whole / name), pq.ParquetFile(parts / name)
        assert b.metadata.num_row_groups == -(-a.metadata.num_rows // 4)
        assert b.schema_arrow == a.schema_arrow
        pd.testing.assert_frame_equal(b.read().to_pandas(), a.read().to_pandas())
        groups += b.metadata.num_row_groups
    assert groups > len(names)
    pd.testing.assert_frame_equal(read_trades(parts), read_trades(whole))


def test_filters_open_only_the_needed_files(tmp_path):
    d, rec, _, symbols = _ledger(tmp_path)
    assert [p.name for p in part_files(d, [4])] == [part_name(1, 0), part_name(1, 1)]
    assert len(part_files(d, [0, 4])) == 4 and part_files(d, [9]) == []
    one = read_trades(d, portfolio=4)
    assert set(one["portfolio"]) == {4} and len(one) == int((rec["portfolio"] == 4).sum())
    pair = read_trades(d, portfolio=[1, 3], symbol="S2")
    want = rec[rec["portfolio"].isin([1, 3]) & (rec["symbol"] == 2)]
    assert len(pair) == len(want) and set(pair["symbol"].astype(str)) <= {"S2"}
    none = read_trades(d, portfolio=99)
    assert none.empty and tuple(none.columns) == TRADE_COLUMNS


def test_benchmark_symbol_must_be_another_symbol_of_the_data():
    assert benchmark_index(None, ["A"]) is None
    assert benchmark_index("SPY", ["AAA", "SPY"]) == 1
    with pytest.raises(
        ConfigError, match=r"'SPX' is not a symbol of the data \(did you mean 'SPY'"
    ) as e:
        benchmark_index("SPX", ["AAA", "SPY"])
    assert "symbols: AAA, SPY" in e.value.line and "\n" not in e.value.line
    with pytest.raises(ConfigError, match="the data has one symbol"):
        benchmark_index("SPY", ["SPY"])
