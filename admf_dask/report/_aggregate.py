"""Aggregation kernels of the report: ndarrays in, ndarrays out (no xarray, dask or bokeh).

The report never holds every equity curve at once: the loader feeds these kernels one block of
``equity`` (time × portfolio) at a time and keeps only their small outputs (docs/ARCHITECTURE.md, layers).

Display downsampling (min/max per bucket)
-----------------------------------------
A series longer than the point budget (``points``, about two per pixel of a 1,360-px plot) is
drawn from buckets of consecutive bars: `display_edges` keeps the first and the last bar as
buckets of their own and splits the bars between them into ``(points - 2) // 2`` buckets of
``k`` or ``k + 1`` bars. Each bucket becomes two points, its minimum and its maximum (NaN
skipped), in the order they occur, placed at the bucket's first and last bar. Extremes are thus
exact in value (a spike, a drawdown's trough, a band's outer quantile at its widest are never
averaged away) and off in time by less than one bucket, i.e. under a pixel. A bucket whose
column is all NaN gives two NaN (a gap in the line). A series within the budget is returned as
is. The kernels are incremental (`minmax_init`, `minmax_update` per block of rows, in time
order, `minmax_points` at the end) so a caller can stream chunks of a long series through them;
`minmax_downsample` is the one-shot form.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "display_edges",
    "display_rows",
    "drawdown",
    "ExposureStream",
    "exposure",
    "exposure_from_orders",
    "group_mean",
    "merge_sketches",
    "minmax_downsample",
    "minmax_init",
    "minmax_points",
    "minmax_update",
    "pick_best_median_worst",
    "positions_from_orders",
    "quantile_sketch",
    "row_quantiles",
    "top_n",
]


def row_quantiles(block: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles of each row of ``block`` over its columns, skipping NaN.

    Same values as ``np.nanquantile(block, qs, axis=1)`` (linear interpolation), without its slow
    per-row path.

    Parameters
    ----------
    block : ndarray, shape (rows, cols)
    qs : sequence of float in [0, 1]

    Returns
    -------
    ndarray, shape (len(qs), rows); NaN for a row with no finite value.
    """
    block = np.asarray(block, dtype=np.float64)
    q = np.asarray(qs, dtype=np.float64)
    rows, cols = block.shape
    if cols == 0:
        return np.full((len(q), rows), np.nan)
    if not np.isnan(block).any():
        return np.quantile(block, q, axis=1)  # partition-based: the fast common case
    srt = np.sort(block, axis=1)  # NaN sort last
    n = (~np.isnan(srt)).sum(axis=1)
    h = (np.maximum(n, 1) - 1)[None, :] * q[:, None]  # (nq, rows) fractional rank
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0)[None, :])
    r = np.arange(rows)[None, :]
    a, b = srt[r, lo], srt[r, hi]
    out = a + (h - lo) * (b - a)
    out[:, n == 0] = np.nan
    return out


def quantile_sketch(block: np.ndarray, size: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """Summarise each row of a column block by ``size`` evenly spaced quantiles.

    Used when a time slab of every portfolio would not fit the memory budget: the loader reads
    portfolio blocks instead, sketches each, and `merge_sketches` combines them.

    Parameters
    ----------
    block : ndarray, shape (rows, cols)
    size : int
        Points per row (rank error of the merge is about ``1 / (size - 1)``).

    Returns
    -------
    sketch : ndarray, shape (rows, size)
        Quantiles at ``linspace(0, 1, size)`` of each row's finite values.
    counts : ndarray of int64, shape (rows,)
        Finite values per row.
    """
    block = np.asarray(block, dtype=np.float64)
    counts = np.isfinite(block).sum(axis=1).astype(np.int64)
    sketch = row_quantiles(np.where(np.isfinite(block), block, np.nan), np.linspace(0, 1, size)).T
    return np.ascontiguousarray(sketch), counts


def merge_sketches(
    sketches: Sequence[np.ndarray], counts: Sequence[np.ndarray], qs: Sequence[float]
) -> np.ndarray:
    """Approximate row quantiles of the union of blocks from their `quantile_sketch`.

    Each block's CDF is linear between its sketch points; the union's CDF is their count-weighted
    mean, which is inverted at ``qs``.

    Returns
    -------
    ndarray, shape (len(qs), rows); NaN where no block has a finite value.
    """
    q = np.asarray(qs, dtype=np.float64)
    sk = np.stack(sketches)  # (blocks, rows, size)
    cn = np.stack(counts).astype(np.float64)  # (blocks, rows)
    n_blocks, rows, size = sk.shape
    grid = np.linspace(0, 1, size)
    out = np.full((len(q), rows), np.nan)
    for r in range(rows):
        live = cn[:, r] > 0
        if not live.any():
            continue
        pts, w = sk[live, r], cn[live, r]
        if len(w) == 1:
            out[:, r] = np.interp(q, grid, pts[0])
            continue
        xs = np.unique(pts)
        cdf = sum(wb * np.interp(xs, pb, grid) for pb, wb in zip(pts, w, strict=True)) / w.sum()
        # a block's lowest point has CDF 0 by construction: pin the union's ends to its extremes
        cdf[0], cdf[-1] = 0.0, 1.0
        out[:, r] = np.interp(q, np.maximum.accumulate(cdf), xs)
    return out


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown ``equity / running peak - 1`` along axis 0 (≤ 0; NaN where equity is NaN)."""
    eq = np.asarray(equity, dtype=np.float64)
    peak = np.fmax.accumulate(eq, axis=0)  # fmax: a NaN bar does not reset the peak
    with np.errstate(divide="ignore", invalid="ignore"):
        return eq / peak - 1.0


def _finite_order(score: np.ndarray) -> np.ndarray:
    """Indices of the finite scores, ascending by score; ties keep the lower index first."""
    s = np.asarray(score, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(s))
    return idx[np.argsort(s[idx], kind="stable")]


def pick_best_median_worst(score: np.ndarray) -> tuple[int, int, int]:
    """Indices of the highest, median and lowest finite score.

    The median is the lower median (position ``(n - 1) // 2`` of the ascending order) so it is an
    actual portfolio; ties go to the lowest index. When no score is finite all three are 0.
    """
    order = _finite_order(score)
    if order.size == 0:
        return 0, 0, 0
    s = np.asarray(score, dtype=np.float64)
    best = int(order[s[order] == s[order[-1]]].min())  # the lowest id among tied maxima
    return best, int(order[(order.size - 1) // 2]), int(order[0])


def top_n(score: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest finite scores, best first (ties: lower index first)."""
    s = np.asarray(score, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(s))
    return idx[np.argsort(-s[idx], kind="stable")][: max(n, 0)]


def group_mean(
    values: np.ndarray, codes_x: np.ndarray, codes_y: np.ndarray, nx: int, ny: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per (y, x) cell over everything else (the heatmap aggregation).

    Parameters
    ----------
    values : ndarray, shape (n,)
        One metric per portfolio; non-finite values are left out.
    codes_x, codes_y : ndarray of int, shape (n,)
        Level of each portfolio on the x and y parameters, in ``[0, nx)`` and ``[0, ny)``.

    Returns
    -------
    mean : ndarray, shape (ny, nx); NaN for a cell without a finite value.
    count : ndarray of int64, shape (ny, nx); finite values per cell.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    cell = np.asarray(codes_y, dtype=np.int64) * nx + np.asarray(codes_x, dtype=np.int64)
    total = np.bincount(cell[ok], weights=v[ok], minlength=nx * ny)
    count = np.bincount(cell[ok], minlength=nx * ny)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean.reshape(ny, nx), count.reshape(ny, nx).astype(np.int64)


def positions_from_orders(
    time_idx: np.ndarray, symbol_idx: np.ndarray, qty: np.ndarray, n_time: int, n_symbols: int
) -> np.ndarray:
    """Shares held after each bar, from the order records of one portfolio.

    Returns
    -------
    ndarray, shape (n_time, n_symbols): cumulative ``qty`` of fills at or before each bar.
    """
    flow = np.zeros((n_time, n_symbols))
    np.add.at(flow, (np.asarray(time_idx), np.asarray(symbol_idx)), np.asarray(qty, np.float64))
    return np.cumsum(flow, axis=0)


def exposure(
    shares: np.ndarray, price: np.ndarray, equity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gross and net exposure as fractions of equity.

    Parameters
    ----------
    shares : ndarray, shape (time, symbol)
    price : ndarray, shape (time, symbol)
        Mark prices; NaN is carried forward from the last finite price (0 before the first).
    equity : ndarray, shape (time,)

    Returns
    -------
    gross, net : ndarray, shape (time,): ``Σ|q·p| / equity`` and ``Σ q·p / equity``.
    """
    p = np.asarray(price, dtype=np.float64)
    idx = np.where(np.isfinite(p), np.arange(p.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)  # forward fill: index of the last finite price
    marks = np.nan_to_num(p[idx, np.arange(p.shape[1])[None, :]], nan=0.0)
    value = np.asarray(shares, dtype=np.float64) * marks
    eq = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(value).sum(axis=1) / eq, value.sum(axis=1) / eq


class ExposureStream:
    """Gross and net exposure of one portfolio from its orders, fed blocks of bars in time order.

    The values of `positions_from_orders` then `exposure` with marks at the close for every
    symbol in ``use_close`` (a finite close on some bar), else at its fill prices, in
    O(block × symbols) memory: the shares and the last mark are carried from block to block (the
    running sums add in the same order, so the result is the same to the bit whatever the blocks).
    """

    def __init__(
        self,
        time_idx: np.ndarray,
        symbol_idx: np.ndarray,
        qty: np.ndarray,
        fill_price: np.ndarray,
        n_symbols: int,
        use_close: np.ndarray | None = None,
    ) -> None:
        order = np.argsort(np.asarray(time_idx, np.int64), kind="stable")
        self.t = np.asarray(time_idx, np.int64)[order]
        self.s = np.asarray(symbol_idx, np.int64)[order]
        self.q = np.asarray(qty, np.float64)[order]
        self.p = np.asarray(fill_price, np.float64)[order]
        self.n_symbols = n_symbols
        self.use_close = np.zeros(n_symbols, bool) if use_close is None else use_close
        self.shares = np.zeros(n_symbols)
        self.mark = np.full(n_symbols, np.nan)  # last finite mark before the next block

    def step(
        self, a: int, equity: np.ndarray, close: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gross and net exposure of bars ``a : a + len(equity)``; ``close`` (those bars ×
        symbols) is read only for the ``use_close`` columns."""
        n_sym, cols = self.n_symbols, np.arange(self.n_symbols)
        b = a + len(equity)
        t, s, q, p = self.t, self.s, self.q, self.p
        i0, i1 = np.searchsorted(t, [a, b])
        flow = np.zeros((b - a + 1, n_sym))  # row 0: the shares carried in
        flow[0] = self.shares
        np.add.at(flow, (t[i0:i1] - a + 1, s[i0:i1]), q[i0:i1])
        held = np.cumsum(flow, axis=0)
        marks = np.full((b - a + 1, n_sym), np.nan)  # row 0: the last mark carried in
        marks[0] = self.mark
        marks[t[i0:i1] - a + 1, s[i0:i1]] = p[i0:i1]
        if close is not None and self.use_close.any():
            marks[1:, self.use_close] = np.asarray(close, np.float64)[:, self.use_close]
        g, n = exposure(held, marks, np.r_[1.0, np.asarray(equity, np.float64)])
        self.shares = held[-1]
        fin = np.isfinite(marks)
        last = marks.shape[0] - 1 - np.argmax(fin[::-1], axis=0)
        self.mark = np.where(fin.any(axis=0), marks[last, cols], np.nan)
        return g[1:], n[1:]


def exposure_from_orders(
    time_idx: np.ndarray,
    symbol_idx: np.ndarray,
    qty: np.ndarray,
    fill_price: np.ndarray,
    n_symbols: int,
    equity: np.ndarray,
    close: np.ndarray | None = None,
    block: int = 16_384,
) -> tuple[np.ndarray, np.ndarray]:
    """Gross and net exposure of one portfolio from its orders, ``block`` bars at a time
    (`ExposureStream` over a whole series; ``close``: shape (time, symbol) or None).

    Returns
    -------
    gross, net : ndarray, shape (time,)
    """
    eq = np.asarray(equity, dtype=np.float64)
    n_t = eq.shape[0]
    use_close = np.zeros(n_symbols, bool)
    if close is not None:
        for a in range(0, n_t, block):
            use_close |= np.isfinite(close[a : a + block]).any(axis=0)
    stream = ExposureStream(time_idx, symbol_idx, qty, fill_price, n_symbols, use_close)
    gross, net = np.empty(n_t), np.empty(n_t)
    for a in range(0, n_t, block):
        b = min(n_t, a + block)
        gross[a:b], net[a:b] = stream.step(a, eq[a:b], None if close is None else close[a:b])
    return gross, net


# -- display downsampling (see the module docstring) ----------------------------------------------
#: index of a bucket's extreme before any finite value was seen
_NO_INDEX = np.iinfo(np.int64).max


def display_edges(n: int, points: int) -> np.ndarray | None:
    """Bucket edges (rows ``edges[j]:edges[j + 1]``) drawing ``n`` bars in at most ``points``.

    None when ``n <= points`` (every bar is drawn). Otherwise the first and the last bar are
    buckets of one bar and the ``n - 2`` bars between them are split evenly into
    ``(points - 2) // 2`` buckets (``points`` ≥ 4).
    """
    if n <= points:
        return None
    if points < 4:
        raise ValueError(f"points must be at least 4 (got {points})")
    m = (points - 2) // 2
    inner = np.linspace(1, n - 1, m + 1).round().astype(np.int64)
    return np.concatenate([[0], inner, [n]]).astype(np.int64)


def minmax_init(edges: np.ndarray, cols: int) -> tuple[np.ndarray, ...]:
    """Empty accumulators ``(lo, lo_at, hi, hi_at)`` for `minmax_update`, shape (buckets, cols)."""
    shape = (len(edges) - 1, cols)
    return (
        np.full(shape, np.nan),
        np.full(shape, _NO_INDEX, np.int64),
        np.full(shape, np.nan),
        np.full(shape, _NO_INDEX, np.int64),
    )


def _first_index(
    block: np.ndarray, target: np.ndarray, seg: np.ndarray, starts: np.ndarray, row0: int
) -> np.ndarray:
    """Row (absolute) of the first occurrence of each segment's ``target`` value per column."""
    rows = np.arange(row0, row0 + block.shape[0], dtype=np.int64)[:, None]
    at = np.where(block == target[seg], rows, _NO_INDEX)
    return np.minimum.reduceat(at, starts, axis=0)


def minmax_update(
    block: np.ndarray, row0: int, edges: np.ndarray, acc: tuple[np.ndarray, ...]
) -> None:
    """Fold rows ``row0 : row0 + len(block)`` of a series (time × cols) into ``acc`` in place.

    Blocks may cut buckets anywhere; feed them in time order (ties keep the earlier row).
    """
    block = np.asarray(block, dtype=np.float64)
    if block.ndim == 1:
        block = block[:, None]
    n_rows = block.shape[0]
    if n_rows == 0:
        return
    lo, lo_at, hi, hi_at = acc
    rows = np.arange(row0, row0 + n_rows)
    bucket = np.searchsorted(edges, rows, side="right") - 1
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ids = bucket[starts]
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n_rows]))
    with np.errstate(invalid="ignore"):
        b_lo = np.fmin.reduceat(block, starts, axis=0)  # fmin/fmax: NaN skipped
        b_hi = np.fmax.reduceat(block, starts, axis=0)
    b_lo_at = _first_index(block, b_lo, seg, starts, row0)
    b_hi_at = _first_index(block, b_hi, seg, starts, row0)
    for cur, cur_at, new, new_at, better in (
        (lo, lo_at, b_lo, b_lo_at, np.less),
        (hi, hi_at, b_hi, b_hi_at, np.greater),
    ):
        old = cur[ids]
        take = better(new, old) | (np.isnan(old) & ~np.isnan(new))
        cur[ids] = np.where(take, new, old)
        cur_at[ids] = np.where(take, new_at, cur_at[ids])


def minmax_points(edges: np.ndarray, acc: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The display points of the accumulated buckets.

    Returns
    -------
    rows : ndarray of int64, shape (points,)
        The bar each point is drawn at: a bucket's first bar, then its last (one point for a
        one-bar bucket).
    values : ndarray, shape (points, cols)
        Per bucket its minimum and maximum in the order they occur.
    """
    lo, lo_at, hi, hi_at = acc
    two = np.diff(edges) > 1
    lo_first = lo_at <= hi_at  # all-NaN: both _NO_INDEX, both values NaN
    a = np.where(lo_first, lo, hi)
    b = np.where(lo_first, hi, lo)
    n_b, cols = lo.shape
    vals = np.empty((n_b, 2, cols))
    vals[:, 0], vals[:, 1] = a, b
    keep = np.stack([np.ones(n_b, bool), two], axis=1).ravel()
    return display_rows(edges), vals.reshape(2 * n_b, cols)[keep]


def display_rows(edges: np.ndarray) -> np.ndarray:
    """The bars the display points of ``edges`` are drawn at: each bucket's first bar, then its
    last (one point for a one-bar bucket)."""
    first, last = edges[:-1], edges[1:] - 1
    rows = np.stack([first, last], axis=1).ravel()
    keep = np.stack([np.ones(len(first), bool), last > first], axis=1).ravel()
    return rows[keep]


def minmax_downsample(values: np.ndarray, points: int) -> tuple[np.ndarray | None, np.ndarray]:
    """`display_edges` + one `minmax_update` + `minmax_points` over a whole (time, …) array.

    Returns ``(None, values)`` unchanged when the series fits ``points``; the values keep their
    dtype and shape (1-D in, 1-D out).
    """
    v = np.asarray(values)
    edges = display_edges(v.shape[0], points)
    if edges is None:
        return None, v
    flat = v.reshape(v.shape[0], -1)
    acc = minmax_init(edges, flat.shape[1])
    minmax_update(flat, 0, edges, acc)
    rows, out = minmax_points(edges, acc)
    return rows, out.astype(v.dtype, copy=False).reshape(len(rows), *v.shape[1:])
