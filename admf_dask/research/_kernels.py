"""Research statistics over a grid of equity curves (DESIGN §2d): numpy/numba only.

Every statistic starts from the metric returns ``r[t] = (e[t] - e[t-1]) / e[t-1]`` with
``e[-1] = capital`` (as `admf_dask.metrics`); nan returns are skipped, as the metrics skip them.

One pass over a chunk of portfolios reduces its returns to small sums:

- `full_moments`: per portfolio, the count, the mean and the central sums Σd², Σd³, Σd⁴
  (two passes over the chunk: exact central moments, for psr/dsr);
- `segment_sums`: per contiguous segment of bars and portfolio, the count and the sums of
  ``d = r - mean`` and ``d²`` (d centred on the portfolio's mean, so that the variance of any
  union of segments, ``(Σd² - (Σd)²/n) / (n-1)``, does not lose digits to cancellation).

Every CSCV split and walk-forward window is then a union of segments: its Sharpe ratio comes
from added sums (`sharpe_from_sums`), with no further pass over the returns. The CSCV kernels
work in two passes over a chunk so that the global selection can be reduced across chunks:
`cscv_best` (per split, the chunk's best in-sample portfolio) and `cscv_count` (per split, how
many of the chunk's portfolios have an out-of-sample SR below / equal to the selected one's).
Ranking maps a non-finite SR to -inf; the best is the highest, the first on ties.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
from numba import njit

#: Euler–Mascheroni constant (DESIGN §2d's γ)
EULER_GAMMA = 0.5772156649

# rows of `segment_sums`' output
S_N = 0  # non-nan returns
S_D = 1  # Σ (r - mean)
S_D2 = 2  # Σ (r - mean)²
N_SUMS = 3

# rows of `full_moments`' output
M_N = 0  # non-nan returns
M_MEAN = 1  # their mean
M_C2 = 2  # Σ (r - mean)²
M_C3 = 3  # Σ (r - mean)³
M_C4 = 4  # Σ (r - mean)⁴
N_MOMENTS = 5

# a tile of portfolios whose segment sums stay in cache across all the splits
_TILE = 512


@njit(cache=True, nogil=True, error_model="numpy")
def full_moments(equity, capital):
    """Count, mean and central sums (N_MOMENTS, P) of the metric returns of ``equity`` (T, P)."""
    T, P = equity.shape
    out = np.zeros((N_MOMENTS, P))
    n = np.zeros(P)
    s = np.zeros(P)
    prev = np.full(P, capital)
    for t in range(T):
        for p in range(P):
            e = equity[t, p]
            x = (e - prev[p]) / prev[p]
            prev[p] = e
            if x == x:
                n[p] += 1.0
                s[p] += x
    mean = s / n
    prev[:] = capital
    c2 = np.zeros(P)
    c3 = np.zeros(P)
    c4 = np.zeros(P)
    for t in range(T):
        for p in range(P):
            e = equity[t, p]
            x = (e - prev[p]) / prev[p]
            prev[p] = e
            if x == x:
                d = x - mean[p]
                d2 = d * d
                c2[p] += d2
                c3[p] += d2 * d
                c4[p] += d2 * d2
    out[M_N] = n
    out[M_MEAN] = mean
    out[M_C2] = c2
    out[M_C3] = c3
    out[M_C4] = c4
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def segment_sums(equity, capital, center, edges):
    """Sums (N_SUMS, G, P) over the segments ``[edges[g], edges[g+1])`` of the returns.

    Row S_N counts the non-nan returns, S_D sums ``r - center``, S_D2 sums ``(r - center)²``.
    ``edges`` (G+1,) is increasing, from 0 to at most T.
    """
    T, P = equity.shape
    G = edges.shape[0] - 1
    out = np.zeros((N_SUMS, G, P))
    prev = np.full(P, capital)
    g = 0
    for t in range(min(T, edges[G])):
        while t >= edges[g + 1]:
            g += 1
        for p in range(P):
            e = equity[t, p]
            x = (e - prev[p]) / prev[p]
            prev[p] = e
            if x == x and t >= edges[0]:
                d = x - center[p]
                out[S_N, g, p] += 1.0
                out[S_D, g, p] += d
                out[S_D2, g, p] += d * d
    return out


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def sharpe_from_sums(n, sd, sd2, center):
    """Per-bar SR ``mean / std(ddof=1)`` of returns with count n, Σ(r-c) sd, Σ(r-c)² sd2."""
    if n < 2.0:
        return np.nan
    var = (sd2 - sd * sd / n) / (n - 1.0)
    mean = center + sd / n
    if var <= 0.0:
        return mean / 0.0  # ±inf, or nan for a mean of 0: not finite either way
    return mean / math.sqrt(var)


@njit(cache=True, nogil=True, error_model="numpy")
def _rank_value(x):
    """The SR as ranked: non-finite → -inf."""
    return x if math.isfinite(x) else -np.inf


@njit(cache=True, nogil=True, error_model="numpy")
def range_sharpe(sums, center, ranges):
    """SR (W, P) over the segments ``[ranges[w, 0], ranges[w, 1])`` of ``sums`` (N_SUMS, G, P)."""
    W = ranges.shape[0]
    P = sums.shape[2]
    out = np.empty((W, P))
    for w in range(W):
        for p in range(P):
            n = 0.0
            sd = 0.0
            sd2 = 0.0
            for g in range(ranges[w, 0], ranges[w, 1]):
                n += sums[S_N, g, p]
                sd += sums[S_D, g, p]
                sd2 += sums[S_D2, g, p]
            out[w, p] = sharpe_from_sums(n, sd, sd2, center[p])
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _tile_sharpe(sums, center, group, p0, p1, tn, ts, tq, sr):
    """SR of portfolios [p0, p1) over the union of segments ``group`` into ``sr[: p1-p0]``."""
    m = p1 - p0
    for i in range(m):
        tn[i] = 0.0
        ts[i] = 0.0
        tq[i] = 0.0
    for k in range(group.shape[0]):
        g = group[k]
        for i in range(m):  # contiguous in p: vectorized
            tn[i] += sums[S_N, g, p0 + i]
            ts[i] += sums[S_D, g, p0 + i]
            tq[i] += sums[S_D2, g, p0 + i]
    for i in range(m):
        sr[i] = sharpe_from_sums(tn[i], ts[i], tq[i], center[p0 + i])


@njit(cache=True, nogil=True, error_model="numpy")
def cscv_best(sums, center, is_groups, oos_groups):
    """Per split, the chunk's best in-sample portfolio (first on ties).

    Parameters
    ----------
    sums : ndarray (N_SUMS, B, P)
        `segment_sums` over the CSCV blocks.
    center : ndarray (P,)
        The centre the sums were taken around (the portfolios' mean returns).
    is_groups, oos_groups : ndarray (C, B/2) int
        The in-sample blocks of each split and their complement.

    Returns
    -------
    best_is : ndarray (C,)
        The best in-sample SR as ranked (-inf when every one is non-finite).
    best_idx : ndarray (C,) int64
        Its column in the chunk (the first column when every SR is non-finite).
    best_oos : ndarray (C,)
        Its out-of-sample SR (raw: nan stays nan).
    """
    C = is_groups.shape[0]
    P = sums.shape[2]
    best_is = np.full(C, -np.inf)
    best_idx = np.full(C, -1, dtype=np.int64)
    tn = np.empty(_TILE)
    ts = np.empty(_TILE)
    tq = np.empty(_TILE)
    sr = np.empty(_TILE)
    for p0 in range(0, P, _TILE):  # tiles outside: one tile's sums stay in cache for all splits
        p1 = min(P, p0 + _TILE)
        for c in range(C):
            _tile_sharpe(sums, center, is_groups[c], p0, p1, tn, ts, tq, sr)
            b = best_is[c]
            j = best_idx[c]
            for i in range(p1 - p0):
                v = _rank_value(sr[i])
                if v > b or j < 0:
                    b = v
                    j = p0 + i
            best_is[c] = b
            best_idx[c] = j
    best_oos = np.full(C, np.nan)
    for c in range(C):
        j = best_idx[c]
        if j >= 0:
            n = 0.0
            sd = 0.0
            sd2 = 0.0
            for g in oos_groups[c]:
                n += sums[S_N, g, j]
                sd += sums[S_D, g, j]
                sd2 += sums[S_D2, g, j]
            best_oos[c] = sharpe_from_sums(n, sd, sd2, center[j])
    return best_is, best_idx, best_oos


@njit(cache=True, nogil=True, error_model="numpy")
def cscv_count(sums, center, oos_groups, target):
    """Per split, the chunk's portfolios whose out-of-sample SR (as ranked) is below / equal to
    ``target[c]`` (the selected portfolio's, as ranked): int64 arrays (C,), (C,)."""
    C = oos_groups.shape[0]
    P = sums.shape[2]
    below = np.zeros(C, dtype=np.int64)
    equal = np.zeros(C, dtype=np.int64)
    tn = np.empty(_TILE)
    ts = np.empty(_TILE)
    tq = np.empty(_TILE)
    sr = np.empty(_TILE)
    for p0 in range(0, P, _TILE):
        p1 = min(P, p0 + _TILE)
        for c in range(C):
            _tile_sharpe(sums, center, oos_groups[c], p0, p1, tn, ts, tq, sr)
            v = target[c]
            lo = 0
            eq = 0
            for i in range(p1 - p0):
                x = _rank_value(sr[i])
                if x < v:
                    lo += 1
                elif x == v:
                    eq += 1
            below[c] += lo
            equal[c] += eq
    return below, equal


def cscv_splits(n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """In-sample blocks (C, B/2) of every split, ``itertools.combinations`` order, and their
    complements (C, B/2), ascending."""
    h = n_blocks // 2
    ins = np.array(list(itertools.combinations(range(n_blocks), h)), dtype=np.int64)
    mask = np.ones((ins.shape[0], n_blocks), dtype=bool)
    np.put_along_axis(mask, ins, False, axis=1)
    outs = np.nonzero(mask)[1].reshape(ins.shape[0], n_blocks - h).astype(np.int64)
    return ins, outs


def block_edges(n_bars: int, n_blocks: int) -> np.ndarray:
    """Edges (B+1,) of `numpy.array_split`'s contiguous blocks of ``n_bars`` bars."""
    q, rem = divmod(int(n_bars), int(n_blocks))
    sizes = np.full(n_blocks, q, dtype=np.int64)
    sizes[:rem] += 1
    return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


def logits(below: np.ndarray, equal: np.ndarray, n_portfolios: int) -> np.ndarray:
    """λ = ln(ω / (1 - ω)), ω = (1-based average rank, ascending) / (N + 1)."""
    rank = below.astype(np.float64) + (equal.astype(np.float64) + 1.0) / 2.0
    omega = rank / (n_portfolios + 1.0)
    return np.log(omega / (1.0 - omega))


def sharpe_moments(mom: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar SR (ddof=1), T, skewness and Pearson kurtosis (population) from `full_moments`."""
    n = mom[M_N]
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(mom[M_C2] / (n - 1.0))
        sr = np.where(n >= 2.0, mom[M_MEAN] / sd, np.nan)
        m2 = mom[M_C2] / n
        g3 = (mom[M_C3] / n) / m2**1.5
        g4 = (mom[M_C4] / n) / m2**2
    return sr, n, g3, g4


def probabilistic_sharpe(
    sr: np.ndarray, n: np.ndarray, g3: np.ndarray, g4: np.ndarray, sr_star: float
) -> np.ndarray:
    """PSR(SR*) = Φ((SR - SR*)·sqrt(T-1) / sqrt(1 - g3·SR + (g4-1)/4·SR²)); nan where the root
    is not of a positive number or an input is not finite."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        den = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
        z = (sr - sr_star) * np.sqrt(n - 1.0) / np.sqrt(np.where(den > 0, den, np.nan))
    out = np.full(np.shape(sr), np.nan)
    ok = np.isfinite(z)
    out[ok] = 0.5 * _erfc(-z[ok] / math.sqrt(2.0))
    return out


def _erfc(x: np.ndarray) -> np.ndarray:
    return np.array([math.erfc(v) for v in np.ravel(x)], dtype=np.float64).reshape(np.shape(x))


def expected_max_sharpe(sr: np.ndarray) -> tuple[float, int, float]:
    """SR0 = sqrt(V)·((1-γ)·Φ⁻¹(1-1/N) + γ·Φ⁻¹(1-1/(N·e))) over the finite SRs.

    Returns (SR0, N, V); SR0 is nan when N < 2.
    """
    fin = np.asarray(sr, dtype=np.float64)
    fin = fin[np.isfinite(fin)]
    n = int(fin.size)
    if n < 2:
        return math.nan, n, math.nan
    var = float(np.var(fin, ddof=1))
    inv = NormalDist().inv_cdf
    z = (1.0 - EULER_GAMMA) * inv(1.0 - 1.0 / n) + EULER_GAMMA * inv(1.0 - 1.0 / (n * math.e))
    return math.sqrt(var) * z, n, var
