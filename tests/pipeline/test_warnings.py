"""Runs that would finish without a word: strategies that never signal, no orders, duplicates.

Each warning goes to run.json ``warnings`` (and the CLI's output); ``strict`` turns the signal
ones into one-line errors (exit 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _cli import main
from test_cli import assert_one_line_error, write_pipeline

import admf_dask as ad
from admf_dask.errors import ConfigError, DataError, InputError

DATA = {"source": "synthetic", "symbols": 3, "bars": 120, "seed": 11, "chunks": {"time": 60}}
FEATURES = {"sma_5": {"kind": "sma", "window": 5}, "sma_500": {"kind": "sma", "window": 500}}


def _cfg(tmp_path, features, strategies, **portfolios) -> dict:
    return {
        "name": "quiet",
        "data": DATA,
        "features": features,
        "strategies": strategies,
        "portfolios": {"capital": 100000, "batch_size": 4, **portfolios},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 1},
        "output": {"path": str(tmp_path / "run"), "report": False, "overwrite": True},
    }


def _run(tmp_path, cfg, client, strict=False):
    return ad.run(write_pipeline(tmp_path, cfg), client=client, strict=strict)


def test_sma_window_longer_than_the_data(tmp_path, client):
    trend = {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_500"}}
    res = _run(tmp_path, _cfg(tmp_path, FEATURES, trend), client)
    warns = res.manifest["warnings"]
    assert (
        "strategy 'trend' has no non-zero signal: feature sma_500 is NaN everywhere "
        "(window 500 > 120 bars)"
    ) in warns
    assert any(w.startswith("no portfolio placed an order (1 portfolio(s))") for w in warns)
    assert res.manifest["portfolios"]["n_orders"] == 0


def test_replayed_signals_that_match_no_bar(tmp_path, client):
    market = ad.load_market_data(DATA)
    times = pd.DatetimeIndex(market.time.values) + pd.Timedelta(hours=16)  # stamped at 16:00
    rows = [(t, str(s), 1.0) for t in times for s in market.symbol.values]
    pd.DataFrame(rows, columns=["time", "symbol", "signal"]).to_parquet(tmp_path / "mine.pq")
    mine = {"mine": {"kind": "signals", "path": "mine.pq"}}
    res = _run(tmp_path, _cfg(tmp_path, {}, mine), client)
    warns = res.manifest["warnings"]
    assert warns[0] == (
        "strategy 'mine': 0 of 360 signal rows match a bar of the data "
        "(times 16:00:00 vs bars at 00:00:00)"
    )
    assert len(warns) == 2 and warns[1].startswith("no portfolio placed an order")
    # rows of another year: outside the data, silently ignored by the reader, still reported
    other = pd.DataFrame(rows, columns=["time", "symbol", "signal"])
    other["time"] = other["time"].dt.normalize() - pd.DateOffset(years=5)
    other.to_parquet(tmp_path / "mine.pq")
    with pytest.raises(DataError, match=r"mine.pq: strategy 'mine': 0 of 360 signal rows .*rows "):
        _run(tmp_path, _cfg(tmp_path, {}, mine), client, strict=True)


def test_ml_train_window_longer_than_the_data(tmp_path, client):
    ml = {
        "m": {
            "kind": "xgboost",
            "features": ["ret"],
            "horizon": 1,
            "train_window": 5000,
            "retrain_every": 50,
        }
    }
    cfg = _cfg(tmp_path, {"ret": {"kind": "returns"}}, ml)
    res = _run(tmp_path, cfg, client)
    warns = res.manifest["warnings"]
    assert warns[0] == (
        "strategies.m: train_window 5000 is longer than the data (120 bars): no fold trained"
    )
    assert len(warns) == 2 and warns[1].startswith("no portfolio placed an order")
    with pytest.raises(InputError, match="no fold trained"):
        _run(tmp_path, cfg, client, strict=True)


def test_strict_cli_exits_2_with_one_line(tmp_path, client):
    trend = {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_500"}}
    cfg = _cfg(tmp_path, FEATURES, trend)
    cfg["cluster"]["ml_workers"] = 0
    path = write_pipeline(tmp_path, cfg)
    # in-process (tests/_cli.py), on the session's cluster
    proc = main("run", str(path), "--strict", "--address", client.scheduler.address)
    assert_one_line_error(
        proc, "strategies.trend: strategy 'trend' has no non-zero signal: feature sma_500"
    )
    assert not (tmp_path / "run").exists()


def test_no_orders_although_strategies_signal(tmp_path, client):
    trend = {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_5"}}  # 0 everywhere
    cfg = _cfg(tmp_path, FEATURES, trend)
    res = _run(tmp_path, cfg, client)
    assert res.manifest["warnings"][0] == (
        "strategy 'trend' has no non-zero signal: its rule never fires on this data"
    )
    cfg["strategies"] = {"trend": {"kind": "momentum", "feature": "sma_5"}}  # always +1
    cfg["portfolios"]["rebalance_band"] = 0.9  # above 1/3, the largest weight: never trades
    res = _run(tmp_path, cfg, client)
    assert [w.split(" (")[0] for w in res.manifest["warnings"]] == ["no portfolio placed an order"]
    with pytest.raises(ConfigError, match="^portfolios: no portfolio placed an order"):
        _run(tmp_path, cfg, client, strict=True)


def test_duplicate_portfolios_warn_and_are_really_identical(tmp_path, client):
    trend = {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}}
    feats = {
        "sma_5": {"kind": "sma", "window": 5},
        "sma_20": {"kind": "sma", "window": 20},
        "vol": {"kind": "volatility", "window": 10},
    }
    grid = {
        "sizing": ["fixed", "vol_target"],
        "target_vol": [0.1, 0.2],
        "commission": [None, 0.0005, 0.001],  # null is execution.commission (0.0005)
        "stop_loss": [None, 0.02],
    }
    cfg = _cfg(tmp_path, feats, trend, vol_feature="vol", grid=grid)
    res = _run(tmp_path, cfg, client)
    # 24 portfolios; distinct: fixed 1 x 2 commissions x 2 stops + vol_target 2 x 2 x 2 = 12
    warns = [w for w in res.manifest["warnings"] if "duplicate" in w]
    assert len(warns) == 1
    assert warns[0].startswith("12 of 24 portfolios duplicate another's effective parameters (")
    assert "target_vol has no effect with sizing fixed" in warns[0]
    assert "commission null is execution.commission" in warns[0]
    from admf_dask.portfolio.grid import run_groups

    groups = run_groups(res.manifest, ["trend"], 3, 24)
    assert len(set(groups)) == 12
    eq = res.equity.transpose("time", "portfolio").values
    assert res.manifest["portfolios"]["n_orders"] > 0
    for i, g in enumerate(groups):  # a duplicate's results are its representative's, exactly
        np.testing.assert_array_equal(eq[:, i], eq[:, g])
    assert len(np.unique(eq[-1, groups == np.arange(24)])) > 1
