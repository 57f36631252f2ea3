"""An outsider's check of the metrics (DESIGN §2 end, §2c metrics, benchmark) and the research
statistics (§2d: PSR / DSR, PBO by CSCV, walk-forward selection) on real bokeh-sampledata
prices, through `ad.run`, `ad.open_run` and the run folder's ``research.json``.

References: empyrical (the contract names its definitions) and the formulas of Bailey & López
de Prado (PSR, deflated Sharpe ratio) and Bailey, Borwein, López de Prado & Zhu (CSCV / PBO),
written here from the contract text with numpy / scipy.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _oracles import require_module
from scipy import stats

import admf_dask as ad

empyrical = require_module("empyrical")

START, END = "2010-06-01", "2013-03-01"
CAPITAL = 100000.0
EULER = 0.5772156649


def _signals(times, symbols, seed: int, p: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T, S = len(times), len(symbols)
    sig = np.empty((T, S))
    cur = rng.choice([-1.0, 0.0, 1.0], S)
    for t in range(T):
        ch = rng.random(S) < p
        cur = np.where(ch, rng.choice([-1.0, 0.0, 1.0], S), cur)
        sig[t] = cur
    return pd.DataFrame(
        {
            "time": np.repeat(times, S),
            "symbol": np.tile(np.asarray(symbols, dtype=object), T),
            "signal": sig.ravel(),
        }
    )


@pytest.fixture(scope="module")
def run(client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract_research")
    d = ad.load_market_data({"source": "bokeh_stocks", "start": START, "end": END})
    times, symbols = d.time.values, [str(s) for s in d.symbol.values]
    strategies = {}
    for k in range(5):
        _signals(times, symbols, 100 + k, 0.05 + 0.05 * k).to_parquet(tmp / f"s{k}.parquet")
        strategies[f"s{k}"] = {"kind": "signals", "path": str(tmp / f"s{k}.parquet")}
    flat = _signals(times, symbols, 1, 0.1)
    flat["signal"] = 0.0  # never trades: constant equity, SR not finite
    flat.to_parquet(tmp / "flat.parquet")
    strategies["flat"] = {"kind": "signals", "path": str(tmp / "flat.parquet")}
    cfg = {
        "name": "contract-research",
        "data": {"source": "bokeh_stocks", "start": START, "end": END, "chunks": {"time": 128}},
        "strategies": strategies,
        "portfolios": {
            "capital": CAPITAL,
            "batch_size": 4,
            "benchmark": "FB",  # lists in 2012: b is NaN before, a case the metric must skip
            "grid": {"strategy": [*strategies], "allow_short": [False, True]},
        },
        "execution": {"commission": 0.0005, "commission_fixed": 0.0, "slippage_bps": 1},
        "research": {"cscv_blocks": 8, "walk_forward": {"train": 120, "test": 50}},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(tmp / "run"), "report": False},
    }
    res = ad.run(cfg, client, out=tmp / "run")
    close = d["close"].values
    return {"res": res, "path": tmp / "run", "close": close, "symbols": symbols, "times": times}


def _returns(eq: np.ndarray) -> np.ndarray:
    prev = np.concatenate([[CAPITAL], eq[:-1]])
    return eq / prev - 1.0


def _sr(r: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        s = np.mean(r) / np.std(r, ddof=1)
    return float(s) if np.isfinite(s) else -math.inf


def _all_returns(run) -> np.ndarray:
    eq = run["res"].equity.values  # (time, portfolio)
    return np.stack([_returns(eq[:, p]) for p in range(eq.shape[1])], axis=1)


def _research(run) -> dict:
    return json.loads((Path(run["path"]) / "research.json").read_text())


# ----------------------------------------------------------------------------- metrics


def test_metrics_are_empyricals(run):
    res = run["res"]
    m = res.metrics
    eq = res.equity.values
    for p in range(eq.shape[1]):
        r = pd.Series(_returns(eq[:, p]))
        want = {
            "total_return": eq[-1, p] / CAPITAL - 1,
            "annual_return": empyrical.annual_return(r, annualization=252),
            "annual_volatility": empyrical.annual_volatility(r, annualization=252),
            "sharpe": empyrical.sharpe_ratio(r, annualization=252),
            "sortino": empyrical.sortino_ratio(r, annualization=252),
            "max_drawdown": empyrical.max_drawdown(r),
            "calmar": empyrical.calmar_ratio(r, annualization=252),
        }
        for k, v in want.items():
            got = float(m.loc[p, k])
            if np.isfinite(v):
                assert math.isclose(got, v, rel_tol=1e-9, abs_tol=1e-12), (p, k, got, v)
            else:
                assert not np.isfinite(got) or got == v, (p, k, got, v)


def test_benchmark_metrics(run):
    res = run["res"]
    m = res.metrics
    fb = run["symbols"].index("FB")
    c = run["close"][:, fb]
    b = np.full(c.shape, np.nan)
    b[1:] = c[1:] / c[:-1] - 1.0  # NaN where either close is missing
    eq = res.equity.values
    for p in range(eq.shape[1]):
        r = _returns(eq[:, p])
        alpha, beta = empyrical.alpha_beta(pd.Series(r), pd.Series(b), annualization=252)
        ok = np.isfinite(r) & np.isfinite(b)
        a = r[ok] - b[ok]
        te = np.std(a, ddof=1) * math.sqrt(252)
        ir = np.mean(a) / np.std(a, ddof=1) * math.sqrt(252)
        for k, v in (
            ("alpha", alpha),
            ("beta", beta),
            ("tracking_error", te),
            ("information_ratio", ir),
        ):
            got = float(m.loc[p, k])
            assert math.isclose(got, v, rel_tol=1e-7, abs_tol=1e-12), (p, k, got, v)


def test_trade_metrics(run):
    res = run["res"]
    m = res.metrics
    trades = res.trades()
    for p in range(res.equity.sizes["portfolio"]):
        t = trades[trades["portfolio"] == p]
        closed = t[t["exit_time"].notna()]
        assert int(m.loc[p, "n_trades"]) == len(t), p
        if closed.empty:
            for k in ("win_rate", "profit_factor", "expectancy", "avg_bars"):
                assert math.isnan(float(m.loc[p, k])), (p, k)
            continue
        pnl = closed["pnl"].to_numpy()
        pos, neg = pnl[pnl > 0].sum(), pnl[pnl < 0].sum()
        want = {
            "win_rate": float(np.mean(pnl > 0)),
            "profit_factor": pos / abs(neg) if neg < 0 else math.inf,
            "expectancy": float(np.mean(pnl)),
            "avg_bars": float(closed["bars"].mean()),
        }
        for k, v in want.items():
            got = float(m.loc[p, k])
            assert math.isclose(got, v, rel_tol=1e-9, abs_tol=1e-9), (p, k, got, v)


def test_flat_portfolio_has_no_trades_and_constant_equity(run):
    res = run["res"]
    strat = res.equity.coords["strategy"].values
    for p in np.flatnonzero(strat == "flat"):
        np.testing.assert_array_equal(res.equity.values[:, p], CAPITAL)
        assert int(res.metrics.loc[p, "n_trades"]) == 0
        assert int(res.metrics.loc[p, "n_orders"]) == 0


# ----------------------------------------------------------------------------- §2d


def _psr(r: np.ndarray, sr_star: float) -> float:
    sr = np.mean(r) / np.std(r, ddof=1)
    g3 = stats.skew(r, bias=True)
    g4 = stats.kurtosis(r, fisher=False, bias=True)
    den = math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return float(stats.norm.cdf((sr - sr_star) * math.sqrt(len(r) - 1) / den))


def test_psr_dsr(run):
    R = _all_returns(run)
    srs = np.array([_sr(R[:, p]) for p in range(R.shape[1])])
    fin = np.isfinite(srs)
    N = int(fin.sum())
    V = float(np.var(srs[fin], ddof=1))
    sr0 = math.sqrt(V) * (
        (1 - EULER) * stats.norm.ppf(1 - 1 / N) + EULER * stats.norm.ppf(1 - 1 / (N * math.e))
    )
    ds = xr.open_zarr(Path(run["path"]) / "results.zarr")
    m = run["res"].metrics
    summary = _research(run)
    assert summary["dsr"]["n"] == N
    assert math.isclose(summary["dsr"]["sr0"], sr0, rel_tol=1e-9)
    assert math.isclose(summary["dsr"]["var_sr"], V, rel_tol=1e-9)
    for p in np.flatnonzero(fin):
        want_psr, want_dsr = _psr(R[:, p], 0.0), _psr(R[:, p], sr0)
        for got in (float(ds["psr"].values[p]), float(m.loc[p, "psr"])):
            assert math.isclose(got, want_psr, rel_tol=1e-9, abs_tol=1e-14), (p, got, want_psr)
        for got in (float(ds["dsr"].values[p]), float(m.loc[p, "dsr"])):
            assert math.isclose(got, want_dsr, rel_tol=1e-9, abs_tol=1e-14), (p, got, want_dsr)
    best = int(np.argmax(srs))
    assert summary["best"]["portfolio"] == best


def _pbo(R: np.ndarray, blocks: int) -> dict:
    T, P = R.shape
    parts = np.array_split(np.arange(T), blocks)
    lam, loss = [], []
    for combo in itertools.combinations(range(blocks), blocks // 2):
        ins = np.concatenate([parts[i] for i in combo])
        oos = np.concatenate([parts[i] for i in range(blocks) if i not in combo])
        is_sr = np.array([_sr(R[ins, p]) for p in range(P)])
        oos_sr = np.array([_sr(R[oos, p]) for p in range(P)])
        n_star = int(np.argmax(is_sr))  # first on ties
        rank = stats.rankdata(oos_sr, method="average")[n_star]
        w = rank / (P + 1)
        lam.append(math.log(w / (1 - w)))
        loss.append(oos_sr[n_star] < 0)
    lam = np.array(lam)
    return {
        "pbo": float(np.mean(lam <= 0)),
        "median_logit": float(np.median(lam)),
        "prob_oos_loss": float(np.mean(loss)),
        "logits": lam,
        "combinations": len(lam),
    }


def test_pbo_cscv(run):
    R = _all_returns(run)
    want = _pbo(R, 8)
    got = _research(run)["pbo"]
    assert got["cscv_blocks"] == 8 and got["combinations"] == want["combinations"] == 70
    np.testing.assert_allclose(np.asarray(got["logits"], float), want["logits"], rtol=1e-12)
    for k in ("pbo", "median_logit", "prob_oos_loss"):
        assert math.isclose(got[k], want[k], rel_tol=1e-12, abs_tol=1e-15), (k, got[k], want[k])


def _walk_forward(R: np.ndarray, train: int, test: int, anchored: bool):
    T, P = R.shape
    windows, path = [], np.full(T, np.nan)
    k = 0
    while k * test + train < T:
        a = 0 if anchored else k * test
        b = k * test + train
        c, d = b, min(b + test, T)
        is_sr = [_sr(R[a:b, p]) for p in range(P)]
        sel = int(np.argmax(is_sr))
        windows.append((a, b, c, d, sel))
        path[c:d] = R[c:d, sel]
        k += 1
    return windows, path


@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward(run, anchored, tmp_path):
    from admf_dask.pipeline.research import research

    path = Path(run["path"])
    if anchored:  # recompute on a copy of the finished run
        import shutil

        path = Path(shutil.copytree(path, tmp_path / "run"))
        research(path, ["research.walk_forward={train: 120, test: 50, anchored: true}"])
    R = _all_returns(run)
    windows, rpath = _walk_forward(R, 120, 50, anchored)
    wf = json.loads((path / "research.json").read_text())["walk_forward"]
    assert wf["anchored"] is anchored
    got = [
        (w["is_start"], w["is_end"], w["oos_start"], w["oos_end"], w["portfolio"])
        for w in wf["windows"]
    ]
    assert got == windows
    first = windows[0][2]
    want_eq = CAPITAL * np.cumprod(1 + rpath[first:])
    ds = xr.open_zarr(path / "results.zarr")
    wfo = ds["wfo_equity"].values
    assert np.isnan(wfo[:first]).all()
    np.testing.assert_allclose(wfo[first:], want_eq, rtol=1e-10)
    r = pd.Series(rpath[first:])
    assert math.isclose(
        wf["metrics"]["sharpe"], empyrical.sharpe_ratio(r, annualization=252), rel_tol=1e-9
    )
    assert math.isclose(wf["metrics"]["total_return"], want_eq[-1] / CAPITAL - 1, rel_tol=1e-9)


def test_dsr_is_nan_with_one_finite_sharpe(run, client, tmp_path):
    """§2d: N = portfolios with a finite SR; dsr is NaN when N < 2 (psr stays defined)."""
    cfg = {
        "name": "contract-research-one",
        "data": {"source": "bokeh_stocks", "start": "2012-06-01", "end": END},
        "strategies": {
            "s0": {"kind": "signals", "path": str(Path(run["path"]).parent / "s0.parquet")},
            "flat": {"kind": "signals", "path": str(Path(run["path"]).parent / "flat.parquet")},
        },
        "portfolios": {"capital": CAPITAL, "batch_size": 2, "grid": {"strategy": ["s0", "flat"]}},
        "research": {"cscv_blocks": 4},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(tmp_path / "run"), "report": False},
    }
    res = ad.run(cfg, client, out=tmp_path / "run")
    m = res.metrics
    assert np.isnan(m["dsr"].to_numpy()).all()
    r = _returns(res.equity.values[:, 0])
    assert math.isclose(float(m.loc[0, "psr"]), _psr(r, 0.0), rel_tol=1e-9)
    assert json.loads((tmp_path / "run" / "research.json").read_text())["dsr"]["n"] == 1
