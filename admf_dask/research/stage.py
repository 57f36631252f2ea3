"""The research stage (docs/RESEARCH.md): psr / dsr, PBO by CSCV and walk-forward selection.

The equity is read lazily from ``results.zarr`` in portfolio chunks (all bars of a chunk in one
task, so 100,000 portfolios never sit in memory at once). Each chunk task reduces its returns to
moments and per-segment sums (`admf_dask.research._kernels`); every CSCV split and walk-forward
window is then a sum of segments. The selection of the best portfolio is global, so the graph
has two passes over the chunks' (small) sums: each chunk's best per split, reduced in portfolio
order (first on ties), then each chunk's count of portfolios below / equal to the selected one
out of sample. Only the walk-forward's selected columns are read again, for the stitched path.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from admf_dask.dasktools.fs import Loc, zarr_target
from admf_dask.dasktools.zarrtime import open_zarr
from admf_dask.errors import InputError
from admf_dask.research import _kernels as _k

if TYPE_CHECKING:
    # pydantic stays out of the workers, which import this module for the stage's tasks
    from admf_dask.research.config import ResearchConfig

#: bytes of equity one chunk task reads (all bars × its portfolios)
CHUNK_BYTES = 64 * 2**20


@dataclass
class ResearchResult:
    """What the research stage computed.

    Attributes
    ----------
    psr, dsr : ndarray (P,)
        Probabilistic Sharpe ratio against 0 and deflated Sharpe ratio, per portfolio.
    sharpe : ndarray (P,)
        Per-bar Sharpe ratio ``mean / std(ddof=1)`` of each portfolio's returns.
    summary : dict
        research.json's content: ``dsr`` (SR0, N, V), ``best`` (full sample), ``pbo``,
        ``walk_forward``.
    wfo_equity : ndarray (T,) or None
        The stitched walk-forward equity, NaN before the first out-of-sample bar.
    """

    psr: np.ndarray
    dsr: np.ndarray
    sharpe: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)
    wfo_equity: np.ndarray | None = None


def walk_forward_windows(n_bars: int, train: int, test: int, anchored: bool) -> np.ndarray:
    """Windows (W, 4) ``is_start, is_end, oos_start, oos_end`` (ends exclusive) of docs/RESEARCH.md:
    in-sample ``[k·test, k·test+train)`` (anchored: from 0), out-of-sample the next ``test`` bars
    cut at ``n_bars``, for k = 0, 1, … while the out-of-sample is not empty."""
    rows = []
    k = 0
    while k * test + train < n_bars:
        a = k * test + train
        rows.append((0 if anchored else k * test, a, a, min(a + test, n_bars)))
        k += 1
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


def _segments(windows: np.ndarray, n_bars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment edges covering every window bound, and each window's IS / OOS segment ranges."""
    edges = np.unique(np.concatenate(([0, n_bars], windows.ravel())))
    pos = {int(e): i for i, e in enumerate(edges)}

    def ranges(lo, hi):
        return np.asarray([(pos[int(a)], pos[int(b)]) for a, b in zip(lo, hi, strict=True)])

    is_r = ranges(windows[:, 0], windows[:, 1]).reshape(-1, 2).astype(np.int64)
    oos_r = ranges(windows[:, 2], windows[:, 3]).reshape(-1, 2).astype(np.int64)
    return edges.astype(np.int64), is_r, oos_r


def _chunk_pass(equity, capital, blocks, m1, m2, wf_edges, wf_is, wf_oos):
    """One chunk of portfolios (T, p): moments, CSCV block sums, the chunk's bests."""
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    mom = _k.full_moments(eq, float(capital))
    center = np.where(np.isfinite(mom[_k.M_MEAN]), mom[_k.M_MEAN], 0.0)
    sums = _k.segment_sums(eq, float(capital), center, blocks)
    best = _k.cscv_best(sums, center, m1, m2)
    wf = None
    if wf_edges is not None:
        wsums = _k.segment_sums(eq, float(capital), center, wf_edges)
        is_sr = _k.range_sharpe(wsums, center, wf_is)
        oos_sr = _k.range_sharpe(wsums, center, wf_oos)
        ranked = np.where(np.isfinite(is_sr), is_sr, -np.inf)
        j = np.argmax(ranked, axis=1)  # the first of the highest
        w = np.arange(len(j))
        wf = (ranked[w, j], j.astype(np.int64), oos_sr[w, j], is_sr[w, j])
    return (sums, center), {"moments": mom, "best": best, "wf": wf}


def _first_best(parts: list[tuple[np.ndarray, ...]], offsets: list[int]):
    """Reduce the chunks' bests in portfolio order: the highest wins, the first on ties."""
    val, idx, *rest = (np.array(a, copy=True) for a in parts[0])
    idx = idx + offsets[0]
    for part, off in zip(parts[1:], offsets[1:], strict=True):
        v, i, *r = part
        better = v > val
        val = np.where(better, v, val)
        idx = np.where(better, i + off, idx)
        rest = [np.where(better, x, y) for x, y in zip(r, rest, strict=True)]
    return val, idx, *rest


def _reduce_bests(summaries: list[dict[str, Any]], offsets: list[int]):
    cscv = _first_best([s["best"] for s in summaries], offsets)
    wf = None
    if summaries[0]["wf"] is not None:
        wf = _first_best([s["wf"] for s in summaries], offsets)
    return {"cscv": cscv, "wf": wf}


def _target(reduced: dict[str, Any]) -> np.ndarray:
    oos = reduced["cscv"][2]
    return np.where(np.isfinite(oos), oos, -np.inf)


def _count_pass(packed, m1, m2, target):
    sums, center = packed
    return _k.cscv_count(sums, center, m1, m2, target)


def warm_research() -> None:
    """Load the research kernels from numba's cache (compiled into it when it is cold) for the
    argument types the stage's tasks pass: a tiny chunk through both passes, walk-forward too.
    The runner has each worker run it while the portfolio stage is prepared, so that the first
    research tasks find them loaded (tens of milliseconds per worker)."""
    T = 12
    equity = 100.0 + np.arange(2.0 * T).reshape(T, 2)
    blocks = _k.block_edges(T, 2)
    m1, m2 = _k.split_masks(2)
    edges, is_r, oos_r = _segments(walk_forward_windows(T, 4, 4, False), T)
    packed, summary = _chunk_pass(equity, 100.0, blocks, m1, m2, edges, is_r, oos_r)
    _count_pass(packed, m1, m2, _target(_reduce_bests([summary], [0])))


def _moments_of(summary: dict[str, Any]) -> np.ndarray:
    return summary["moments"]


def _add_counts(counts: list[tuple[np.ndarray, np.ndarray]]):
    below = np.sum([c[0] for c in counts], axis=0)
    equal = np.sum([c[1] for c in counts], axis=0)
    return below, equal


def portfolio_chunk(n_bars: int, n_portfolios: int, stored: int, n_tasks: int = 8) -> int:
    """Portfolios per chunk task: a multiple of the stored chunk, about ``n_tasks`` tasks, at
    most `CHUNK_BYTES` of equity each."""
    stored = max(1, int(stored))
    cap = max(1, CHUNK_BYTES // (8 * max(1, n_bars)) // stored) * stored
    want = -(-max(1, n_portfolios) // n_tasks)
    want = -(-want // stored) * stored
    return int(min(cap, max(stored, want)))


def research_stage(
    results_path: str | Path | Loc,
    cfg: ResearchConfig,
    *,
    capital: float | None = None,
    periods_per_year: float | None = None,
    chunk: int | None = None,
) -> ResearchResult:
    """Compute the research statistics of the equity in ``results_path``.

    Runs on the current dask scheduler (the run's client inside `admf_dask.run`; else dask's
    default, threads).

    Parameters
    ----------
    results_path : str or Path
        A ``results.zarr`` holding ``equity`` (time, portfolio).
    cfg : ResearchConfig
        The ``research:`` section (checked against the number of bars here).
    capital, periods_per_year : float, optional
        Default: the store's attributes (as the portfolio stage wrote them).
    chunk : int, optional
        Portfolios per task (default: `portfolio_chunk`).

    Returns
    -------
    ResearchResult
    """
    import dask
    import zarr

    from admf_dask.research.config import check_research  # pydantic: not at import (workers)

    # a Loc: results.zarr under the temporary prefix of a run to a store (read by the tasks)
    remote = isinstance(results_path, Loc) and not results_path.is_local
    path = results_path if remote else Path(results_path)
    found = (path / "equity" / "zarr.json").exists() if remote else (path / "equity").is_dir()
    if not found:
        raise InputError(str(path), "holds no equity", "run the pipeline again to write it")
    path = zarr_target(path, read_only=True) if remote else path
    # shape, chunks and attributes from the metadata alone (an xarray open of the whole store
    # decodes every coordinate); the times come with the equity below
    group = zarr.open_group(store=path, mode="r")
    meta = group["equity"]
    T, P = meta.shape
    check_research(cfg, T)
    attrs = group.attrs
    capital = float(attrs.get("capital", 1.0) if capital is None else capital)
    if periods_per_year is None:
        periods_per_year = attrs.get("periods_per_year", 252.0)
    ppy = float(periods_per_year)
    stored = meta.chunks[1]
    pc = int(chunk) if chunk else portfolio_chunk(T, P, stored)
    with warnings.catch_warnings():  # coordinates stored in other chunks than equity: harmless
        warnings.filterwarnings("ignore", message="The specified chunks separate")
        equity = open_zarr(path, chunks={"time": -1, "portfolio": pc})["equity"]
    times = equity["time"].values

    blocks = _k.block_edges(T, cfg.cscv_blocks)
    m1, m2 = _k.split_masks(cfg.cscv_blocks)
    wf_cfg = cfg.walk_forward
    windows = wf_edges = wf_is = wf_oos = None
    if wf_cfg is not None:
        windows = walk_forward_windows(T, wf_cfg.train, wf_cfg.test, wf_cfg.anchored)
        wf_edges, wf_is, wf_oos = _segments(windows, T)

    # shared inputs: one graph key each, not a copy per task
    d_blocks, d_m1, d_m2 = (dask.delayed(x) for x in (blocks, m1, m2))
    d_wf = [dask.delayed(x) if x is not None else None for x in (wf_edges, wf_is, wf_oos)]
    blocks_d = equity.data.to_delayed().ravel()
    offsets = list(np.cumsum((0, *equity.data.chunks[1]))[:-1].astype(int))
    packed, summaries = [], []
    for blk in blocks_d:
        pk, sm = dask.delayed(_chunk_pass, nout=2)(blk, capital, d_blocks, d_m1, d_m2, *d_wf)
        packed.append(pk)
        summaries.append(sm)
    reduced = dask.delayed(_reduce_bests)(summaries, offsets)
    target = dask.delayed(_target)(reduced)
    counts = [dask.delayed(_count_pass)(pk, d_m1, d_m2, target) for pk in packed]
    total = dask.delayed(_add_counts)(counts)
    moments = [dask.delayed(_moments_of)(sm) for sm in summaries]
    reduced, (below, equal), moments = dask.compute(reduced, total, moments)
    mom = np.concatenate(moments, axis=1)

    sr, n, g3, g4 = _k.sharpe_moments(mom)
    psr = _k.probabilistic_sharpe(sr, n, g3, g4, 0.0)
    sr0, n_finite, var = _k.expected_max_sharpe(sr)
    dsr = _k.probabilistic_sharpe(sr, n, g3, g4, sr0) if n_finite >= 2 else np.full(P, np.nan)
    ranked = np.where(np.isfinite(sr), sr, -np.inf)
    best = int(np.argmax(ranked))
    summary: dict[str, Any] = {
        "n_portfolios": int(P),
        "n_bars": int(T),
        "dsr": {"sr0": sr0, "n": n_finite, "var_sr": var},
        "best": {
            "portfolio": best,
            "sharpe": float(sr[best]),
            "psr": float(psr[best]),
            "dsr": float(dsr[best]),
        },
        "pbo": _pbo_summary(cfg, blocks, reduced["cscv"], below, equal, P),
    }
    wfo_equity = None
    if windows is not None:
        wf_summary, wfo_equity = _walk_forward(
            equity, windows, reduced["wf"], times, capital, ppy, wf_cfg
        )
        summary["walk_forward"] = wf_summary
    else:
        summary["walk_forward"] = None
    return ResearchResult(psr=psr, dsr=dsr, sharpe=sr, summary=summary, wfo_equity=wfo_equity)


def _pbo_summary(cfg, blocks, cscv, below, equal, n_portfolios) -> dict[str, Any]:
    best_is, best_idx, best_oos = cscv
    lam = _k.logits(below, equal, n_portfolios)
    return {
        "cscv_blocks": int(cfg.cscv_blocks),
        "block_edges": [int(b) for b in blocks],
        "combinations": int(lam.size),
        "pbo": float(np.mean(lam <= 0.0)),
        "median_logit": float(np.median(lam)),
        "prob_oos_loss": float(np.mean(best_oos < 0.0)),
        "logits": lam.tolist(),
        "selected": best_idx.astype(int).tolist(),
        "is_sharpe": [_finite_or_none(x) for x in best_is],
        "oos_sharpe": [_finite_or_none(x) for x in best_oos],
    }


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _walk_forward(equity, windows, wf, times, capital, ppy, wf_cfg):
    """Per-window selections and the stitched out-of-sample path (its equity and metrics)."""
    from admf_dask.metrics import compute_metrics

    _, sel, oos_sr, is_sr = wf
    T = equity.shape[0]
    cols = np.unique(sel)
    picked = np.asarray(equity.isel(portfolio=cols).values, dtype=np.float64)  # (T, k)
    prev = np.vstack([np.full((1, cols.size), capital), picked[:-1]])
    rets = (picked - prev) / prev  # the metric returns, as admf_dask.metrics takes them
    col_of = {int(c): i for i, c in enumerate(cols)}
    path = np.full(T, np.nan)
    rows = []
    for w, (a, b, c, d) in enumerate(windows):
        p = int(sel[w])
        path[c:d] = rets[c:d, col_of[p]]
        rows.append(
            {
                "is_start": int(a),
                "is_end": int(b),
                "oos_start": int(c),
                "oos_end": int(d),
                "is_from": _day(times[a]),
                "is_to": _day(times[b - 1]),
                "oos_from": _day(times[c]),
                "oos_to": _day(times[d - 1]),
                "portfolio": p,
                "is_sharpe": _finite_or_none(is_sr[w]),
                "oos_sharpe": _finite_or_none(oos_sr[w]),
            }
        )
    first = int(windows[0, 2])
    growth = np.where(np.isnan(path[first:]), 0.0, path[first:]) + 1.0  # nan: no change
    wfo = np.full(T, np.nan)
    wfo[first:] = capital * np.cumprod(growth)
    metrics = compute_metrics(wfo[first:], capital, ppy)
    summary = {
        "train": int(wf_cfg.train),
        "test": int(wf_cfg.test),
        "anchored": bool(wf_cfg.anchored),
        "first_bar": first,
        "windows": rows,
        "metrics": {k: _finite_or_none(v[0]) for k, v in metrics.items()},
    }
    return summary, wfo


def _day(t) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "s")))[:19].replace("T00:00:00", "")
