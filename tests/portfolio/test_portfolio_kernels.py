"""The numba kernel against the plain-Python reference of docs/ACCOUNTING.md, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from portfolio_cases import (
    as_lists,
    make_market,
    make_signals,
    make_vol,
    pack,
    params_strategy,
    random_params,
)
from reference import reference_portfolio

from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio.batch import simulate

CAPITAL = 10_000.0
RTOL = 1e-9


def _run_kernel(open_, close, sig, vol, params, chunks=None, record=True):
    mixes, fp, ip = pack(params)
    return simulate(
        open_, close, sig, vol[None], mixes, fp, ip, CAPITAL, chunks=chunks, record=record
    )


def _assert_matches_reference(open_, close, sig, vol, params, equity, cash, orders, state):
    for i, p in enumerate(params):
        ref = reference_portfolio(
            as_lists(open_), as_lists(close), as_lists(sig), p, CAPITAL, vol=as_lists(vol)
        )
        np.testing.assert_allclose(equity[:, i], ref["equity"], rtol=RTOL, atol=RTOL * CAPITAL)
        np.testing.assert_allclose(cash[:, i], ref["cash"], rtol=RTOL, atol=RTOL * CAPITAL)
        mine = orders.portfolio == i
        assert int(mine.sum()) == len(ref["orders"]) == int(state.n_orders[i])
        if ref["orders"]:
            t, s, qty, px, fee, why = zip(*ref["orders"], strict=True)
            np.testing.assert_array_equal(orders.time[mine], t)
            np.testing.assert_array_equal(orders.symbol[mine], s)
            np.testing.assert_allclose(orders.qty[mine], qty, rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(orders.price[mine], px, rtol=RTOL)
            np.testing.assert_allclose(orders.commission[mine], fee, rtol=RTOL, atol=1e-12)
            names = [K.REASON_NAMES[r] for r in orders.reason[mine]]
            assert names == list(why)
        np.testing.assert_allclose(state.q[i], ref["q"], rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(state.traded[i], ref["traded"], rtol=RTOL)
        np.testing.assert_allclose(state.gross_sum[i], ref["gross_sum"], rtol=RTOL, atol=1e-12)


@st.composite
def cases(draw):
    # long enough to cross the kernel's 64-bar cache blocks; S > 4 uses all 4 sum lanes + a tail
    T = draw(st.one_of(st.integers(1, 40), st.integers(60, 150)))
    S = draw(st.integers(1, 9))
    K_ = draw(st.integers(1, 3))
    P = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    params = draw(st.lists(params_strategy(K_), min_size=P, max_size=P))
    rng = np.random.default_rng(seed)
    sigma = draw(st.sampled_from([0.01, 0.05, 0.15]))
    open_, close = make_market(rng, T, S, sigma=sigma, gap=draw(st.sampled_from([0.0, 0.15, 0.4])))
    sig = make_signals(rng, T, S, K_, change=draw(st.sampled_from([0.05, 0.3, 0.9])))
    vol = make_vol(rng, T, S)
    return open_, close, sig, vol, params


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_kernel_equals_reference(case):
    open_, close, sig, vol, params = case
    equity, cash, orders, state = _run_kernel(open_, close, sig, vol, params)
    for r in sorted(set(orders.reason.tolist())):
        event(f"orders for reason {K.REASON_NAMES[r]}")  # --hypothesis-show-statistics
    _assert_matches_reference(open_, close, sig, vol, params, equity, cash, orders, state)


@settings(max_examples=60, deadline=None)
@given(cases(), st.data())
def test_chunking_and_batching_change_nothing(case, data):
    open_, close, sig, vol, params = case
    T = close.shape[0]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, T - 1)), max_size=5)))
    sizes = tuple(np.diff([0, *[c for c in cuts if c < T], T]))
    whole = _run_kernel(open_, close, sig, vol, params)
    chunked = _run_kernel(open_, close, sig, vol, params, chunks=sizes)
    for a, b in zip(whole[:2], chunked[:2], strict=True):
        np.testing.assert_array_equal(a, b)
    for f in ("portfolio", "time", "symbol", "qty", "price", "commission", "reason"):
        np.testing.assert_array_equal(getattr(whole[2], f), getattr(chunked[2], f))
    # each portfolio alone gives the same bits as inside the batch
    for i, p in enumerate(params):
        alone = _run_kernel(open_, close, sig, vol, [p], chunks=sizes)
        np.testing.assert_array_equal(alone[0][:, 0], whole[0][:, i])
        np.testing.assert_array_equal(alone[2].qty, whole[2].qty[whole[2].portfolio == i])


def _positions_by_bar(orders, i, T, S):
    q = np.zeros((T, S))
    mine = orders.portfolio == i
    np.add.at(q, (orders.time[mine], orders.symbol[mine]), orders.qty[mine])
    return np.cumsum(q, axis=0)


@pytest.mark.parametrize("seed", range(6))
def test_accounting_invariants(seed):
    rng = np.random.default_rng(seed)
    T, S, K_ = 120, 6, 2
    open_, close = make_market(rng, T, S, sigma=0.05, gap=0.2)
    sig = make_signals(rng, T, S, K_)
    vol = make_vol(rng, T, S)
    params = [random_params(rng, K_) for _ in range(8)]
    equity, cash, orders, state = _run_kernel(open_, close, sig, vol, params)
    last = np.full(S, np.nan)
    lc = K.carry_last_close(close, last)
    lc0 = np.nan_to_num(lc)
    assert orders.time.size == 0 or orders.time.min() >= 1  # nothing is decided before bar 0
    assert np.isfinite(open_[orders.time, orders.symbol]).all()  # no fill without a finite open
    for i in range(len(params)):
        q = _positions_by_bar(orders, i, T, S)
        assert not np.any((q != 0) & np.isnan(lc)), "a position in a never-priced symbol"
        np.testing.assert_allclose(
            cash[:, i] + (q * lc0).sum(axis=1), equity[:, i], rtol=1e-12, atol=1e-6
        )
        mine = orders.portfolio == i
        flows = orders.qty[mine] * orders.price[mine] + orders.commission[mine]
        np.testing.assert_allclose(CAPITAL - flows.sum(), cash[-1, i], rtol=1e-12, atol=1e-6)
        np.testing.assert_allclose(q[-1], state.q[i], atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_no_look_ahead(seed):
    """Changing signals or prices from bar t0 on changes nothing that happened before."""
    rng = np.random.default_rng(100 + seed)
    T, S, K_ = 60, 4, 2
    open_, close = make_market(rng, T, S, gap=0.1)
    sig = make_signals(rng, T, S, K_)
    vol = make_vol(rng, T, S)
    params = [random_params(rng, K_) for _ in range(5)]
    base = _run_kernel(open_, close, sig, vol, params)
    t0 = int(rng.integers(5, T - 5))
    sig2, vol2 = sig.copy(), vol.copy()
    sig2[t0:] = make_signals(rng, T - t0, S, K_)
    vol2[t0:] = make_vol(rng, T - t0, S)
    open2, close2 = open_.copy(), close.copy()
    open2[t0 + 1 :] *= 1.5
    close2[t0 + 1 :] *= 0.5
    other = _run_kernel(open2, close2, sig2, vol2, params)
    # equity up to t0 included; a signal at t0 only fills at t0+1
    np.testing.assert_array_equal(base[0][: t0 + 1], other[0][: t0 + 1])
    before = base[2].time <= t0
    before2 = other[2].time <= t0
    np.testing.assert_array_equal(base[2].qty[before], other[2].qty[before2])
    np.testing.assert_array_equal(base[2].time[before], other[2].time[before2])


def test_order_waits_for_a_price_and_last_target_never_fills():
    T, S = 6, 1
    open_ = np.array([[10.0], [np.nan], [np.nan], [12.0], [13.0], [14.0]])
    close = np.array([[10.0], [11.0], [np.nan], [12.0], [13.0], [14.0]])
    sig = np.zeros((T, S, 1))
    sig[0] = 1.0  # target set at bar 0's close
    sig[5] = 0.0
    sig[1:5] = 1.0
    sig[5] = -1.0  # changes at the last bar: never fills
    p = dict(random_params(np.random.default_rng(0), 1))
    p.update(
        weights=[1.0],
        sizing="fixed",
        position_weight=0.5,
        max_position=1.0,
        max_gross=1.0,
        stop_loss=None,
        max_drawdown=None,
        rebalance_band=0.0,
        commission=0.0,
        commission_fixed=0.0,
        slippage_bps=0.0,
        allow_short=True,
    )
    equity, cash, orders, state = _run_kernel(open_, close, sig, np.ones((T, S)), [p])
    assert orders.time.tolist() == [3]  # waited through two bars without an open
    assert orders.qty[0] == pytest.approx(0.5 * CAPITAL / 10.0)
    assert state.target[0, 0] < 0 and state.q[0, 0] > 0  # last bar's target is left pending


def test_stop_releases_only_when_signal_changes():
    # long, price falls through the stop at bar 2, signal constant until bar 5
    close = np.array([100.0, 100.0, 80.0, 70.0, 70.0, 70.0, 70.0, 70.0])[:, None]
    open_ = close.copy()
    T = close.shape[0]
    sig = np.ones((T, 1, 1))
    sig[5:, 0, 0] = 0.5
    p = {
        "weights": [1.0],
        "allow_short": False,
        "sizing": "fixed",
        "position_weight": 1.0,
        "target_vol": 0.1,
        "max_position": 1.0,
        "max_gross": 1.0,
        "stop_loss": 0.1,
        "max_drawdown": None,
        "rebalance_band": 0.0,
        "commission": 0.0,
        "commission_fixed": 0.0,
        "slippage_bps": 0.0,
    }
    _, _, orders, _ = _run_kernel(open_, close, sig, np.ones((T, 1)), [p])
    # open at 1, stop marked at 2 → close at 3; signal changes at 5 → reopen at 6
    assert orders.time.tolist() == [1, 3, 6]
    assert [K.REASON_NAMES[r] for r in orders.reason] == ["signal", "stop", "signal"]


def test_halt_flattens_everything_for_good():
    close = np.array([100.0, 100.0, 60.0, 120.0, 130.0, 140.0])[:, None].repeat(2, axis=1)
    open_ = close.copy()
    T = close.shape[0]
    sig = np.ones((T, 2, 1))
    p = {
        "weights": [1.0],
        "allow_short": False,
        "sizing": "fixed",
        "position_weight": 0.5,
        "target_vol": 0.1,
        "max_position": 1.0,
        "max_gross": 1.0,
        "stop_loss": None,
        "max_drawdown": 0.2,
        "rebalance_band": 0.0,
        "commission": 0.0,
        "commission_fixed": 0.0,
        "slippage_bps": 0.0,
    }
    equity, _, orders, state = _run_kernel(open_, close, sig, np.ones((T, 2)), [p])
    assert orders.time.tolist() == [1, 1, 3, 3]
    assert [K.REASON_NAMES[r] for r in orders.reason[2:]] == ["halt", "halt"]
    assert bool(state.halted[0]) and np.all(state.q == 0)
    assert np.all(equity[3:, 0] == equity[3, 0])


def test_record_false_counts_the_same():
    rng = np.random.default_rng(5)
    open_, close = make_market(rng, 50, 3)
    sig = make_signals(rng, 50, 3, 2)
    vol = make_vol(rng, 50, 3)
    params = [random_params(rng, 2) for _ in range(3)]
    a = _run_kernel(open_, close, sig, vol, params, record=True)
    b = _run_kernel(open_, close, sig, vol, params, record=False)
    np.testing.assert_array_equal(a[0], b[0])
    assert len(b[2]) == 0 and int(b[3].n_orders.sum()) == len(a[2])


def test_reused_buffers_change_nothing():
    """Steps through one `Scratch` (what the tasks do) give the numbers of fresh arrays and reuse
    the buffers of the previous step."""
    from admf_dask.portfolio.batch import BatchState, Scratch, step

    rng = np.random.default_rng(11)
    T, S = 120, 5
    open_, close = make_market(rng, T, S)
    sig = make_signals(rng, T, S, 2)
    vol = make_vol(rng, T, S)[None]
    mixes, fp, ip = pack([random_params(rng, 2) for _ in range(7)])
    fresh = BatchState.new(7, S, 1e4)
    pooled = BatchState.new(7, S, 1e4)
    buffers = Scratch()
    seen = []
    for a, z in ((0, 60), (60, 120)):
        args = (open_[a:z], close[a:z], sig[a:z], vol[:, a:z], mixes, fp, ip)
        fresh, e1, c1, o1 = step(fresh, *args, copy=False)
        pooled, e2, c2, o2 = step(pooled, *args, copy=False, buffers=buffers)
        np.testing.assert_array_equal(e1, e2)
        np.testing.assert_array_equal(c1, c2)
        assert len(o1) == len(o2) > 0
        for name in K.ORDER_FIELDS:  # field by field: the aligned records have padding bytes
            np.testing.assert_array_equal(getattr(o1, name), getattr(o2, name))
        seen.append(e2)
    assert np.shares_memory(seen[0], seen[1])  # the second step wrote into the first's buffer
