"""An outsider's check of the time rules (DESIGN §3, §4 "results do not depend on the chunking")
through `ad.run` only, on the real bokeh-sampledata prices (and a synthetic intraday market,
the one intraday source there is).

- A signal known at bar t sets its target from t's close (equity and last close of t) and fills
  at the next bar with an open, t+1 when it has one; a symbol that never had a price gets Q = 0.
- Time chunks and portfolio batches are an execution detail: equity, cash, orders, trades,
  signals and metrics are the same bit for bit whatever their sizes (daily and intraday bars,
  recursive and cross-sectional features, every exit rule).
- Changing any data after bar T changes nothing up to T, with ML (walk-forward XGBoost),
  cross-sectional books, intrabar exits, vol-target sizing and the drawdown halt all in play.
- Intraday metrics are annualized with 252 × bars per session day unless
  ``portfolios.periods_per_year`` says otherwise.

The reference for the fill timing is the contract's own arithmetic, with the product's equity
as its input (the equity itself is checked bar by bar in tests/portfolio/test_contract_accounting.py).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import admf_dask as ad

START, END = "2011-09-01", "2012-12-31"  # FB lists 2012-05-18: a symbol without a price first


def bokeh_long(start: str = START, end: str = END) -> pd.DataFrame:
    d = ad.load_market_data({"source": "bokeh_stocks", "start": start, "end": end})
    df = d.to_dataframe().reset_index()
    return df[["time", "symbol", "open", "high", "low", "close", "volume"]].dropna()


def run(cfg: dict, client, out: Path):
    return ad.run(cfg, client, out=out)


def wide(df: pd.DataFrame, col: str, times, symbols) -> np.ndarray:
    w = df.pivot(index="time", columns="symbol", values=col)
    return w.reindex(index=times, columns=symbols).to_numpy(np.float64)


# ----------------------------------------------------------------------------- fill timing


def expected_orders(u, O, C, equity, capital, pw):  # noqa: E741 - the contract's names
    """DESIGN §2 steps 1 and 4 with no risk rule, band 0, fixed sizing: the orders a signal
    makes, given the run's equity. Returns {(bar, symbol): qty}."""
    T, S = u.shape
    orders = {}
    for s in range(S):
        q = Q = wset = 0.0
        last = math.nan
        for t in range(T):
            if math.isfinite(O[t, s]) and Q != q:
                orders[(t, s)] = Q - q
                q = Q
            if math.isfinite(C[t, s]):
                last = C[t, s]
            w = u[t, s] * pw
            if abs(w - wset) > 1e-12:
                wset = w
                Q = w * equity[t] / last if math.isfinite(last) else 0.0
    return orders


def replay_pipeline(tmp: Path, data: dict, chunks: int, extra: dict | None = None) -> dict:
    return {
        "name": "contract-time",
        "data": {**data, "chunks": {"time": chunks}},
        "features": {},
        "strategies": {"s": {"kind": "signals", "path": str(tmp / "sig.parquet")}},
        "portfolios": {
            "capital": 100000,
            "batch_size": 2,
            "allow_short": True,
            **(extra or {}),
            "grid": {"commission": [0.0, 0.001]},
        },
        "execution": {"commission": 0.0, "commission_fixed": 0.0, "slippage_bps": 0},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"report": False},
    }


def sticky(T: int, S: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = np.array([-1.0, -0.4, 0.0, 0.5, 1.0])
    out = np.empty((T, S))
    cur = rng.choice(levels, S)
    for t in range(T):
        ch = rng.random(S) < 0.15
        cur = np.where(ch, rng.choice(levels, S), cur)
        out[t] = cur
    return out


def check_fill_timing(res, u, O, C, symbols, times):  # noqa: E741
    eq = res.equity.sel(portfolio=0).values
    want = expected_orders(u, O, C, eq, 100000, 1.0 / len(symbols))
    o = res.orders
    o = o[o["portfolio"] == 0]
    t_idx = np.searchsorted(times, o["time"].to_numpy())
    s_idx = [symbols.index(str(s)) for s in o["symbol"]]
    got = {(int(t), s): q for t, s, q in zip(t_idx, s_idx, o["qty"].to_numpy(), strict=True)}
    assert sorted(got) == sorted(want), (
        sorted(set(got) ^ set(want))[:10],
        [(times[t], symbols[s]) for t, s in sorted(set(got) ^ set(want))[:10]],
    )
    for k, q in want.items():
        assert got[k] == pytest.approx(q, rel=1e-9, abs=1e-9), (times[k[0]], symbols[k[1]])
    # no order ever fills on a bar without an open
    assert np.isfinite(O[t_idx, s_idx]).all()


@pytest.fixture(scope="module")
def gapped_daily(tmp_path_factory):
    """The real daily bars with a few AAPL / IBM days dropped (absent rows), FB listing late."""
    tmp = tmp_path_factory.mktemp("ct_gap")
    df = bokeh_long()
    times = np.sort(df["time"].unique())
    drop = df["symbol"].isin(["AAPL", "IBM"]) & df["time"].isin(times[[40, 41, 42, 90, 200, 201]])
    df = df[~drop]
    df.to_csv(tmp / "prices.csv", index=False)
    symbols = sorted(df["symbol"].unique())
    u = sticky(len(times), len(symbols), 3)
    # signals change right before the gaps and the listing, so fills must wait
    u[39:46, symbols.index("AAPL")] = 0.77
    u[89:96, symbols.index("IBM")] = -0.66
    u[199:, symbols.index("IBM")] = 0.9
    t = np.repeat(times, len(symbols))
    s = np.tile(np.asarray(symbols, dtype=object), len(times))
    pd.DataFrame({"time": t, "symbol": s, "signal": u.ravel()}).to_parquet(tmp / "sig.parquet")
    return {"tmp": tmp, "df": df, "times": times, "symbols": symbols, "u": u}


def test_signal_at_t_fills_at_next_open_real_data(gapped_daily, client):
    g = gapped_daily
    tmp = g["tmp"]
    cfg = replay_pipeline(tmp, {"source": "csv", "path": str(tmp / "prices.csv")}, 64)
    res = run(cfg, client, tmp / "run")
    times, symbols = g["times"], g["symbols"]
    np.testing.assert_array_equal(res.equity.time.values, times)
    O = wide(g["df"], "open", times, symbols)  # noqa: E741
    C = wide(g["df"], "close", times, symbols)
    check_fill_timing(res, g["u"], O, C, symbols, times)
    # the gap is real: AAPL's order from bar 39 waits for bar 43
    o = res.orders[(res.orders["portfolio"] == 0) & (res.orders["symbol"] == "AAPL")]
    assert pd.Timestamp(times[43]) in set(o["time"]) and pd.Timestamp(times[40]) not in set(
        o["time"]
    )


def test_long_only_ignores_negative_signals_in_timing(gapped_daily, client):
    g = gapped_daily
    tmp = g["tmp"]
    cfg = replay_pipeline(tmp, {"source": "csv", "path": str(tmp / "prices.csv")}, 1000)
    cfg["portfolios"]["allow_short"] = False
    res = run(cfg, client, tmp / "run_long")
    times, symbols = g["times"], g["symbols"]
    O = wide(g["df"], "open", times, symbols)  # noqa: E741
    C = wide(g["df"], "close", times, symbols)
    check_fill_timing(res, np.maximum(g["u"], 0.0), O, C, symbols, times)
    assert (
        res.orders.groupby(["portfolio", "symbol"], observed=True)["qty"].cumsum() > -1e-9
    ).all()


# ----------------------------------------------------------------------------- intraday


INTRADAY = {
    "source": "synthetic",
    "symbols": 4,
    "bars": 78 * 5 + 20,  # five 5-minute sessions and part of a sixth
    "seed": 11,
    "frequency": "5min",
    "missing": 0.04,
}


@pytest.fixture(scope="module")
def intraday(client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ct_intraday")
    d = ad.load_market_data(INTRADAY)
    times = d.time.values
    symbols = [str(s) for s in d.symbol.values]
    u = sticky(len(times), len(symbols), 5)
    # a signal set on a session's last bar: it fills at the next session's first bar
    last_of_day = np.flatnonzero(np.diff(times.astype("datetime64[D]").astype(np.int64)) > 0)
    for t in last_of_day:
        u[t, 0] = -u[t - 1, 0] if u[t - 1, 0] != 0 else 1.0
    t = np.repeat(times, len(symbols))
    s = np.tile(np.asarray(symbols, dtype=object), len(times))
    pd.DataFrame({"time": t, "symbol": s, "signal": u.ravel()}).to_parquet(tmp / "sig.parquet")
    res = run(replay_pipeline(tmp, INTRADAY, 50), client, tmp / "run")
    return {
        "tmp": tmp,
        "d": d,
        "u": u,
        "times": times,
        "symbols": symbols,
        "res": res,
        "last_of_day": last_of_day,
    }


def test_intraday_fills_at_next_bar_across_sessions(intraday):
    it = intraday
    d, times, symbols = it["d"], it["times"], it["symbols"]
    assert d.attrs.get("bars_per_day") == 78
    assert pd.Timestamp(times[0]).strftime("%H:%M") == "09:30"
    O = d["open"].transpose("time", "symbol").values  # noqa: E741
    C = d["close"].transpose("time", "symbol").values
    check_fill_timing(it["res"], it["u"], O, C, symbols, times)
    # the order of a session's last bar is stamped on the next session's first bar with an open
    o = it["res"].orders
    o = o[(o["portfolio"] == 0) & (o["symbol"] == symbols[0])]
    got = set(o["time"])
    for t in it["last_of_day"]:
        nxt = next(k for k in range(t + 1, len(times)) if np.isfinite(O[k, 0]))
        assert pd.Timestamp(times[nxt]) in got
        assert pd.Timestamp(times[nxt]).date() > pd.Timestamp(times[t]).date()


def _returns(eq: np.ndarray, capital: float) -> np.ndarray:
    prev = np.concatenate([[capital], eq[:-1]])
    return eq / prev - 1.0


def test_intraday_annualization(intraday, client):
    it = intraday
    res = it["res"]
    eq = res.equity.sel(portfolio=0).values
    r = _returns(eq, 100000)
    m = res.metrics.loc[0]
    assert m["annual_volatility"] == pytest.approx(np.std(r, ddof=1) * math.sqrt(252 * 78), 1e-9)
    cfg = replay_pipeline(it["tmp"], INTRADAY, 50, {"periods_per_year": 1000})
    res2 = run(cfg, client, it["tmp"] / "run_ppy")
    np.testing.assert_array_equal(res2.equity.values, res.equity.values)
    m2 = res2.metrics.loc[0]
    assert m2["annual_volatility"] == pytest.approx(np.std(r, ddof=1) * math.sqrt(1000), 1e-9)
    assert m2["sharpe"] == pytest.approx(np.mean(r) / np.std(r, ddof=1) * math.sqrt(1000), 1e-9)


def test_intraday_chunks_and_batches_change_nothing(intraday, client):
    it = intraday
    cfg = replay_pipeline(it["tmp"], INTRADAY, 78 * 6)  # one chunk
    cfg["portfolios"]["batch_size"] = 1
    cfg["portfolios"].update(trailing_stop=0.01, max_holding=4, exit_on="intrabar")
    cfg["portfolios"]["grid"]["take_profit"] = [None, 0.01]
    a = run(cfg, client, it["tmp"] / "run_one_chunk")
    cfg["data"]["chunks"]["time"] = 41
    cfg["portfolios"]["batch_size"] = 3
    b = run(cfg, client, it["tmp"] / "run_41")
    assert_same_run(a, b)
    assert set(a.orders["reason"].astype(str)) >= {"signal", "trailing", "time"}


# ----------------------------------------------------------------------------- chunks, batches


def assert_same_run(a, b):
    np.testing.assert_array_equal(a.equity.values, b.equity.values)
    np.testing.assert_array_equal(a.cash.values, b.cash.values)
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.trades(), b.trades())
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    np.testing.assert_array_equal(a.results["positions"].values, b.results["positions"].values)


DAILY = {
    "name": "contract-chunks",
    "data": {"source": "bokeh_stocks", "start": START, "end": END, "chunks": {"time": 1000}},
    "features": {
        "e5": {"kind": "ema", "window": 5},
        "e20": {"kind": "ema", "window": 20},
        "r": {"kind": "rsi", "window": 14},
        "v": {"kind": "volatility", "window": 20},
        "m": {"kind": "roc", "window": 10},
        "rk": {"kind": "rank", "input": "m"},
        "mac": {"kind": "macd", "fast": 5, "slow": 13, "signal": 4},
    },
    "strategies": {
        "tr": {"kind": "ma_crossover", "fast": "e5", "slow": "e20"},
        "rv": {"kind": "rsi_reversion", "rsi": "r", "low": 40, "high": 60},
        "bk": {"kind": "top_k", "feature": "rk", "k": 2, "short_k": 1, "every": 3, "buffer": 1},
        "mc": {"kind": "momentum", "feature": "mac_hist"},
    },
    "portfolios": {
        "capital": 100000,
        "batch_size": 16,
        "vol_feature": "v",
        "allow_short": True,
        "take_profit": 0.05,
        "max_holding": 9,
        "max_positions": 2,
        "grid": {
            "strategy": ["tr", "rv", "bk", {"mc": 0.5, "bk": 0.5}],
            "exit_on": ["close", "intrabar"],
            "trailing_stop": [None, 0.04],
            "sizing": ["fixed", "vol_target"],
        },
    },
    "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
    "output": {"report": False},
}


def test_daily_chunks_and_batches_change_nothing(client, tmp_path):
    runs = []
    for chunks, batch in ((1000, 32), (37, 3), (97, 1)):
        cfg = copy.deepcopy(DAILY)
        cfg["data"]["chunks"]["time"] = chunks
        cfg["portfolios"]["batch_size"] = batch
        runs.append(run(cfg, client, tmp_path / f"run_{chunks}_{batch}"))
    a = runs[0]
    assert set(a.orders["reason"].astype(str)) >= {"signal", "trailing", "take_profit", "time"}
    for b in runs[1:]:
        assert_same_run(a, b)
        np.testing.assert_array_equal(
            ad.open_run(a.path).signals.values, ad.open_run(b.path).signals.values
        )


# ----------------------------------------------------------------------------- no look-ahead


def test_changing_data_after_t_changes_nothing_up_to_t(client, tmp_path):
    df = bokeh_long()
    df.to_csv(tmp_path / "a.csv", index=False)
    T = pd.Timestamp("2012-07-16")
    later = df["time"] > T
    rng = np.random.default_rng(1)
    b = df.copy()
    f = np.exp(rng.normal(0, 0.05, later.sum()))
    for col in ("open", "high", "low", "close"):
        b.loc[later, col] *= f
    b = b.drop(b[later].sample(frac=0.05, random_state=2).index)  # and some bars go missing
    b.to_csv(tmp_path / "b.csv", index=False)
    base = {
        "name": "contract-lookahead",
        "data": {"source": "csv", "chunks": {"time": 60}},
        "features": {
            "ret": {"kind": "returns"},
            "m": {"kind": "roc", "window": 10},
            "rk": {"kind": "rank", "input": "m"},
            "z": {"kind": "cs_zscore", "input": "ret"},
            "r": {"kind": "rsi", "window": 14},
            "v": {"kind": "volatility", "window": 20},
            "mac": {"kind": "macd", "fast": 5, "slow": 13, "signal": 4},
        },
        "strategies": {
            "bk": {"kind": "top_k", "feature": "rk", "k": 2, "short_k": 1, "every": 4},
            "xg": {
                "kind": "xgboost",
                "features": ["ret", "z", "r", "mac_hist"],
                "horizon": 5,
                "train_window": 80,
                "retrain_every": 40,
                "params": {"n_estimators": 20, "max_depth": 3},
            },
            "mc": {"kind": "momentum", "feature": "mac_hist"},
        },
        "portfolios": {
            "capital": 100000,
            "batch_size": 3,
            "vol_feature": "v",
            "target_vol": 0.1,
            "trailing_stop": 0.04,
            "take_profit": 0.06,
            "max_drawdown": 0.15,
            "allow_short": True,
            "exit_on": "intrabar",
            "grid": {
                "strategy": ["bk", "xg", {"mc": 0.5, "xg": 0.5}],
                "sizing": ["fixed", "vol_target"],
            },
        },
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 1},
        "output": {"report": False},
    }
    res = {}
    for name in "ab":
        cfg = copy.deepcopy(base)
        cfg["data"]["path"] = str(tmp_path / f"{name}.csv")
        res[name] = run(cfg, client, tmp_path / f"run_{name}")
    ra, rb = res["a"], res["b"]
    up_to = slice(None, T)
    np.testing.assert_array_equal(
        ra.equity.sel(time=up_to).values, rb.equity.sel(time=up_to).values
    )
    np.testing.assert_array_equal(ra.cash.sel(time=up_to).values, rb.cash.sel(time=up_to).values)
    oa = ra.orders[ra.orders["time"] <= T].reset_index(drop=True)
    ob = rb.orders[rb.orders["time"] <= T].reset_index(drop=True)
    pd.testing.assert_frame_equal(oa, ob)
    sa = ad.open_run(ra.path).signals.sel(time=up_to)
    sb = ad.open_run(rb.path).signals.sel(time=up_to)
    np.testing.assert_array_equal(sa.values, sb.values)
    # closed trades that ended by T are the same trades
    ta = ra.trades()
    tb = rb.trades()
    ca = ta[ta["exit_time"] <= T].reset_index(drop=True)
    cb = tb[tb["exit_time"] <= T].reset_index(drop=True)
    pd.testing.assert_frame_equal(ca, cb)
    # the test has teeth: the ML strategy trades before T, and the change reaches the run after T
    assert np.abs(sa.sel(strategy="xg").values).sum() > 0
    assert set(oa["reason"].astype(str)) >= {"signal", "trailing"}
    assert not np.array_equal(ra.equity.values, rb.equity.values)


# ----------------------------------------------------------------------------- ML and chunks

ML = {
    "name": "contract-ml-chunks",
    "data": {"source": "bokeh_stocks", "start": "2011-06-01", "end": "2012-12-31"},
    "features": {
        "ret": {"kind": "returns"},
        "r": {"kind": "rsi", "window": 14},
        "z": {"kind": "zscore", "window": 10},
    },
    "strategies": {
        "xg": {
            "kind": "xgboost",
            "features": ["ret", "r", "z"],
            "horizon": 3,
            "train_window": 100,
            "retrain_every": 50,
            "params": {"n_estimators": 10},
        },
        "mlp": {
            "kind": "mlp",
            "features": ["ret", "r", "z"],
            "horizon": 3,
            "train_window": 100,
            "retrain_every": 50,
            "params": {"epochs": 3},
        },
    },
    "portfolios": {"capital": 100000, "batch_size": 2, "grid": {"strategy": ["xg", "mlp"]}},
    "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 1},
    "output": {"report": False},
}


@pytest.fixture(scope="module")
def ml_chunks(client, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ct_ml_chunks")
    out = {}
    for chunks in (1000, 45):
        cfg = copy.deepcopy(ML)
        cfg["data"]["chunks"] = {"time": chunks}
        res = run(cfg, client, tmp / f"run_{chunks}")
        out[chunks] = (res, ad.open_run(tmp / f"run_{chunks}").signals)
    return out


def test_xgboost_signals_do_not_depend_on_the_chunking(ml_chunks):
    (a, sa), (b, sb) = ml_chunks[1000], ml_chunks[45]
    x, y = sa.sel(strategy="xg").values, sb.sel(strategy="xg").values
    assert np.abs(x).sum() > 0
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(
        a.equity.sel(portfolio=0).values, b.equity.sel(portfolio=0).values
    )


def test_mlp_signals_do_not_depend_on_the_chunking(ml_chunks):
    (a, sa), (b, sb) = ml_chunks[1000], ml_chunks[45]
    np.testing.assert_array_equal(sa.sel(strategy="mlp").values, sb.sel(strategy="mlp").values)
    np.testing.assert_array_equal(
        a.equity.sel(portfolio=1).values, b.equity.sel(portfolio=1).values
    )
