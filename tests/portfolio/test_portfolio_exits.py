"""Exit rules and position limits (docs/ACCOUNTING.md, exits): the kernel against the reference, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from portfolio_cases import (
    PARAM_DEFAULTS,
    as_lists,
    exit_params_strategy,
    make_high_low,
    make_market,
    make_signals,
    make_vol,
    pack,
)
from reference import reference_portfolio

from admf_dask.config import load_pipeline
from admf_dask.errors import ConfigError
from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio.batch import BatchState, simulate, step

CAPITAL = 10_000.0
RTOL = 1e-9


def _run(market, params, chunks=None):
    open_, high, low, close, sig, vol = market
    mixes, fp, ip = pack(params)
    return simulate(
        open_, close, sig, vol[None], mixes, fp, ip, CAPITAL, chunks=chunks, high=high, low=low
    )


def _check(market, params, out):
    open_, high, low, close, sig, vol = market
    equity, cash, orders, state = out
    for i, p in enumerate(params):
        ref = reference_portfolio(
            as_lists(open_),
            as_lists(close),
            as_lists(sig),
            p,
            CAPITAL,
            vol=as_lists(vol),
            high=as_lists(high),
            low=as_lists(low),
        )
        np.testing.assert_allclose(equity[:, i], ref["equity"], rtol=RTOL, atol=RTOL * CAPITAL)
        np.testing.assert_allclose(cash[:, i], ref["cash"], rtol=RTOL, atol=RTOL * CAPITAL)
        mine = orders.portfolio == i
        assert int(mine.sum()) == len(ref["orders"]) == int(state.n_orders[i])
        if ref["orders"]:
            # within a bar: the fills at the open, then the intrabar exits (both in symbol order);
            # the kernel's records are sorted by (time, symbol) stably, so sort the same way
            rows = sorted(ref["orders"], key=lambda o: (o[0], o[1]))
            t, s, qty, px, fee, why = zip(*rows, strict=True)
            np.testing.assert_array_equal(orders.time[mine], t)
            np.testing.assert_array_equal(orders.symbol[mine], s)
            np.testing.assert_allclose(orders.qty[mine], qty, rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(orders.price[mine], px, rtol=RTOL)
            np.testing.assert_allclose(orders.commission[mine], fee, rtol=RTOL, atol=1e-12)
            assert [K.REASON_NAMES[r] for r in orders.reason[mine]] == list(why)
        np.testing.assert_allclose(state.q[i], ref["q"], rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(state.traded[i], ref["traded"], rtol=RTOL)


@st.composite
def cases(draw):
    T = draw(st.one_of(st.integers(1, 30), st.integers(60, 110)))
    S = draw(st.integers(1, 7))
    K_ = draw(st.integers(1, 2))
    P = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    params = draw(st.lists(exit_params_strategy(K_), min_size=P, max_size=P))
    rng = np.random.default_rng(seed)
    sigma = draw(st.sampled_from([0.01, 0.05, 0.15]))
    open_, close = make_market(rng, T, S, sigma=sigma, gap=draw(st.sampled_from([0.0, 0.15, 0.4])))
    high, low = make_high_low(
        rng, open_, close, sigma=sigma, missing=draw(st.sampled_from([0, 0.1]))
    )
    sig = make_signals(rng, T, S, K_, change=draw(st.sampled_from([0.05, 0.3, 0.9])))
    vol = make_vol(rng, T, S)
    return (open_, high, low, close, sig, vol), params


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_kernel_equals_reference_with_exits(case):
    market, params = case
    out = _run(market, params)
    for r in sorted(set(out[2].reason.tolist())):
        event(f"orders for reason {K.REASON_NAMES[r]}")  # --hypothesis-show-statistics
    for p in params:
        event(f"exit_on {p['exit_on']}")
    _check(market, params, out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.data())
def test_exits_do_not_depend_on_chunks_or_batch(case, data):
    market, params = case
    T = market[0].shape[0]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, T - 1)), max_size=4)))
    sizes = tuple(np.diff([0, *[c for c in cuts if c < T], T]))
    whole = _run(market, params)
    chunked = _run(market, params, chunks=sizes)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[2].records, chunked[2].records)
    for i, p in enumerate(params):
        alone = _run(market, [p], chunks=sizes)
        np.testing.assert_array_equal(alone[0][:, 0], whole[0][:, i])


def _market(seed, T=80, S=6, sigma=0.05):
    rng = np.random.default_rng(seed)
    open_, close = make_market(rng, T, S, sigma=sigma, gap=0.15)
    high, low = make_high_low(rng, open_, close, sigma=sigma, missing=0.05)
    return open_, high, low, close, make_signals(rng, T, S, 2), make_vol(rng, T, S)


def _params(**kw):
    return {**PARAM_DEFAULTS, "weights": [1.0, 0.5], **kw}


@pytest.mark.parametrize("seed", range(4))
def test_intrabar_exit_prices_lie_within_the_bar(seed):
    market = _market(seed)
    open_, high, low = market[:3]
    params = [
        _params(
            exit_on="intrabar",
            allow_short=short,
            stop_loss=0.04,
            trailing_stop=0.06,
            take_profit=0.05,
            slippage_bps=bps,
        )
        for short in (False, True)
        for bps in (0.0, 25.0)
    ]
    _, _, orders, _ = _run(market, params)
    exits = np.isin(orders.reason, [K.REASON_STOP, K.REASON_TRAILING, K.REASON_TAKE_PROFIT])
    assert exits.sum() > 10
    t, s = orders.time[exits], orders.symbol[exits]
    bps = np.array([p["slippage_bps"] for p in params])[orders.portfolio[exits]]
    raw = orders.price[exits] / (1.0 + np.sign(orders.qty[exits]) * bps / 1e4)
    assert np.all(raw >= low[t, s] * (1 - 1e-12)) and np.all(raw <= high[t, s] * (1 + 1e-12))
    assert np.isfinite(open_[t, s]).all()


@pytest.mark.parametrize("seed", range(4))
def test_max_positions_caps_the_targets_at_every_close(seed):
    market = _market(seed, S=9)
    open_, high, low, close, sig, vol = market
    params = [
        _params(max_positions=m, allow_short=short, exit_on=mode, stop_loss=0.05)
        for m in (1, 3)
        for short in (False, True)
        for mode in ("close", "intrabar")
    ]
    mixes, fp, ip = pack(params)
    state = BatchState.new(len(params), close.shape[1], CAPITAL)
    most = 0
    for t in range(close.shape[0]):
        state, *_ = step(
            state,
            open_[t : t + 1],
            close[t : t + 1],
            sig[t : t + 1],
            vol[None, t : t + 1],
            mixes,
            fp,
            ip,
            high=high[t : t + 1],
            low=low[t : t + 1],
        )
        n_targets = (state.target != 0).sum(axis=1)
        assert np.all(n_targets <= ip[:, K.I_MAX_POSITIONS]), t
        most = max(most, int(n_targets.max()))
    # the cap binds (positions may still exceed it for a while: an exit waits for an open)
    assert most == 3


def test_rules_that_are_off_change_nothing():
    market = _market(11)
    base = _params(stop_loss=0.05, allow_short=True, commission=1e-3, rebalance_band=0.01)
    same = [
        base,
        {**base, "exit_on": "intrabar", "stop_loss": None},  # no level: nothing to test intrabar
        {**base, "max_positions": 6},  # as many as symbols
    ]
    plain = {**base, "stop_loss": None}
    eq, _, orders, _ = _run(market, same + [plain])
    np.testing.assert_array_equal(eq[:, 0], eq[:, 2])
    np.testing.assert_array_equal(eq[:, 1], eq[:, 3])
    for a, b in ((0, 2), (1, 3)):
        ra, rb = (orders.records[orders.portfolio == i] for i in (a, b))
        for f in ("time", "symbol", "qty", "price", "reason"):
            np.testing.assert_array_equal(ra[f], rb[f])


def _one(open_, high, low, close, sig, **kw):
    T = close.shape[0]
    market = (open_, high, low, close, sig, np.ones((T, close.shape[1])))
    p = _params(weights=[1.0], position_weight=1.0, **kw)
    out = _run(market, [p])
    _check(market, [p], out)
    o = out[2]
    reasons = [K.REASON_NAMES[r] for r in o.reason]
    prices = [round(x, 9) for x in o.price.tolist()]
    return list(zip(o.time.tolist(), prices, reasons, strict=True))


def _col(*xs):
    return np.array(xs, dtype=float)[:, None]


def test_intrabar_fill_rules():
    sig = np.ones((5, 1, 1))
    close = _col(100, 100, 100, 100, 100)
    # gap down through the stop at bar 2's open: exit at that open
    o = _col(100, 100, 85, 100, 100)
    orders = _one(o, o + 1, o - 1, close, sig, exit_on="intrabar", stop_loss=0.1)
    assert orders == [(1, 100.0, "signal"), (2, 85.0, "stop")]
    # stop and take-profit both touched: the stop (levels 90 / 110)
    h, lw = _col(101, 101, 115, 101, 101), _col(99, 99, 85, 99, 99)
    orders = _one(close, h, lw, close, sig, exit_on="intrabar", stop_loss=0.1, take_profit=0.1)
    assert orders == [(1, 100.0, "signal"), (2, 90.0, "stop")]
    # a position opened at this open exits in the same bar at the take-profit level
    h = _col(101, 112, 101, 101, 101)
    orders = _one(close, h, close - 1, close, sig, exit_on="intrabar", take_profit=0.1)
    assert orders == [(1, 100.0, "signal"), (1, 110.0, "take_profit")]
    # trailing level from the extreme before this bar: high 120 at bar 2 → level 108 at bar 3
    o = _col(100, 100, 115, 115, 115)
    h, lw = _col(101, 101, 120, 125, 116), _col(99, 99, 110, 100, 99)
    orders = _one(o, h, lw, o, sig, exit_on="intrabar", trailing_stop=0.1)
    assert orders == [(1, 100.0, "signal"), (3, 108.0, "trailing")]


def test_close_rules_and_time():
    sig = np.ones((9, 1, 1))
    close = _col(100, 100, 104, 112, 100, 100, 100, 100, 100)
    orders = _one(close, close, close, close, sig, take_profit=0.1)
    assert orders == [(1, 100.0, "signal"), (4, 100.0, "take_profit")]
    orders = _one(close, close, close, close, sig, trailing_stop=0.05, take_profit=0.5)
    assert orders == [(1, 100.0, "signal"), (5, 100.0, "trailing")]  # 100 <= 112 * 0.95
    orders = _one(close, close, close, close, sig, max_holding=2)
    assert orders == [(1, 100.0, "signal"), (3, 112.0, "time")]  # age 2 at bar 2's close
    # a stop releases when u changes, then the position reopens
    sig[4:] = 0.5
    orders = _one(close, close, close, close, sig, max_holding=2)
    assert [(o[0], o[2]) for o in orders] == [
        (1, "signal"),
        (3, "time"),
        (5, "signal"),
        (7, "time"),
    ]


_BASE = {
    "data": {"source": "synthetic", "symbols": 3, "bars": 60},
    "features": {"sma_5": {"kind": "sma", "window": 5}, "sma_20": {"kind": "sma", "window": 20}},
    "strategies": {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}},
}


@pytest.mark.parametrize(
    ("portfolios", "where"),
    [
        ({"take_profit": 0}, "take_profit"),
        ({"take_profit": -0.1}, "take_profit"),
        ({"trailing_stop": 1.0}, "trailing_stop"),
        ({"trailing_stop": 0}, "trailing_stop"),
        ({"max_holding": 0}, "max_holding"),
        ({"max_holding": 2.5}, "max_holding"),
        ({"max_positions": 0}, "max_positions"),
        ({"exit_on": "intrabr"}, "exit_on"),
        ({"grid": {"exit_on": ["close", "open"]}}, "exit_on"),
        ({"grid": {"max_holding": [5, 0]}}, "max_holding"),
        ({"grid": {"take_proft": [0.1]}}, "take_profit"),
        ({"grid": {"trailing": [0.1]}}, "trailing_stop"),
    ],
)
def test_bad_exit_keys_are_one_line_config_errors(portfolios, where):
    with pytest.raises(ConfigError) as err:
        load_pipeline({**_BASE, "portfolios": portfolios})
    line = str(err.value)
    assert "\n" not in line and where in line
