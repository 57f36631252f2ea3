"""ndarray kernels of the ML stage: labels, row windows, standardization, fold metrics.

Plain numpy in and out (docs/ARCHITECTURE.md, layers): no xarray, dask, torch or xgboost here, so every piece of
arithmetic that decides what a model sees can be tested on tiny arrays.

Layout: market arrays are ``(time, symbol)``; feature arrays are ``(time, symbol, feature)``.
"""

from __future__ import annotations

import numpy as np


def forward_return(close: np.ndarray, horizon: int) -> np.ndarray:
    """Return over the next `horizon` bars: ``close[t+h] / close[t] - 1`` along axis 0.

    NaN where ``t + h`` lies past the end of `close` or either price is missing, so a caller that
    passes only the bars known at some time can never build a label from later bars.
    """
    close = np.asarray(close, dtype=np.float64)
    out = np.full(close.shape, np.nan)
    if 0 < horizon < close.shape[0]:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def binary_labels(fwd: np.ndarray) -> np.ndarray:
    """1.0 where the forward return is > 0, 0.0 where it is <= 0, NaN where it is unknown."""
    fwd = np.asarray(fwd, dtype=np.float64)
    return np.where(np.isnan(fwd), np.nan, (fwd > 0).astype(np.float64))


def take_rows(parts: list[np.ndarray], start: int, lo: int, hi: int) -> np.ndarray:
    """Rows ``[lo, hi)`` (global bar indices) of the concatenation of `parts` that starts at `start`.

    Rows outside the parts (before the first bar of the data, typically a sequence model's
    lookback at the very start) come back as NaN, which the callers treat as "no input".
    """
    if not parts:
        raise ValueError("take_rows needs at least one part")
    full = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    n = full.shape[0]
    out = np.full((hi - lo, *full.shape[1:]), np.nan, dtype=np.float64)
    src_lo, src_hi = max(lo, start), min(hi, start + n)
    if src_hi > src_lo:
        out[src_lo - lo : src_hi - lo] = full[src_lo - start : src_hi - start]
    return out


def sequence_windows(x: np.ndarray, lookback: int) -> np.ndarray:
    """Windows of the last `lookback` bars: ``(n, S, F)`` -> ``(n - lookback + 1, S, lookback, F)``.

    Window ``i`` ends at row ``i + lookback - 1`` (its last element is that row's features).
    """
    win = np.lib.stride_tricks.sliding_window_view(x, lookback, axis=0)  # (n-L+1, S, F, L)
    return np.ascontiguousarray(np.moveaxis(win, -1, 2))


def finite_rows(x: np.ndarray) -> np.ndarray:
    """Mask over axis 0: rows whose every value (all trailing axes) is finite."""
    x = np.asarray(x)
    if x.ndim == 1:
        return np.isfinite(x)
    return np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)


def standardization_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std per column of a ``(rows, F)`` array of finite training rows.

    A constant (or empty) column gets std 1 so standardizing it gives 0, never inf.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 0:
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    return mean, std


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` over the last axis (feature), float32 for the models."""
    return ((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32)


def signal_from_proba(p: np.ndarray) -> np.ndarray:
    """Signal ``2p - 1`` clipped to [-1, 1]; no prediction (NaN) is no signal (0)."""
    s = 2.0 * np.asarray(p, dtype=np.float64) - 1.0
    return np.clip(np.where(np.isfinite(s), s, 0.0), -1.0, 1.0)


# --- fold quality -------------------------------------------------------------------------


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy's ``rankdata(method='average')``)."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # first index of each run of equal values, and the run each element belongs to
    new_run = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], a.size]
    avg = (starts + ends + 1) / 2.0  # mean of the 1-based ranks start+1..end
    ranks = np.empty(a.size)
    ranks[order] = avg[run_id]
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when fewer than 2 rows or either side is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt((da * da).sum() * (db * db).sum())
    return float((da * db).sum() / den) if den > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of average ranks)."""
    if np.asarray(a).size < 2:
        return float("nan")
    return pearson(rankdata(a), rankdata(b))


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    """Share of rows where ``p > 0.5`` matches the label; NaN for no rows."""
    p = np.asarray(p)
    if p.size == 0:
        return float("nan")
    return float(((p > 0.5) == (np.asarray(y) > 0.5)).mean())


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic (ties count half); NaN with one class only."""
    p = np.asarray(p, dtype=np.float64)
    pos = np.asarray(y) > 0.5
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def fold_metrics(p: np.ndarray, fwd: np.ndarray) -> dict[str, float]:
    """IC, rank IC, accuracy and AUC of probabilities `p` against forward returns `fwd`.

    Pooled over all (time, symbol) cells where both are finite; ``n_eval`` counts them.
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    fwd = np.asarray(fwd, dtype=np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(fwd)
    p, fwd = p[ok], fwd[ok]
    y = (fwd > 0).astype(np.float64)
    return {
        "n_eval": int(p.size),
        "ic": pearson(p, fwd),
        "rank_ic": spearman(p, fwd),
        "accuracy": accuracy(p, y),
        "auc": auc(p, y),
    }
