"""Research statistics over a grid of equity curves (docs/RESEARCH.md): numpy/numba only.

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

#: Euler–Mascheroni constant (docs/RESEARCH.md's γ)
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
    """Per-bar SR ``mean / std(ddof=1)`` of returns with count n, Σ(r-c) sd, Σ(r-c)² sd2.

    Branch-free (it runs in the vectorized inner loops): n < 2 gives nan or ±inf, and a
    variance of 0 (or below, by rounding) gives ±inf, or nan for a mean of 0 — not finite.
    """
    var = (sd2 - sd * sd / n) / (n - 1.0)
    return (center + sd / n) / math.sqrt(max(var, 0.0))


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


# The CSCV kernels split the B blocks into two halves and tabulate, for a tile of portfolios,
# the sums over every subset of each half (2 × 2^(B/2) rows, built by adding one block to a
# smaller subset). A split's sums are then one row of each table added: 3 additions per
# portfolio and split instead of 3·B/2. The tile is sized so that its tables stay in cache.


def split_masks(n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit masks (C,) of each split's in-sample blocks in the first and in the second half
    (bit j of the second: block B/2 + j), ``itertools.combinations`` order."""
    h = n_blocks // 2
    ins, _ = cscv_splits(n_blocks)
    bits = np.left_shift(1, np.arange(n_blocks, dtype=np.int64) % h)
    first = np.where(ins < h, bits[ins], 0).sum(axis=1)
    second = np.where(ins >= h, bits[ins], 0).sum(axis=1)
    return first.astype(np.int64), second.astype(np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def _tile_for(h):
    return max(16, min(512, 16384 >> h))


@njit(cache=True, nogil=True, error_model="numpy")
def _subset_tables(sums, p0, p1, h, t1, t2):
    """t1[mask], t2[mask] (2^h, N_SUMS, tile): sums over the blocks of ``mask`` in each half."""
    m = p1 - p0
    for r in range(N_SUMS):
        for i in range(m):
            t1[0, r, i] = 0.0
            t2[0, r, i] = 0.0
    for mask in range(1, 1 << h):
        b = 0
        while not (mask >> b) & 1:
            b += 1
        rest = mask ^ (1 << b)
        for r in range(N_SUMS):
            for i in range(m):
                t1[mask, r, i] = t1[rest, r, i] + sums[r, b, p0 + i]
                t2[mask, r, i] = t2[rest, r, i] + sums[r, h + b, p0 + i]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _split_sharpe(t1, t2, a, b, center, p0, m, sr):
    for i in range(m):  # contiguous in the tile: vectorized
        n = t1[a, S_N, i] + t2[b, S_N, i]
        sd = t1[a, S_D, i] + t2[b, S_D, i]
        sd2 = t1[a, S_D2, i] + t2[b, S_D2, i]
        sr[i] = sharpe_from_sums(n, sd, sd2, center[p0 + i])


@njit(cache=True, nogil=True, error_model="numpy")
def cscv_best(sums, center, m1, m2):
    """Per split, the chunk's best in-sample portfolio (first on ties).

    Parameters
    ----------
    sums : ndarray (N_SUMS, B, P)
        `segment_sums` over the CSCV blocks.
    center : ndarray (P,)
        The centre the sums were taken around (the portfolios' mean returns).
    m1, m2 : ndarray (C,) int64
        The in-sample blocks of each split (`split_masks`).

    Returns
    -------
    best_is : ndarray (C,)
        The best in-sample SR as ranked (-inf when every one is non-finite).
    best_idx : ndarray (C,) int64
        Its column in the chunk (the first column when every SR is non-finite).
    best_oos : ndarray (C,)
        Its out-of-sample SR (raw: nan stays nan).
    """
    C = m1.shape[0]
    B = sums.shape[1]
    P = sums.shape[2]
    h = B // 2
    tile = _tile_for(h)
    full = (1 << h) - 1
    best_is = np.full(C, -np.inf)
    best_idx = np.full(C, -1, dtype=np.int64)
    best_oos = np.full(C, np.nan)
    t1 = np.empty((1 << h, N_SUMS, tile))
    t2 = np.empty((1 << h, N_SUMS, tile))
    sr = np.empty(tile)
    one = np.empty(1)
    for p0 in range(0, P, tile):  # tiles outside: one tile's tables stay in cache for all splits
        p1 = min(P, p0 + tile)
        _subset_tables(sums, p0, p1, h, t1, t2)
        for c in range(C):
            _split_sharpe(t1, t2, m1[c], m2[c], center, p0, p1 - p0, sr)
            top = -np.inf
            for i in range(p1 - p0):  # nan and ±inf rank as -inf
                x = sr[i] if math.isfinite(sr[i]) else -np.inf
                sr[i] = x
                top = max(top, x)
            if top > best_is[c] or best_idx[c] < 0:  # this tile holds the first of the best
                i = 0
                while sr[i] != top:
                    i += 1
                best_is[c] = top
                best_idx[c] = p0 + i
                # out of sample with the very operations of `cscv_count`, so that the selected
                # portfolio ties with itself there
                a = full ^ m1[c]
                b = full ^ m2[c]
                _split_sharpe(t1[:, :, i:], t2[:, :, i:], a, b, center, p0 + i, 1, one)
                best_oos[c] = one[0]
    return best_is, best_idx, best_oos


@njit(cache=True, nogil=True, error_model="numpy")
def cscv_count(sums, center, m1, m2, target):
    """Per split, the chunk's portfolios whose out-of-sample SR (as ranked) is below / equal to
    ``target[c]`` (the selected portfolio's, as ranked): int64 arrays (C,), (C,)."""
    C = m1.shape[0]
    B = sums.shape[1]
    P = sums.shape[2]
    h = B // 2
    full = (1 << h) - 1
    tile = _tile_for(h)
    below = np.zeros(C, dtype=np.int64)
    equal = np.zeros(C, dtype=np.int64)
    t1 = np.empty((1 << h, N_SUMS, tile))
    t2 = np.empty((1 << h, N_SUMS, tile))
    sr = np.empty(tile)
    for p0 in range(0, P, tile):
        p1 = min(P, p0 + tile)
        _subset_tables(sums, p0, p1, h, t1, t2)
        for c in range(C):
            _split_sharpe(t1, t2, full ^ m1[c], full ^ m2[c], center, p0, p1 - p0, sr)
            v = target[c]
            lo = 0
            eq = 0
            for i in range(p1 - p0):
                x = sr[i]
                x = x if math.isfinite(x) else -np.inf
                lo += x < v
                eq += x == v
            below[c] += lo
            equal[c] += eq
    return below, equal


def cscv_splits(n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """In-sample blocks (C, B/2) of every split, ``itertools.combinations`` order, and their
    complements (C, B/2), ascending."""
    h = n_blocks // 2
    n = math.comb(n_blocks, h)
    # one tuple alive at a time: a list of them (12,870 for 16 blocks) set off the garbage
    # collector's full passes, tens of milliseconds in a process holding a run's graphs
    flat = itertools.chain.from_iterable(itertools.combinations(range(n_blocks), h))
    ins = np.fromiter(flat, dtype=np.int64, count=n * h).reshape(n, h)
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
