"""Seeded synthetic daily OHLCV market (numpy kernel: plain ndarrays in and out).

The model, per bar ``t`` and symbol ``i`` (log returns)::

    r[t, i] = mu[i] + beta[i] * m[t] + sig[i] * exp(h[t, i]) * z[t, i] + jump[t, i]
    m[t]    = sig_m * exp(hm[t]) * zm[t] + market_jump[t]

``hm`` and ``h`` are AR(1) log-volatilities (stochastic volatility: the vectorizable cousin of
GARCH that gives the same volatility clustering; ``h`` steps every ``_VSTEP`` bars); ``hm``'s
shock is correlated with the previous market shock (leverage: falls raise volatility). ``z`` are
unit-variance logistic shocks (fat-tailed), jumps are rare, and ``r`` is clipped to +/-0.5
(a 40% day at most). The close-to-close return is split into an
overnight gap (open) and an intraday move (close); the high and low extend beyond the open/close
by exponential wicks scaled to the bar's volatility, so ``high >= max(open, close) >=
min(open, close) >= low > 0`` holds by construction. Volume is log-normal around a per-symbol
level and rises with the bar's standardized ``|r|`` and its volatility regime.

The market is generated in fixed blocks of ``_BLOCK`` bars, each from its own child of
``SeedSequence(seed)`` and a small carried `State` (log-vols, price level), so the result depends
on ``(n_bars, n_symbols, seed, missing, late_listed, delisted)`` only. `block` is the kernel: the
data stage runs it as a chain of tasks on the workers (`admf_dask.data.lazy`), one per block, and
`synthetic_ohlcv` is its eager reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

# Bars per generation block: large enough to amortize Python overhead, small enough that the
# block's temporaries (a few (block, n_symbols) float64 arrays) stay modest.
_BLOCK = 1024
# Sub-block of the AR(1) recursion: phi**-_SUB must stay small for the cumsum trick to be exact.
_SUB = 128
# Bars per step of the idiosyncratic log-volatility (divides _BLOCK).
_VSTEP = 8

# Market factor: daily vol ~1%, persistent log-vol, leverage, rare crashes.
_SIG_M = 0.010
_PHI_M = 0.985
_SD_HM = 0.35
_RHO_LEVERAGE = -0.5
_P_JUMP_M = 0.002
# Idiosyncratic: persistent log-vol, earnings-like jumps.
_PHI_I = 0.97
_SD_HI = 0.30
_P_JUMP_I = 0.0015
_SD_JUMP_I = 0.06
# Intraday structure.
_OVERNIGHT_SHARE = 0.3  # share of the close-to-close move that happens overnight
_WICK = 0.5  # mean wick beyond the body, in units of the bar's volatility


def symbol_names(n: int) -> list[str]:
    """Names ``S000``, ``S001``, ... zero padded to the width of ``n - 1`` (at least 3)."""
    width = max(3, len(str(n - 1)))
    return [f"S{i:0{width}d}" for i in range(n)]


def _ar1(e: np.ndarray, phi: float, x0: np.ndarray) -> np.ndarray:
    """Return ``x[t] = phi * x[t-1] + e[t]`` along axis 0, with ``x[-1] = x0``.

    Vectorized by sub-blocks: inside a sub-block of length ``S`` the recursion is
    ``phi**t * cumsum(phi**-k * e[k])``, exact while ``phi**-S`` is small; the carry between
    sub-blocks is a short Python loop (``len(e) / S`` steps).
    """
    n, m = e.shape
    nsub = -(-n // _SUB)
    pad = nsub * _SUB - n
    ep = np.concatenate([e, np.zeros((pad, m))]) if pad else e
    ep = ep.reshape(nsub, _SUB, m)
    k = np.arange(_SUB, dtype=np.float64)
    s = np.cumsum(ep * (phi**-k)[None, :, None], axis=1)
    s *= (phi**k)[None, :, None]  # response of each sub-block from a zero start
    starts = np.empty((nsub, m))
    prev = np.asarray(x0, dtype=np.float64)
    decay = phi**_SUB
    for b in range(nsub):
        starts[b] = prev
        prev = s[b, -1] + decay * prev
    s += (phi ** (k + 1))[None, :, None] * starts[:, None, :]
    return s.reshape(nsub * _SUB, m)[:n]


def _scatter(rng: np.random.Generator, size: int, p: float) -> np.ndarray:
    """Flat positions of rare events with probability ``p`` each (Poisson count, no dense draw)."""
    return rng.integers(0, size, rng.poisson(p * size))


@dataclass(frozen=True)
class Plan:
    """Everything a block needs besides the carried state: sizes, options, per-symbol draws.

    Built by `plan` from a handful of scalars (cheap: O(n_symbols) draws), so a task graph can
    carry the scalars and rebuild the plan on the worker.
    """

    n_bars: int
    n_symbols: int
    seed: int
    missing: float
    vol_scale: float
    beta: np.ndarray
    sig: np.ndarray
    mu: np.ndarray
    log_v0: np.ndarray
    listed: np.ndarray  # first listed bar per symbol (NaN before)
    ends: np.ndarray  # first delisted bar per symbol (NaN from there on; n_bars: never)

    @property
    def n_blocks(self) -> int:
        """Number of generation blocks of `_BLOCK` bars."""
        return -(-self.n_bars // _BLOCK)


@dataclass(frozen=True)
class State:
    """What block ``k`` hands to block ``k + 1`` (O(n_symbols))."""

    log_c: np.ndarray  # log close of the last bar
    h_i: np.ndarray  # idiosyncratic log-vol (coarse grid)
    h_m: np.ndarray  # market log-vol, shape (1,)
    zm_prev: float  # last market return shock


def _check_args(
    n_bars: int, n_symbols: int, seed: int, missing: float, late_listed: float, delisted: float
) -> None:
    if n_bars < 1 or n_symbols < 1:
        raise ValueError(f"need n_bars >= 1 and n_symbols >= 1, got {n_bars}, {n_symbols}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if not (0.0 <= delisted <= 1.0):
        raise ValueError(f"need 0 <= delisted <= 1, got {delisted}")
    if not (0.0 <= missing < 1.0 and 0.0 <= late_listed <= 1.0):
        raise ValueError(
            f"need 0 <= missing < 1 and 0 <= late_listed <= 1: {missing}, {late_listed}"
        )


def _child(seed: int, i: int) -> np.random.SeedSequence:
    """``SeedSequence(seed).spawn(...)[i]`` without spawning the ones before it."""
    return np.random.SeedSequence(seed, spawn_key=(i,))


def plan(
    n_bars: int,
    n_symbols: int,
    seed: int,
    *,
    missing: float = 0.0,
    late_listed: float = 0.0,
    delisted: float = 0.0,
    vol_scale: float = 1.0,
) -> tuple[Plan, State]:
    """The per-symbol draws and the state before the first bar (see `synthetic_ohlcv`).

    Parameters
    ----------
    n_bars, n_symbols, seed, missing, late_listed, delisted
        As `synthetic_ohlcv`.
    vol_scale : float, optional
        Multiplier of the per-bar volatility (``admf_dask.data.calendar.bar_vol_scale``); the
        per-bar drift and jump rates scale with its square (a bar's share of a day).

    Returns
    -------
    (Plan, State)
        The plan and the initial state of block 0.
    """
    _check_args(n_bars, n_symbols, seed, missing, late_listed, delisted)
    T, N = int(n_bars), int(n_symbols)
    # child 0: per-symbol parameters; 1..n_blocks: the blocks; n_blocks + 1: delistings
    prng = np.random.default_rng(_child(seed, 0))
    beta = prng.uniform(0.5, 1.5, N)
    sig = prng.uniform(0.008, 0.022, N)
    mu = prng.normal(0.0003, 0.0003, N)  # ~7.5% a year, +/- 7.5%
    log_c = prng.normal(np.log(40.0), 0.7, N)  # log close before the first bar
    log_v0 = prng.normal(np.log(1e6), 0.8, N)
    h_i = prng.normal(0.0, _SD_HI, N)  # stationary start of the idiosyncratic log-vol
    h_m = prng.normal(0.0, _SD_HM, 1)
    listed = np.zeros(N, dtype=np.int64)  # first listed bar
    if late_listed > 0 and T > 1:
        k = min(N, max(1, math.floor(late_listed * N + 0.5)))
        late = prng.choice(N, size=k, replace=False)
        lo = max(1, T // 10)
        hi = max(lo, min(T - 1, (9 * T) // 10))
        listed[late] = prng.integers(lo, hi + 1, size=k)
    ends = np.full(N, T, dtype=np.int64)
    if delisted > 0 and T > 2:
        drng = np.random.default_rng(_child(seed, 1 + -(-T // _BLOCK)))
        k = min(N, max(1, math.floor(delisted * N + 0.5)))
        gone = drng.choice(N, size=k, replace=False)
        for i in gone:
            lo = int(listed[i]) + 1
            if lo > T - 2:
                continue
            ends[i] = min(ends[i], int(drng.integers(max(lo, T // 5), max(lo, T // 5, T - 2) + 1)))
    vol_scale = float(vol_scale)
    if vol_scale != 1.0:  # daily bars: no multiply at all (values stay bit for bit)
        sig = sig * vol_scale
        mu = mu * vol_scale**2
    p = Plan(T, N, int(seed), float(missing), vol_scale, beta, sig, mu, log_v0, listed, ends)
    return p, State(log_c, h_i, h_m, 0.0)


def block(k: int, p: Plan, state: State) -> tuple[dict[str, np.ndarray], State]:
    """Generate block ``k`` (bars ``k * _BLOCK`` up to ``(k + 1) * _BLOCK``) from its own seed.

    Parameters
    ----------
    k : int
        Block number, ``0 <= k < p.n_blocks``.
    p : Plan
        From `plan`.
    state : State
        The state after block ``k - 1`` (`plan`'s for block 0); not modified.

    Returns
    -------
    (dict of str to numpy.ndarray, State)
        The five fields over the block's bars, ``(bars, n_symbols)`` float64 (NaN outside each
        symbol's listing, and the ``missing`` holes), and the state for block ``k + 1``.
    """
    T, N = p.n_bars, p.n_symbols
    rng = np.random.default_rng(_child(p.seed, 1 + k))
    t0, t1 = k * _BLOCK, min(T, (k + 1) * _BLOCK)
    L = t1 - t0
    Lc = -(-L // _VSTEP)
    beta, sig, mu = p.beta, p.sig, p.mu
    jump_m, jump_i = _P_JUMP_M, _P_JUMP_I
    if p.vol_scale != 1.0:
        jump_m, jump_i = jump_m * p.vol_scale**2, jump_i * p.vol_scale**2
    U = np.empty((L, N), np.float32)
    V = np.empty((L, N), np.float32)
    r, s, w = (np.empty((L, N)) for _ in range(3))
    h_full = np.empty((Lc * _VSTEP, N))
    h = h_full[:L]
    sv_m = _SD_HM * math.sqrt(1 - _PHI_M**2)
    # The idiosyncratic log-vol moves slowly (half-life ~23 bars): step it every _VSTEP bars.
    phi_c = _PHI_I**_VSTEP
    sv_c = _SD_HI * math.sqrt(1 - phi_c**2) * math.sqrt(12.0)  # uniform shocks, unit variance
    sqrt12 = math.sqrt(12.0)

    # Market factor with leverage: the vol shock leans against the previous return shock.
    zm = rng.standard_normal(L)
    lagged = np.concatenate([[state.zm_prev], zm[:-1]])
    eta = _RHO_LEVERAGE * lagged + math.sqrt(1 - _RHO_LEVERAGE**2) * rng.standard_normal(L)
    hm = _ar1((sv_m * eta)[:, None], _PHI_M, state.h_m)
    h_m, zm_prev = hm[-1], zm[-1]
    sm = _SIG_M * np.exp(hm[:, 0])
    if p.vol_scale != 1.0:
        sm *= p.vol_scale
    m = sm * zm
    jm = _scatter(rng, L, jump_m)
    m[jm] += rng.normal(-0.02, 0.03, jm.size)

    # Idiosyncratic log-vol on the coarse grid, repeated to bars.
    e = rng.random((Lc, N))
    e -= 0.5
    e *= sv_c
    hc = _ar1(e, phi_c, state.h_i)
    h_i = hc[-1].copy()
    h_full.reshape(Lc, _VSTEP, N)[...] = hc[:, None, :]
    np.exp(h, out=s)
    s *= sig  # idiosyncratic vol of each bar

    # Logistic shocks (fat-tailed, kurtosis 4.2; cheaper than normals): log(u / (1 - u)).
    rng.random(dtype=np.float32, out=U)
    np.clip(U, 1e-7, 1 - 1e-7, out=U)
    np.subtract(1.0, U, out=V)
    np.divide(U, V, out=U)
    np.log(U, out=U)
    np.multiply(U, math.sqrt(3.0) / math.pi, out=r)
    r *= s
    r += mu
    np.multiply(m[:, None], beta, out=w)
    r += w
    ji = _scatter(rng, L * N, jump_i)
    r.flat[ji] += rng.normal(0.0, _SD_JUMP_I, ji.size)
    np.clip(r, -0.5, 0.5, out=r)

    # Total vol of each bar (scales the intraday shape): sqrt(si^2 + (beta*sm)^2).
    np.multiply(sm[:, None], beta, out=w)
    w *= w
    s *= s
    s += w
    np.sqrt(s, out=s)

    # Overnight gap: a share of the day's return plus noise; the rest happens intraday.
    rng.random(dtype=np.float32, out=U)
    np.subtract(U, 0.5, out=w)
    w *= s
    w *= 0.25 * sqrt12 / _OVERNIGHT_SHARE
    w += r
    w *= _OVERNIGHT_SHARE

    c = np.empty((L, N))
    o = np.empty((L, N))
    # log close: running sum row by row (numpy's axis-0 cumsum is ~2x slower here).
    np.add(state.log_c, r[0], out=c[0])
    for t in range(1, L):
        np.add(c[t - 1], r[t], out=c[t])
    o[0] = state.log_c
    o[1:] = c[:-1]
    log_c = c[-1].copy()
    o += w
    np.exp(o, out=o)
    np.exp(c, out=c)
    hi_ = np.maximum(o, c)
    lo_ = np.minimum(o, c)
    # Wicks: exponential (-log(1 - u)) multiples of the bar's vol beyond the body.
    for extreme, sign in ((hi_, -_WICK), (lo_, _WICK)):
        rng.random(dtype=np.float32, out=U)
        np.subtract(1.0, U, out=U)
        np.log(U, out=U)
        np.multiply(U, sign, out=w)
        w *= s
        np.exp(w, out=w)
        extreme *= w

    # Volume: per-symbol level, busier on big standardized moves and in high-vol regimes.
    v = np.empty((L, N))
    np.abs(r, out=r)
    r /= s
    r *= 0.5
    np.multiply(h, 0.5, out=v)
    v += r
    v += p.log_v0
    rng.random(dtype=np.float32, out=U)
    np.subtract(U, 0.5, out=w)
    w *= 0.3 * sqrt12
    v += w
    np.exp(v, out=v)
    np.rint(v, out=v)
    np.maximum(v, 1.0, out=v)

    rows = np.arange(t0, t1)[:, None]
    if p.missing > 0:
        rng.random(dtype=np.float32, out=U)
        hole = U < p.missing
        hole &= (rows > p.listed) & (rows < T - 1)  # interior only
        for a in (o, hi_, lo_, c, v):
            a[hole] = np.nan
    # before listing and from delisting on: NaN (the draws above do not depend on it)
    if (p.listed > t0).any() or (p.ends < t1).any():
        gone = (rows < p.listed) | (rows >= p.ends)
        for a in (o, hi_, lo_, c, v):
            a[gone] = np.nan
    out = dict(zip(FIELDS, (o, hi_, lo_, c, v), strict=True))
    return out, State(log_c, h_i, h_m, float(zm_prev))


def synthetic_ohlcv(
    n_bars: int,
    n_symbols: int,
    seed: int,
    *,
    missing: float = 0.0,
    late_listed: float = 0.0,
    delisted: float = 0.0,
    vol_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """Generate a seeded OHLCV market (eagerly: the reference of the per-block dask graph).

    Parameters
    ----------
    n_bars : int
        Number of bars (rows), at least 1.
    n_symbols : int
        Number of symbols (columns), at least 1.
    seed : int
        Non-negative seed; the same arguments always give identical arrays.
    missing : float, optional
        Fraction of bars hidden as NaN (in all five fields), drawn among interior bars: never a
        symbol's first listed bar nor the last bar.
    late_listed : float, optional
        Fraction of symbols (rounded, at least one when positive) whose history starts at a
        random bar between 10% and 90% of the span (NaN before).
    delisted : float, optional
        Fraction of symbols (rounded, at least one when positive) whose history ends at a
        random bar after their first listed bar and before the last bar (NaN from there on);
        drawn from its own stream, so the other values do not change.
    vol_scale : float, optional
        Per-bar volatility multiplier (see `plan`); 1.0 for daily bars.

    Returns
    -------
    dict of str to numpy.ndarray
        ``open, high, low, close, volume``: float64 arrays of shape ``(n_bars, n_symbols)``.
    """
    p, state = plan(
        n_bars,
        n_symbols,
        seed,
        missing=missing,
        late_listed=late_listed,
        delisted=delisted,
        vol_scale=vol_scale,
    )
    out = {f: np.empty((p.n_bars, p.n_symbols)) for f in FIELDS}
    for k in range(p.n_blocks):
        part, state = block(k, p, state)
        t0 = k * _BLOCK
        for f in FIELDS:
            out[f][t0 : t0 + part[f].shape[0]] = part[f]
    return out
