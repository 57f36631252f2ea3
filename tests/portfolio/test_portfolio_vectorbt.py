"""Cross-check with vectorbt 1.2.0 on long-only cases with fees and slippage (docs/BENCHMARKS.md).

vectorbt is set up to follow §2: orders are the weights where they changed, shifted one bar,
``size_type="targetpercent"`` at the open, valued at the previous close, one cash-sharing group.
No gaps (vectorbt drops an order without a price instead of letting it wait) and cash never runs
out (vectorbt would shrink the order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _oracles import require_module

from admf_dask.portfolio.batch import simulate

vbt = require_module("vectorbt")

CAPITAL = 100_000.0


def _weights(sig, mix, pw, mp, mg):
    # §2 step 4 for long-only fixed sizing, written with numpy
    u = np.clip(np.einsum("tsk,k->ts", sig, mix), -1, 1)
    u = np.maximum(u, 0.0)
    w = np.clip(u * pw, -mp, mp)
    gross = np.abs(w).sum(axis=1, keepdims=True)
    return np.where(gross > mg, w * (mg / np.where(gross > 0, gross, 1.0)), w)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_only_with_fees_matches_vectorbt(seed):
    rng = np.random.default_rng(seed)
    T, S, K_ = 250, 5, 2
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (T, S)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.005, (T, S)))
    sig = np.sign(rng.normal(size=(T, S, K_))) * (rng.random((T, S, K_)) < 0.8)
    sig = np.repeat(sig[::5], 5, axis=0)[:T]  # hold each signal a few bars
    cases = [
        # (mix, position_weight, max_position, max_gross, commission, fixed, bps)
        ((1.0, 0.0), 0.18, 1.0, 0.9, 0.001, 0.0, 5.0),
        ((0.5, 0.5), 0.3, 0.2, 0.85, 0.0005, 1.0, 2.0),
        ((1.0, 1.0), 0.25, 0.3, 0.6, 0.002, 3.0, 10.0),
    ]
    from admf_dask.portfolio import _kernels as K

    P = len(cases)
    mixes = np.array([c[0] for c in cases])
    fp = np.zeros((P, K.N_FPARAMS))
    for i, (_, pw, mp, mg, comm, fixed, bps) in enumerate(cases):
        fp[i, [K.F_POSITION_WEIGHT, K.F_MAX_POSITION, K.F_MAX_GROSS]] = pw, mp, mg
        fp[i, [K.F_COMMISSION, K.F_COMMISSION_FIXED, K.F_SLIPPAGE_BPS]] = comm, fixed, bps
        fp[i, [K.F_STOP_LOSS, K.F_MAX_DRAWDOWN, K.F_TARGET_VOL]] = np.nan, np.nan, 0.1
        fp[i, [K.F_TAKE_PROFIT, K.F_TRAILING_STOP]] = np.nan  # exit rules off
    ip = np.zeros((P, K.N_IPARAMS), dtype=np.int64)
    ip[:, K.I_MIX] = np.arange(P)
    ip[:, K.I_VOL] = -1
    equity, cash, orders, state = simulate(open_, close, sig, None, mixes, fp, ip, CAPITAL)

    idx = pd.date_range("2020-01-01", periods=T, freq="D")
    close_df = pd.DataFrame(close, index=idx)
    for i, (mix, pw, mp, mg, comm, fixed, bps) in enumerate(cases):
        w = _weights(sig, np.array(mix), pw, mp, mg)
        prev = np.vstack([np.zeros((1, S)), w[:-1]])
        size = pd.DataFrame(np.where(w != prev, w, np.nan), index=idx).shift(1)
        pf = vbt.Portfolio.from_orders(
            close_df,
            size=size,
            size_type="targetpercent",
            price=pd.DataFrame(open_, index=idx),
            val_price=close_df.shift(1),
            fees=comm,
            fixed_fees=fixed,
            slippage=bps / 1e4,
            init_cash=CAPITAL,
            group_by=np.zeros(S, dtype=int),
            cash_sharing=True,
            call_seq="auto",
            freq="1D",
        )
        np.testing.assert_allclose(equity[:, i], pf.value().to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(cash[:, i], pf.cash().to_numpy(), rtol=1e-9, atol=1e-6)
        rec = pf.orders.records
        mine = orders.portfolio == i
        assert len(rec) == int(mine.sum()) > 10
        vb = pd.DataFrame(
            {
                "t": rec["idx"],
                "s": rec["col"],
                "qty": np.where(rec["side"] == 0, rec["size"], -rec["size"]),
                "px": rec["price"],
                "fee": rec["fees"],
            }
        ).sort_values(["t", "s"])
        np.testing.assert_array_equal(vb["t"], orders.time[mine])
        np.testing.assert_array_equal(vb["s"], orders.symbol[mine])
        np.testing.assert_allclose(vb["qty"], orders.qty[mine], rtol=1e-9)
        np.testing.assert_allclose(vb["px"], orders.price[mine], rtol=1e-12)
        np.testing.assert_allclose(vb["fee"], orders.commission[mine], rtol=1e-9)
        # exposure: vectorbt's gross exposure, averaged over bars
        np.testing.assert_allclose(state.gross_sum[i] / T, pf.gross_exposure().mean(), rtol=1e-9)
