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

The market is generated in fixed blocks of bars, each from its own child of
``SeedSequence(seed)``, so the result depends on ``(n_bars, n_symbols, seed, missing,
late_listed)`` only, and memory beyond the outputs stays a few blocks' worth.
"""

from __future__ import annotations

import math

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


def synthetic_ohlcv(
    n_bars: int,
    n_symbols: int,
    seed: int,
    *,
    missing: float = 0.0,
    late_listed: float = 0.0,
    delisted: float = 0.0,
) -> dict[str, np.ndarray]:
    """Generate a seeded OHLCV market.

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

    Returns
    -------
    dict of str to numpy.ndarray
        ``open, high, low, close, volume``: float64 arrays of shape ``(n_bars, n_symbols)``.
    """
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
    T, N = int(n_bars), int(n_symbols)
    root = np.random.SeedSequence(seed)
    children = root.spawn(1 + -(-T // _BLOCK))
    prng = np.random.default_rng(children[0])

    # Per-symbol parameters.
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

    out = {f: np.empty((T, N)) for f in FIELDS}
    o_all, h_all, l_all, c_all, v_all = (out[f] for f in FIELDS)
    # Work buffers reused by every block: fresh temporaries would be page-faulted in each time.
    u32 = np.empty((_BLOCK, N), np.float32)
    v32 = np.empty((_BLOCK, N), np.float32)
    r_buf, s_buf, w_buf, h_buf = (np.empty((_BLOCK, N)) for _ in range(4))
    zm_prev = 0.0
    sv_m = _SD_HM * math.sqrt(1 - _PHI_M**2)
    # The idiosyncratic log-vol moves slowly (half-life ~23 bars): step it every _VSTEP bars.
    phi_c = _PHI_I**_VSTEP
    sv_c = _SD_HI * math.sqrt(1 - phi_c**2) * math.sqrt(12.0)  # uniform shocks, unit variance
    sqrt12 = math.sqrt(12.0)
    for b, child in enumerate(children[1:]):
        rng = np.random.default_rng(child)
        t0, t1 = b * _BLOCK, min(T, (b + 1) * _BLOCK)
        L = t1 - t0
        Lc = -(-L // _VSTEP)
        U, V = u32[:L], v32[:L]
        r, s, w, h = r_buf[:L], s_buf[:L], w_buf[:L], h_buf[:L]

        # Market factor with leverage: the vol shock leans against the previous return shock.
        zm = rng.standard_normal(L)
        lagged = np.concatenate([[zm_prev], zm[:-1]])
        eta = _RHO_LEVERAGE * lagged + math.sqrt(1 - _RHO_LEVERAGE**2) * rng.standard_normal(L)
        hm = _ar1((sv_m * eta)[:, None], _PHI_M, h_m)
        h_m, zm_prev = hm[-1], zm[-1]
        sm = _SIG_M * np.exp(hm[:, 0])
        m = sm * zm
        jm = _scatter(rng, L, _P_JUMP_M)
        m[jm] += rng.normal(-0.02, 0.03, jm.size)

        # Idiosyncratic log-vol on the coarse grid, repeated to bars.
        e = rng.random((Lc, N))
        e -= 0.5
        e *= sv_c
        hc = _ar1(e, phi_c, h_i)
        h_i = hc[-1].copy()
        h_buf[: Lc * _VSTEP].reshape(Lc, _VSTEP, N)[...] = hc[:, None, :]
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
        ji = _scatter(rng, L * N, _P_JUMP_I)
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

        c = c_all[t0:t1]
        o = o_all[t0:t1]
        # log close: running sum row by row (numpy's axis-0 cumsum is ~2x slower here).
        np.add(log_c, r[0], out=c[0])
        for t in range(1, L):
            np.add(c[t - 1], r[t], out=c[t])
        o[0] = log_c
        o[1:] = c[:-1]
        log_c = c[-1].copy()
        o += w
        np.exp(o, out=o)
        np.exp(c, out=c)
        hi_ = h_all[t0:t1]
        lo_ = l_all[t0:t1]
        np.maximum(o, c, out=hi_)
        np.minimum(o, c, out=lo_)
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
        v = v_all[t0:t1]
        np.abs(r, out=r)
        r /= s
        r *= 0.5
        np.multiply(h, 0.5, out=v)
        v += r
        v += log_v0
        rng.random(dtype=np.float32, out=U)
        np.subtract(U, 0.5, out=w)
        w *= 0.3 * sqrt12
        v += w
        np.exp(v, out=v)
        np.rint(v, out=v)
        np.maximum(v, 1.0, out=v)

        if missing > 0:
            rng.random(dtype=np.float32, out=U)
            hole = U < missing
            rows = np.arange(t0, t1)[:, None]
            hole &= (rows > listed) & (rows < T - 1)  # interior only
            for a in (o, hi_, lo_, c, v):
                a[hole] = np.nan

    for i in np.flatnonzero(listed):
        for a in (o_all, h_all, l_all, c_all, v_all):
            a[: listed[i], i] = np.nan
    if delisted > 0 and T > 2:
        drng = np.random.default_rng(root.spawn(1)[0])
        k = min(N, max(1, math.floor(delisted * N + 0.5)))
        gone = drng.choice(N, size=k, replace=False)
        for i in gone:
            lo = int(listed[i]) + 1
            if lo > T - 2:
                continue
            end = int(drng.integers(max(lo, T // 5), max(lo, T // 5, T - 2) + 1))
            for a in (o_all, h_all, l_all, c_all, v_all):
                a[end:, i] = np.nan
    return out
