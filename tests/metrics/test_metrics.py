"""compute_metrics against empyrical-reloaded, column by column."""

from __future__ import annotations

import numpy as np
import pytest
from _oracles import require_module

from admf_dask.metrics import RETURN_METRICS, compute_metrics

empyrical = require_module("empyrical")


def _empyrical(r: np.ndarray, ppy: float) -> dict[str, float]:
    kw = {"annualization": ppy}
    return {
        "total_return": empyrical.cum_returns_final(r),
        "annual_return": empyrical.annual_return(r, **kw),
        "annual_volatility": empyrical.annual_volatility(r, **kw),
        "sharpe": empyrical.sharpe_ratio(r, **kw),
        "sortino": empyrical.sortino_ratio(r, **kw),
        "max_drawdown": empyrical.max_drawdown(r),
        "calmar": empyrical.calmar_ratio(r, **kw),
    }


def _check(equity: np.ndarray, capital, ppy: float) -> None:
    got = compute_metrics(equity, capital, ppy)
    assert set(got) == set(RETURN_METRICS)
    caps = np.broadcast_to(np.asarray(capital, dtype=float), (equity.shape[1],))
    for j in range(equity.shape[1]):
        prices = np.concatenate([[caps[j]], equity[:, j]])
        r = empyrical.simple_returns(prices)
        want = _empyrical(r, ppy)
        for name, value in want.items():
            np.testing.assert_allclose(
                got[name][j], value, rtol=1e-10, atol=1e-14, err_msg=f"{name} column {j}"
            )


@pytest.mark.parametrize("seed", range(5))
def test_random_equity_matches_empyrical(seed):
    rng = np.random.default_rng(seed)
    T, P = int(rng.integers(2, 600)), 7
    r = rng.normal(0.0004, rng.uniform(0.001, 0.05, P), (T, P))
    capital = rng.uniform(1e3, 1e6, P) if seed % 2 else 1e5
    equity = np.asarray(capital) * np.cumprod(1 + r, axis=0)
    _check(equity, capital, float(rng.choice([252.0, 52.0, 12.0, 365.25])))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empyrical on a curve through 0
def test_edge_cases_match_empyrical():
    T = 40
    up = 1e5 * 2.0 ** np.arange(1, T + 1)  # exactly constant return: zero dispersion
    flat = np.full(T, 1e5)  # nothing ever happens
    down = 1e5 * 0.5 ** np.arange(1, T + 1)
    crash = np.concatenate([np.full(T // 2, 1e5), np.full(T - T // 2, 2e4)])
    negative = np.linspace(1e5, -5e4, T)  # a short book can lose more than its capital
    equity = np.column_stack([up, flat, down, crash, negative])
    _check(equity, 1e5, 252.0)
    _check(equity[:1], 1e5, 252.0)  # one bar: std-based metrics are nan
    got = compute_metrics(equity, 1e5, 252.0)
    assert np.isnan(got["calmar"][0]) and got["max_drawdown"][0] == 0.0
    assert got["sharpe"][0] == np.inf and np.isnan(got["sharpe"][1])
    assert got["max_drawdown"][3] == pytest.approx(-0.8)


def test_a_column_does_not_depend_on_its_neighbours():
    rng = np.random.default_rng(9)
    equity = 1e5 * np.cumprod(1 + rng.normal(0, 0.01, (300, 6)), axis=0)
    whole = compute_metrics(equity, 1e5, 252, traded=np.ones(6), gross_exposure_sum=np.ones(6))
    for j in range(6):
        alone = compute_metrics(
            equity[:, j], 1e5, 252, traded=np.ones(1), gross_exposure_sum=np.ones(1)
        )
        for name, v in alone.items():
            assert v[0] == whole[name][j], name


def test_engine_accumulators():
    equity = np.array([[100.0, 200.0], [110.0, 190.0], [90.0, 210.0]])
    got = compute_metrics(
        equity,
        100.0,
        252,
        traded=np.array([300.0, 0.0]),
        gross_exposure_sum=np.array([1.5, 0.0]),
        n_orders=np.array([3, 0]),
    )
    assert got["turnover"].tolist() == [3.0, 0.0]
    assert got["exposure"].tolist() == [0.5, 0.0]
    assert got["n_orders"].dtype == np.int64
