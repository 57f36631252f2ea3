"""Test inputs for the portfolio tests: markets with gaps and late starts, signals, parameters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from admf_dask.portfolio import _kernels as K

PARAM_DEFAULTS: dict[str, Any] = {
    "allow_short": False,
    "sizing": "fixed",
    "position_weight": 0.25,
    "target_vol": 0.1,
    "max_position": 1.0,
    "max_gross": 1.0,
    "stop_loss": None,
    "max_drawdown": None,
    "rebalance_band": 0.0,
    "commission": 0.0,
    "commission_fixed": 0.0,
    "slippage_bps": 0.0,
}


def make_market(
    rng: np.random.Generator,
    T: int,
    S: int,
    *,
    sigma: float = 0.04,
    gap: float = 0.1,
    late: float = 0.5,
    split_gaps: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (T, S): random walks with missing bars, late starts, some odd gaps.

    ``split_gaps`` also removes only the open or only the close of some bars (the contract must
    not care whether the two go missing together).
    """
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, (T, S)), axis=0))
    prev = np.vstack([np.full((1, S), 100.0), close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, sigma / 2, (T, S)))
    both = rng.random((T, S)) < gap
    open_[both] = np.nan
    close[both] = np.nan
    if split_gaps:
        open_[rng.random((T, S)) < gap / 2] = np.nan
        close[rng.random((T, S)) < gap / 2] = np.nan
    for s in range(S):
        if rng.random() < late:
            start = int(rng.integers(0, T + 1))  # T: never listed in this window
            open_[:start, s] = np.nan
            close[:start, s] = np.nan
    return open_, close


def make_high_low(
    rng: np.random.Generator,
    open_: np.ndarray,
    close: np.ndarray,
    *,
    sigma: float = 0.04,
    missing: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """High and low (T, S) around a market's open and close: ``low <= min(open, close)`` and
    ``high >= max(open, close)`` where those are finite; a few high / low missing on their own."""
    T, S = close.shape
    top = np.fmax(open_, close)
    bottom = np.fmin(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, sigma, (T, S))))
    low = bottom * np.exp(-np.abs(rng.normal(0.0, sigma, (T, S))))
    high[rng.random((T, S)) < missing] = np.nan
    low[rng.random((T, S)) < missing] = np.nan
    return high, low


def make_signals(
    rng: np.random.Generator, T: int, S: int, K_: int, *, change: float = 0.3, nan: float = 0.05
) -> np.ndarray:
    """(T, S, K) piecewise-constant signals in [-1, 1] with a few nans."""
    levels = np.array([-1.0, -0.6, -0.25, 0.0, 0.0, 0.3, 0.7, 1.0])
    sig = np.empty((T, S, K_))
    cur = rng.choice(levels, size=(S, K_))
    for t in range(T):
        flip = rng.random((S, K_)) < change
        cur = np.where(flip, rng.choice(levels, size=(S, K_)), cur)
        sig[t] = cur
    sig[rng.random((T, S, K_)) < nan] = np.nan
    return sig


def make_vol(rng: np.random.Generator, T: int, S: int) -> np.ndarray:
    """(T, S) annualized vols, with nans and zeros."""
    vol = rng.uniform(0.05, 0.6, (T, S))
    vol[rng.random((T, S)) < 0.05] = np.nan
    vol[rng.random((T, S)) < 0.02] = 0.0
    return vol


def params_strategy(K_: int) -> st.SearchStrategy[dict[str, Any]]:
    """Hypothesis strategy for one portfolio's parameters (every feature of §2)."""
    unit = st.floats(0.0, 1.0)
    return st.fixed_dictionaries(
        {
            "weights": st.lists(st.floats(-1.0, 1.5), min_size=K_, max_size=K_),
            "allow_short": st.booleans(),
            "sizing": st.sampled_from(["fixed", "fixed", "vol_target"]),
            "position_weight": st.floats(0.05, 1.5),
            "target_vol": st.floats(0.02, 0.5),
            "max_position": st.floats(0.1, 2.0),
            "max_gross": st.floats(0.2, 3.0),
            "stop_loss": st.one_of(st.none(), st.floats(0.01, 0.3)),
            "max_drawdown": st.one_of(st.none(), st.floats(0.01, 0.5)),
            "rebalance_band": st.one_of(st.just(0.0), unit.map(lambda x: 0.3 * x)),
            "commission": st.one_of(st.just(0.0), unit.map(lambda x: 0.01 * x)),
            "commission_fixed": st.one_of(st.just(0.0), unit.map(lambda x: 5.0 * x)),
            "slippage_bps": st.one_of(st.just(0.0), unit.map(lambda x: 50.0 * x)),
        }
    )


def exit_params_strategy(K_: int) -> st.SearchStrategy[dict[str, Any]]:
    """`params_strategy` plus the exit rules and position limit of docs/ACCOUNTING.md, exits (each may be off)."""

    def off_or(strategy):
        return st.one_of(st.none(), strategy)

    extra = st.fixed_dictionaries(
        {
            "take_profit": off_or(st.floats(0.01, 0.4)),
            "trailing_stop": off_or(st.floats(0.01, 0.4)),
            "max_holding": off_or(st.integers(1, 12)),
            "max_positions": off_or(st.integers(1, 6)),
            "exit_on": st.sampled_from(["close", "intrabar"]),
        }
    )
    return st.tuples(params_strategy(K_), extra).map(lambda pe: {**pe[0], **pe[1]})


def pack(params: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameter dicts → (mixes, fparams, iparams) of the kernel (vol stack row 0 for all)."""
    P = len(params)
    weights = np.array([p["weights"] for p in params], dtype=np.float64)
    mixes, index = np.unique(weights, axis=0, return_inverse=True)
    fp = np.empty((P, K.N_FPARAMS))
    ip = np.empty((P, K.N_IPARAMS), dtype=np.int64)

    def num(v: float | None) -> float:
        return math.nan if v is None else float(v)

    for i, p in enumerate(params):
        fp[i, K.F_POSITION_WEIGHT] = p["position_weight"]
        fp[i, K.F_TARGET_VOL] = p["target_vol"]
        fp[i, K.F_MAX_POSITION] = p["max_position"]
        fp[i, K.F_MAX_GROSS] = p["max_gross"]
        fp[i, K.F_STOP_LOSS] = num(p["stop_loss"])
        fp[i, K.F_MAX_DRAWDOWN] = num(p["max_drawdown"])
        fp[i, K.F_BAND] = p["rebalance_band"]
        fp[i, K.F_COMMISSION] = p["commission"]
        fp[i, K.F_COMMISSION_FIXED] = p["commission_fixed"]
        fp[i, K.F_SLIPPAGE_BPS] = p["slippage_bps"]
        fp[i, K.F_TAKE_PROFIT] = num(p.get("take_profit"))
        fp[i, K.F_TRAILING_STOP] = num(p.get("trailing_stop"))
        ip[i, K.I_MIX] = index.reshape(-1)[i]
        ip[i, K.I_VOL] = 0 if p["sizing"] == "vol_target" else -1
        ip[i, K.I_SHORT] = int(bool(p["allow_short"]))
        ip[i, K.I_MAX_HOLDING] = p.get("max_holding") or 0
        ip[i, K.I_INTRABAR] = int(p.get("exit_on", "close") == "intrabar")
        ip[i, K.I_MAX_POSITIONS] = p.get("max_positions") or 0
    return np.ascontiguousarray(mixes), fp, ip


def random_params(rng: np.random.Generator, K_: int) -> dict[str, Any]:
    """One random parameter dict (numpy RNG, for non-hypothesis tests)."""
    return {
        "weights": list(rng.uniform(-1.0, 1.5, K_)),
        "allow_short": bool(rng.random() < 0.5),
        "sizing": "vol_target" if rng.random() < 0.3 else "fixed",
        "position_weight": float(rng.uniform(0.05, 1.0)),
        "target_vol": float(rng.uniform(0.02, 0.5)),
        "max_position": float(rng.uniform(0.1, 2.0)),
        "max_gross": float(rng.uniform(0.2, 3.0)),
        "stop_loss": None if rng.random() < 0.3 else float(rng.uniform(0.01, 0.3)),
        "max_drawdown": None if rng.random() < 0.3 else float(rng.uniform(0.05, 0.5)),
        "rebalance_band": 0.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 0.2)),
        "commission": float(rng.uniform(0.0, 0.005)),
        "commission_fixed": float(rng.uniform(0.0, 2.0)),
        "slippage_bps": float(rng.uniform(0.0, 20.0)),
    }


def as_lists(a: np.ndarray) -> list:
    """ndarray → nested lists of Python floats (the reference takes no numpy)."""
    return a.tolist()
