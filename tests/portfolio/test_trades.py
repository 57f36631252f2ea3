"""The trade kernels against the plain reading of docs/TRADES.md, on simulated and hand-written ledgers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from portfolio_cases import (
    exit_params_strategy,
    make_high_low,
    make_market,
    make_signals,
    make_vol,
    pack,
    params_strategy,
)
from trades_reference import CLOSE_RTOL, COLUMNS, reference_trade_metrics, reference_trades

from admf_dask.portfolio import _trades as TR
from admf_dask.portfolio.batch import chunk_bounds, simulate
from admf_dask.portfolio.enums import REASON_NAMES

CAPITAL = 10_000.0
RTOL = 1e-9


def _kernel_trades(orders, close, P, chunks=None):
    """Trades and metrics of the kernels, fed one time chunk of orders at a time."""
    T, S = close.shape
    state = TR.TradeState.new(P, S)
    parts = []
    last_close = np.full(S, np.nan)
    for a, b in chunk_bounds(T, chunks):
        sel = (orders["time"] >= a) & (orders["time"] < b)
        o = {k: np.asarray(v)[sel] for k, v in orders.items()}
        parts.append(
            TR.step_trades(
                state,
                o["portfolio"],
                o["time"],
                o["symbol"],
                o["qty"],
                o["price"],
                o["commission"],
                close[a:b],
                a,
            )
        )
        for s in range(S):
            fin = np.flatnonzero(np.isfinite(close[a:b, s]))
            if fin.size:
                last_close[s] = close[a + fin[-1], s]
    opened, metrics = TR.finalize_trades(state, last_close, T - 1)
    return TR.TradeTable.concat([*parts, opened]).records(), metrics, state


def _as_frame(rec: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({name: rec[name] for name in rec.dtype.names})
    df = df.rename(columns={"entry_bar": "entry_time", "exit_bar": "exit_time"})
    df["exit_time"] = df["exit_time"].astype(object).where(df["exit_time"] >= 0, None)
    return df[COLUMNS]


def _exits(df: pd.DataFrame) -> list[int]:
    """Exit bars, -1 while open (None / nan in the frame)."""
    return [-1 if pd.isna(x) else int(x) for x in df["exit_time"]]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    key = [math.inf if x < 0 else x for x in _exits(df)]
    order = np.lexsort((key, df["entry_time"], df["symbol"], df["portfolio"]))
    return df.iloc[order].reset_index(drop=True)


def _assert_same_trades(mine: pd.DataFrame, ref: pd.DataFrame) -> None:
    mine, ref = _sorted(mine), _sorted(ref)
    assert len(mine) == len(ref)
    for c in ("portfolio", "symbol", "side", "entry_time", "n_fills", "bars"):
        np.testing.assert_array_equal(mine[c].to_numpy(int), ref[c].to_numpy(int), err_msg=c)
    assert _exits(mine) == _exits(ref)
    for c in ("entry_price", "exit_price", "cost", "mfe", "mae"):
        np.testing.assert_allclose(mine[c], ref[c], rtol=RTOL, atol=1e-12, err_msg=c)
    scale = np.maximum(ref["cost"].abs().to_numpy(), 1.0)
    for c in ("pnl", "return"):
        err = np.abs(mine[c].to_numpy() - ref[c].to_numpy())
        tol = RTOL * (scale if c == "pnl" else scale / ref["cost"].abs().to_numpy())
        assert (err <= tol).all(), c


def _assert_same_metrics(metrics, ref_trades, P) -> None:
    ref = reference_trade_metrics(ref_trades, list(range(P)))
    np.testing.assert_array_equal(metrics["n_trades"], ref["n_trades"])
    for k in ("win_rate", "profit_factor", "expectancy", "avg_bars"):
        np.testing.assert_allclose(metrics[k], ref[k], rtol=RTOL, atol=1e-9, err_msg=k)


def _ledger(orders) -> dict[str, np.ndarray]:
    return {
        "portfolio": orders.portfolio,
        "time": orders.time,
        "symbol": orders.symbol,
        "qty": orders.qty,
        "price": orders.price,
        "commission": orders.commission,
    }


def _closes_frame(close: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(close, columns=range(close.shape[1]))


@st.composite
def simulated(draw, exits=False):
    T = draw(st.one_of(st.integers(1, 40), st.integers(60, 130)))
    S = draw(st.integers(1, 6))
    K_ = draw(st.integers(1, 2))
    P = draw(st.integers(1, 4))
    kind = exit_params_strategy if exits else params_strategy
    params = draw(st.lists(kind(K_), min_size=P, max_size=P))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    open_, close = make_market(
        rng, T, S, sigma=draw(st.sampled_from([0.01, 0.05])), gap=draw(st.sampled_from([0.0, 0.2]))
    )
    high, low = make_high_low(rng, open_, close)
    sig = make_signals(rng, T, S, K_, change=draw(st.sampled_from([0.1, 0.5, 0.9])))
    vol = make_vol(rng, T, S)
    cuts = draw(st.lists(st.integers(1, max(1, T // 2)), min_size=1, max_size=4))
    chunks = []
    while sum(chunks) < T:
        chunks.append(min(cuts[len(chunks) % len(cuts)], T - sum(chunks)))
    return open_, close, high, low, sig, vol, params, tuple(chunks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(simulated())
def test_trades_of_simulated_runs_equal_reference(case):
    _check_simulated(*case)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(simulated(exits=True))
def test_trades_with_exit_rules_equal_reference(case):
    # take-profit, trailing, time exits; intrabar: an exit in the bar of the opening fill
    _check_simulated(*case)


def _check_simulated(open_, close, high, low, sig, vol, params, chunks):
    P = len(params)
    mixes, fp, ip = pack(params)
    equity, _, orders, state = simulate(
        open_, close, sig, vol[None], mixes, fp, ip, CAPITAL, high=high, low=low
    )
    ledger = _ledger(orders)
    trades, metrics, tstate = _kernel_trades(ledger, close, P)
    chunked, metrics_c, _ = _kernel_trades(ledger, close, P, chunks=chunks)

    ref = reference_trades(pd.DataFrame(ledger), _closes_frame(close))
    _assert_same_trades(_as_frame(trades), ref)
    _assert_same_metrics(metrics, ref, P)
    # the chunk borders change nothing, to the bit
    a, b = _sorted(_as_frame(trades)), _sorted(_as_frame(chunked))
    pd.testing.assert_frame_equal(a, b)
    for k in metrics:
        np.testing.assert_array_equal(metrics[k], metrics_c[k])

    # every fill is in one trade: Σ pnl = final equity - capital; open shares = the kernel's
    if len(equity):
        pnl = np.bincount(trades["portfolio"], weights=trades["pnl"], minlength=P)
        np.testing.assert_allclose(pnl, equity[-1] - CAPITAL, rtol=RTOL, atol=RTOL * CAPITAL)
    # a residual within CLOSE_RTOL of the trade's largest |q| closes it (docs/TRADES.md): the
    # kernel may still hold it (a 1e-10 signal weight makes such a position)
    led = pd.DataFrame(ledger)
    peak = led.groupby(["portfolio", "symbol"])["qty"].cumsum().abs().max() if len(led) else 0.0
    np.testing.assert_allclose(tstate.q, state.q, rtol=1e-9, atol=max(1e-12, CLOSE_RTOL * peak))

    kinds = {f"orders for reason {REASON_NAMES[r]}" for r in set(orders.reason.tolist())}
    if (trades["exit_bar"] < 0).any():
        kinds.add("open at the end")
    if (trades["n_fills"] > 2).any():
        kinds.add("more than two fills")
    closed = trades[trades["exit_bar"] >= 0]
    ends = set(zip(closed["portfolio"], closed["symbol"], closed["exit_bar"], strict=True))
    starts = zip(trades["portfolio"], trades["symbol"], trades["entry_bar"], strict=True)
    if any(k in ends for k in starts):
        kinds.add("flips")
    if ((trades["bars"] == 0) & (trades["exit_bar"] >= 0)).any():
        kinds.add("entry and exit in one bar")
    for k in sorted(kinds):
        event(k)  # --hypothesis-show-statistics


def _hand(orders: list[tuple], close: list[list[float]], P: int = 1):
    """Kernel and reference trades of a hand-written ledger (p, t, s, qty, px, fee)."""
    df = pd.DataFrame(orders, columns=["portfolio", "time", "symbol", "qty", "price", "commission"])
    close_a = np.array(close, dtype=np.float64)
    ledger = {k: df[k].to_numpy() for k in df.columns}
    rec, metrics, _ = _kernel_trades(ledger, close_a, P)
    ref = reference_trades(df, _closes_frame(close_a))
    _assert_same_trades(_as_frame(rec), ref)
    _assert_same_metrics(metrics, ref, P)
    # any chunking: the same trades
    for c in range(1, len(close)):
        again, _, _ = _kernel_trades(ledger, close_a, P, chunks=c)
        pd.testing.assert_frame_equal(_sorted(_as_frame(rec)), _sorted(_as_frame(again)))
    return _sorted(_as_frame(rec)), metrics


NAN = math.nan


def test_flip_splits_commission_and_counts_the_fill_twice():
    close = [[100.0], [110.0], [NAN], [90.0], [95.0], [97.0]]
    # long 10 at 100 (fee 1), flip to short 5 at 120 (fee 3: 2 to the close, 1 to the open),
    # cover at 80 (fee 0.5)
    trades, m = _hand([(0, 0, 0, 10.0, 100.0, 1.0), (0, 2, 0, -15.0, 120.0, 3.0),
                       (0, 4, 0, 5.0, 80.0, 0.5)], close)  # fmt: skip
    long, short = trades.iloc[0], trades.iloc[1]
    assert (long["side"], long["n_fills"], long["bars"]) == (1, 2, 2)
    assert long["pnl"] == pytest.approx(-1000 - 1 + 1200 - 2)
    assert long["exit_price"] == 120.0
    # closes of bars 0 and 1 (bar 2 is the exit): 100 and 110
    assert long["mfe"] == pytest.approx(0.1) and long["mae"] == 0.0
    assert (short["side"], short["n_fills"], short["entry_time"], short["exit_time"]) == (
        -1,
        2,
        2,
        4,
    )
    assert short["pnl"] == pytest.approx(600 - 1 - 400 - 0.5)
    assert short["cost"] == pytest.approx(600.0)
    # closes of bars 2 (nan) and 3 (90): -(90/120 - 1) = 0.25
    assert short["mfe"] == pytest.approx(0.25) and short["mae"] == 0.0
    assert m["n_trades"][0] == 2 and m["win_rate"][0] == 1.0
    assert m["profit_factor"][0] == math.inf


def test_partial_closes_and_growth_weight_the_prices():
    close = [[10.0], [12.0], [11.0], [8.0], [9.0]]
    orders = [(0, 0, 0, 2.0, 10.0, 0.0), (0, 1, 0, 2.0, 12.0, 0.0), (0, 2, 0, -1.0, 11.0, 0.0),
              (0, 3, 0, -3.0, 8.0, 0.0)]  # fmt: skip
    trades, m = _hand(orders, close)
    (t,) = trades.itertuples()
    assert t.entry_price == pytest.approx(11.0) and t.exit_price == pytest.approx(8.75)
    assert t.cost == pytest.approx(44.0) and t.n_fills == 4
    assert t.pnl == pytest.approx(-20 - 24 + 11 + 24)
    assert t.mfe == pytest.approx(12 / 11 - 1) and t.mae == pytest.approx(10 / 11 - 1)
    assert m["win_rate"][0] == 0.0 and m["profit_factor"][0] == 0.0
    assert m["expectancy"][0] == pytest.approx(-9.0) and m["avg_bars"][0] == 3.0


def test_open_at_the_end_is_marked_at_the_last_finite_close():
    close = [[10.0, 5.0], [NAN, 6.0], [12.0, NAN], [NAN, NAN]]
    orders = [(0, 1, 0, -3.0, 11.0, 0.2), (0, 1, 1, 4.0, 6.0, 0.0)]
    trades, m = _hand(orders, close)
    short, long = trades.iloc[0], trades.iloc[1]
    assert pd.isna(short["exit_time"]) and math.isnan(short["exit_price"])
    assert short["pnl"] == pytest.approx(33 - 0.2 - 36) and short["bars"] == 2
    assert short["mae"] == pytest.approx(-(12 / 11 - 1)) and short["mfe"] == 0.0
    assert long["pnl"] == pytest.approx(0.0, abs=1e-12) and long["mfe"] == 0.0
    # no closed trade: n_trades counts the open ones, the rest is nan
    assert m["n_trades"][0] == 2 and np.isnan(m["win_rate"][0]) and np.isnan(m["expectancy"][0])


def test_entry_and_exit_in_one_bar_and_portfolios_apart():
    # an intrabar exit: the opening fill and the exit share a bar (no close in between)
    close = [[10.0], [9.0], [9.5]]
    orders = [(0, 1, 0, 5.0, 10.0, 0.1), (0, 1, 0, -5.0, 9.2, 0.1), (1, 0, 0, -1.0, 10.0, 0.0),
              (1, 2, 0, 1.0, 9.5, 0.0)]  # fmt: skip
    trades, m = _hand(orders, close, P=2)
    a, b = trades.iloc[0], trades.iloc[1]
    assert (a["bars"], a["mfe"], a["mae"]) == (0, 0.0, 0.0)
    assert a["pnl"] == pytest.approx(-50 - 0.1 + 46 - 0.1)
    assert b["portfolio"] == 1 and b["mfe"] == pytest.approx(0.1)
    assert m["profit_factor"].tolist() == [0.0, math.inf]


def test_rounding_noise_of_the_running_sum_closes_the_trade():
    # 0.1 + 0.2 is not 0.3: the kernel's last qty (-0.3) closes a q the sum puts at 0.30000000000000004
    close = [[1.0], [1.0], [1.0], [1.0]]
    trades, m = _hand([(0, 0, 0, 0.1, 1.0, 0.0), (0, 1, 0, 0.2, 1.0, 0.0),
                       (0, 2, 0, -0.3, 1.0, 0.0)], close)  # fmt: skip
    assert len(trades) == 1 and trades.iloc[0]["exit_time"] == 2
    assert m["n_trades"][0] == 1
