"""Plain implementations of docs/RESEARCH.md, written from the formulas (loops and numpy/scipy, no
sums of segments), and a helper that writes an equity grid as a results.zarr."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import xarray as xr
from _oracles import require_module

stats = require_module("scipy.stats")

GAMMA = 0.5772156649


def returns(equity: np.ndarray, capital: float) -> np.ndarray:
    """Close-to-close returns (T, P), the first against capital."""
    prev = np.vstack([np.full((1, equity.shape[1]), capital), equity[:-1]])
    return (equity - prev) / prev


def sharpe(r: np.ndarray) -> float:
    """mean / std(ddof=1) of the non-nan returns of one portfolio."""
    r = r[~np.isnan(r)]
    if r.size < 2:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(r) / np.std(r, ddof=1))


def ranked(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def first_best(values: list[float]) -> int:
    """Index of the highest (non-finite as -inf), the first on ties."""
    best, j = -math.inf, 0
    for i, v in enumerate(values):
        if ranked(v) > best:
            best, j = ranked(v), i
    return j


def psr(r: np.ndarray, sr_star: float) -> float:
    r = r[~np.isnan(r)]
    sr = sharpe(r)
    g3 = stats.skew(r, bias=True)
    g4 = stats.kurtosis(r, fisher=False, bias=True)
    den = 1 - g3 * sr + (g4 - 1) / 4 * sr**2
    if not den > 0:
        return math.nan
    return float(stats.norm.cdf((sr - sr_star) * math.sqrt(r.size - 1) / math.sqrt(den)))


def psr_dsr(equity: np.ndarray, capital: float) -> tuple[np.ndarray, np.ndarray]:
    r = returns(equity, capital)
    srs = np.array([sharpe(r[:, p]) for p in range(r.shape[1])])
    fin = srs[np.isfinite(srs)]
    n = fin.size
    p_ = np.array([psr(r[:, p], 0.0) for p in range(r.shape[1])])
    if n < 2:
        return p_, np.full(r.shape[1], np.nan)
    sr0 = math.sqrt(np.var(fin, ddof=1)) * (
        (1 - GAMMA) * stats.norm.ppf(1 - 1 / n) + GAMMA * stats.norm.ppf(1 - 1 / (n * math.e))
    )
    d = np.array([psr(r[:, p], sr0) for p in range(r.shape[1])])
    return p_, d


def cscv(equity: np.ndarray, capital: float, n_blocks: int) -> dict:
    """The literal CSCV loop: every combination, SRs from the concatenated returns."""
    r = returns(equity, capital)
    T, N = r.shape
    blocks = np.array_split(np.arange(T), n_blocks)
    lam, sel, oos_best = [], [], []
    for combo in itertools.combinations(range(n_blocks), n_blocks // 2):
        is_rows = np.concatenate([blocks[b] for b in combo])
        oos_rows = np.concatenate([blocks[b] for b in range(n_blocks) if b not in combo])
        is_sr = [sharpe(r[is_rows, p]) for p in range(N)]
        oos_sr = [sharpe(r[oos_rows, p]) for p in range(N)]
        n_star = first_best(is_sr)
        ranks = stats.rankdata([ranked(x) for x in oos_sr], method="average")
        omega = ranks[n_star] / (N + 1)
        lam.append(math.log(omega / (1 - omega)))
        sel.append(n_star)
        oos_best.append(oos_sr[n_star])
    lam = np.array(lam)
    return {
        "logits": lam,
        "selected": sel,
        "pbo": float(np.mean(lam <= 0)),
        "median_logit": float(np.median(lam)),
        "prob_oos_loss": float(np.mean(np.array(oos_best) < 0)),
    }


def walk_forward(equity: np.ndarray, capital: float, train: int, test: int, anchored: bool):
    """Windows (is_start, is_end, oos_start, oos_end, selected) and the stitched equity."""
    r = returns(equity, capital)
    T, N = r.shape
    rows = []
    path = np.full(T, np.nan)
    k = 0
    while k * test + train < T:
        a = 0 if anchored else k * test
        b = k * test + train
        c, d = b, min(b + test, T)
        p = first_best([sharpe(r[a:b, j]) for j in range(N)])
        rows.append((a, b, c, d, p))
        path[c:d] = r[c:d, p]
        k += 1
    first = rows[0][2]
    eq = np.full(T, np.nan)
    eq[first:] = capital * np.cumprod(1 + path[first:])
    return rows, eq


def write_results(
    path: Path, equity: np.ndarray, capital: float = 100.0, chunk: int = 4, ppy: float = 252.0
) -> Path:
    """An equity grid (T, P) as a results.zarr like the portfolio stage's (chunked by portfolio)."""
    T, P = equity.shape
    ds = xr.Dataset(
        {"equity": (("time", "portfolio"), equity)},
        coords={
            "time": np.datetime64("2020-01-01", "ns") + np.arange(T) * np.timedelta64(1, "D"),
            "portfolio": np.arange(P),
        },
        attrs={"capital": capital, "periods_per_year": ppy},
    )
    ds.to_zarr(
        path, mode="w", consolidated=True, encoding={"equity": {"chunks": (max(1, T // 3), chunk)}}
    )
    return path


def noise_equity(rng: np.random.Generator, T: int, P: int, capital: float = 100.0, sd=0.01):
    """Random-walk equity curves (i.i.d. normal returns, no edge)."""
    r = rng.normal(0.0, sd, size=(T, P))
    return capital * np.cumprod(1 + r, axis=0)
