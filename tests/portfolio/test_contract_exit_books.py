"""An outsider's check of the exit rules (DESIGN §2b) combined with grids and cross-sectional
books (DESIGN §5 ``top_k``, ``rank``, ``data.universe``) on the real bokeh-sampledata prices.

The books' signals are all ±1, so ``max_positions`` lives on its tie rule (held now before not
held, then lower symbol index); a 50/50 mix with a trend rule gives |u| of 0.5 and 1 too. Every
exit rule is on in some portfolio of the grid, in both ``exit_on`` modes, with a point-in-time
universe that drops a held name and lists one late.

The per-portfolio reference is the plain, contract-text simulation of
tests/portfolio/test_contract_accounting.py (`simulate`, one portfolio bar by bar), fed with the
run's own signals (signals.zarr: checked against the contract in
tests/strategies/test_contract_cross_section.py) and the prices parsed from the raw CSV.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from test_contract_accounting import EXEC, simulate, wide_prices

import admf_dask as ad

START, END = "2011-01-03", "2013-03-01"
UNIVERSE = [
    ("AAPL", "2000-01-01", None),
    ("FB", "2000-01-01", None),
    ("GOOG", "2000-01-01", None),
    ("IBM", "2000-01-01", "2012-06-29"),  # leaves while the books may hold it
    ("MSFT", "2011-04-11", None),  # joins late
]
GRID = {
    "strategy": ["book", {"book": 0.5, "trend": 0.5}],
    "exit_on": ["close", "intrabar"],
    "max_positions": [None, 1, 2],
    "trailing_stop": [None, 0.05],
}
SCALARS = {"stop_loss": 0.04, "take_profit": 0.08, "max_holding": 10, "allow_short": True}
CAPITAL = 200000


@pytest.fixture(scope="module")
def books(client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract_exit_books")
    pd.DataFrame(UNIVERSE, columns=["symbol", "start", "end"]).to_csv(tmp / "u.csv", index=False)
    cfg = {
        "name": "contract-exit-books",
        "data": {
            "source": "bokeh_stocks",
            "start": START,
            "end": END,
            "chunks": {"time": 83},
            "universe": str(tmp / "u.csv"),
        },
        "features": {
            "mom": {"kind": "roc", "window": 20},
            "rk": {"kind": "rank", "input": "mom"},
            "sma_5": {"kind": "sma", "window": 5},
            "sma_20": {"kind": "sma", "window": 20},
        },
        "strategies": {
            "book": {
                "kind": "top_k",
                "feature": "rk",
                "k": 2,
                "short_k": 1,
                "every": 5,
                "buffer": 1,
            },
            "trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"},
        },
        "portfolios": {"capital": CAPITAL, "batch_size": 5, **SCALARS, "grid": GRID},
        "execution": dict(EXEC),
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(tmp / "run"), "report": False},
    }
    res = ad.run(cfg, client)
    sig = ad.open_run(tmp / "run").signals.transpose("time", "symbol", "strategy")
    px = wide_prices(START, END)
    assert [str(s) for s in sig.symbol.values] == px["symbols"]
    np.testing.assert_array_equal(sig.time.values, px["time"])
    sigs = {str(k): sig.sel(strategy=k).values for k in sig.strategy.values}
    return {"res": res, "px": px, "sigs": sigs}


def params(i: int) -> tuple[dict, dict]:
    combo = dict(zip(GRID, list(itertools.product(*GRID.values()))[i], strict=True))
    strat = combo.pop("strategy")
    weights = {strat: 1.0} if isinstance(strat, str) else dict(strat)
    p = {"max_position": 1.0, "max_gross": 1.0, "rebalance_band": 0.0, **EXEC, **SCALARS, **combo}
    return p, weights


def test_universe_zeroes_every_strategy(books):
    px, sigs = books["px"], books["sigs"]
    times = px["time"]
    for sym, a, b in UNIVERSE:
        j = px["symbols"].index(sym)
        out = times < np.datetime64(a)
        if b is not None:
            out |= times > np.datetime64(b)
        for name, s in sigs.items():
            assert np.nan_to_num(s[out, j]).tolist() == [0.0] * int(out.sum()), (name, sym)
    assert set(np.unique(sigs["book"])) <= {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("i", range(24))
def test_exits_with_books_match_the_contract(books, i):
    p, weights = params(i)
    ref = simulate(books["px"], books["sigs"], weights, p, CAPITAL)
    res = books["res"]
    np.testing.assert_allclose(
        res.equity.sel(portfolio=i).values, ref["equity"], rtol=1e-9, err_msg=str(p)
    )
    np.testing.assert_allclose(res.cash.sel(portfolio=i).values, ref["cash"], rtol=1e-9)
    o = res.orders
    o = o[o["portfolio"] == i]
    got = sorted(
        zip(
            o["time"].to_numpy(),
            o["symbol"].astype(str),
            o["qty"],
            o["price"],
            o["reason"].astype(str),
            strict=True,
        ),
        key=lambda r: (r[0], r[1]),
    )
    times, symbols = books["px"]["time"], books["px"]["symbols"]
    want = sorted(
        ((times[t], symbols[s], qty, px, why) for t, s, qty, px, _, why in ref["orders"]),
        key=lambda r: (r[0], r[1]),
    )
    assert len(got) == len(want), (p, weights, len(got), len(want))
    for g, w in zip(got, want, strict=True):
        assert (g[0], g[1], g[4]) == (w[0], w[1], w[4]), (p, weights, g, w)
        assert g[2] == pytest.approx(w[2], rel=1e-9, abs=1e-9)
        assert g[3] == pytest.approx(w[3], rel=1e-12)


def test_every_rule_is_exercised(books):
    o = books["res"].orders
    reasons = set(o["reason"].astype(str))
    assert reasons >= {"signal", "stop", "trailing", "take_profit", "time"}, reasons


def test_max_positions_caps_held_names(books):
    """At every close at most max_positions symbols are held (after the fills of the next
    open; an exit in between only lowers the count)."""
    res = books["res"]
    o = res.orders.assign(symbol=res.orders["symbol"].astype(str))
    for i in range(24):
        p, _ = params(i)
        if p["max_positions"] is None:
            continue
        oi = o[o["portfolio"] == i]
        q = oi.pivot_table(index="time", columns="symbol", values="qty", aggfunc="sum")
        held = (q.fillna(0.0).cumsum().abs() > 1e-9).sum(axis=1)
        assert held.max() <= p["max_positions"], (i, held.max())


def test_books_exits_and_universe_do_not_depend_on_chunks_or_batches(books, client, tmp_path):
    res = books["res"]
    cfg = dict(res.manifest["config"])
    cfg["data"] = {**cfg["data"], "chunks": {"time": 1000}}
    cfg["portfolios"] = {**cfg["portfolios"], "batch_size": 24}
    cfg["output"] = {**cfg["output"], "path": str(tmp_path / "one")}
    one = ad.run(cfg, client)
    np.testing.assert_array_equal(one.equity.values, res.equity.values)
    pd.testing.assert_frame_equal(one.orders, res.orders)
    pd.testing.assert_frame_equal(one.trades(), res.trades())
