"""Read a run folder into the small, aggregated pieces the report draws.

Nothing here holds all equity curves at once: the distribution band streams ``equity`` from Zarr
in blocks through the kernels of `_aggregate`, orders are read only for the few portfolios the
report shows (Parquet predicate push-down), and the traded symbols' closes are read block by block
of bars (`Closes`), each block folded into the shown series' display points (`DisplaySink`).

Long series are drawn at most `DISPLAY_POINTS` points per line: the band's quantiles are reduced
block by block as they are computed, other series by `display_columns` (min/max per bucket of
bars, `_aggregate.display_edges`); the full data stays a notebook call away
(``ad.open_run(dir).equity``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from admf_dask.dasktools.fs import Loc, arrow_target, zarr_target
from admf_dask.data.dates import as_time, open_zarr
from admf_dask.errors import InputError
from admf_dask.report import _aggregate as agg

#: metrics of docs/ACCOUNTING.md, in display order; any other numeric (portfolio) variable follows them
METRICS = (
    "sharpe",
    "total_return",
    "annual_return",
    "annual_volatility",
    "sortino",
    "max_drawdown",
    "calmar",
    "n_orders",
    "turnover",
    "exposure",
)
NON_METRIC_VARS = ("equity", "cash", "positions")
BAND_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: bytes of equity the band reads at once (one time slab of every portfolio, or a portfolio block)
BLOCK_BYTES = 64 * 2**20
#: most points drawn per line (about two per pixel of a full-width plot); longer series are drawn
#: as the min/max of buckets of bars (`_aggregate.display_edges`)
DISPLAY_POINTS = 4000


@dataclass
class Param:
    """One grid parameter: raw values per portfolio, their levels (first-appearance order) and
    each portfolio's level code."""

    name: str
    values: np.ndarray
    levels: list[str]
    codes: np.ndarray
    numeric: bool

    @property
    def varies(self) -> bool:
        return len(self.levels) > 1


@dataclass
class Band:
    """Quantiles of equity over all portfolios at each bar."""

    quantiles: tuple[float, ...]
    values: np.ndarray  # (len(quantiles), time), or (len(quantiles), points) when downsampled
    exact: bool  # False when merged from portfolio-block sketches
    #: display buckets of bars (`_aggregate.display_edges`) when ``values`` is downsampled
    edges: np.ndarray | None = None


@dataclass
class RunData:
    """Everything the report shows, already small."""

    run_dir: Path
    manifest: dict[str, Any]
    time: pd.DatetimeIndex
    n_portfolios: int
    params: list[Param]
    metrics: dict[str, np.ndarray]
    symbols: list[str]
    has_positions: bool
    extra: dict[str, Any] = field(default_factory=dict)


def fmt_value(v: Any) -> str:
    """Label of a grid value: NaN/None read as 'none', floats without trailing zeros."""
    if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
        return "none"
    if isinstance(v, bool | np.bool_):
        return str(bool(v)).lower()
    if isinstance(v, float | np.floating):
        return f"{float(v):g}"
    return str(v)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """``run.json`` as a dict ({} when absent: the report still draws results.zarr)."""
    path = run_dir / "run.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not valid JSON ({exc})", "re-run the pipeline") from exc


def open_results(run_dir: Path | Loc) -> xr.Dataset:
    """Open ``results.zarr`` lazily (no dask: plain indexing reads only the chunks asked for);
    `run_dir` may be a store's prefix (a run being written there)."""
    path = run_dir / "results.zarr"
    if not path.exists():
        raise InputError(
            str(run_dir), "no results.zarr in this folder", "point at a run folder written by run"
        )
    ds = open_zarr(zarr_target(path, read_only=True), chunks=None)  # docs/TIME.md
    if "equity" not in ds:
        raise InputError(str(path), "has no 'equity' variable", "re-run the pipeline")
    return ds


def load_run(run_dir: Path, ds: xr.Dataset) -> RunData:
    """Manifest, time axis, grid parameters and metrics (all O(portfolios) or O(time))."""
    manifest = read_manifest(run_dir)
    eq = ds["equity"]
    n = int(eq.sizes["portfolio"])
    params = grid_params(ds, manifest)
    metrics: dict[str, np.ndarray] = {}
    names = [m for m in METRICS if m in ds] + sorted(
        str(k)
        for k, v in ds.data_vars.items()
        if k not in METRICS
        and k not in NON_METRIC_VARS
        and v.dims == ("portfolio",)
        and np.issubdtype(v.dtype, np.number)
    )
    for name in names:
        metrics[name] = np.asarray(ds[name].values, dtype=np.float64)
    symbols = [str(s) for s in ds["symbol"].values] if "symbol" in ds.coords else []
    if not symbols:
        symbols = [str(s) for s in manifest.get("data", {}).get("symbols", [])]
    return RunData(
        run_dir=run_dir,
        manifest=manifest,
        time=pd.DatetimeIndex(as_time(ds["time"].values)),  # [ns], or [s] past 2262
        n_portfolios=n,
        params=params,
        metrics=metrics,
        symbols=symbols,
        has_positions="positions" in ds,
    )


def distinct_score(run: RunData, ds: xr.Dataset, score: np.ndarray) -> np.ndarray:
    """``score`` with NaN for every portfolio that duplicates a lower id's effective parameters.

    Duplicates (`admf_dask.portfolio.grid.effective_groups`, recomputed from run.json's config)
    have identical results; best/median/worst and top lists show one of each.
    """
    from admf_dask.portfolio.grid import run_groups

    strategies = ds.attrs.get("strategies") or list(
        (run.manifest.get("config") or {}).get("strategies") or {}
    )
    groups = run_groups(run.manifest, strategies, len(run.symbols), run.n_portfolios)
    if groups is None:
        return score
    return np.where(groups == np.arange(run.n_portfolios), score, np.nan)


def make_param(name: str, values: np.ndarray) -> Param:
    """Factorize one parameter's values (NaN/None is its own level, 'none')."""
    values = np.asarray(values)
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    numeric = np.issubdtype(values.dtype, np.number) and not np.issubdtype(values.dtype, np.bool_)
    return Param(
        name=name,
        values=values,
        levels=[fmt_value(u) for u in uniques],
        codes=codes.astype(np.int32),
        numeric=bool(numeric),
    )


def grid_params(ds: xr.Dataset, manifest: dict[str, Any]) -> list[Param]:
    """The ``portfolio`` coordinates, in the grid's written order when run.json gives it."""
    names = [
        str(k)
        for k, c in ds.coords.items()
        if c.dims == ("portfolio",) and k != "portfolio" and k not in ("time", "symbol")
    ]
    grid = (((manifest.get("config") or {}).get("portfolios") or {}).get("grid")) or {}
    order = list(grid)
    names = sorted(names, key=lambda k: order.index(k) if k in order else len(order))  # stable
    return [make_param(k, ds.coords[k].values) for k in names]


def _chunks(da: xr.DataArray) -> tuple[int, int]:
    """Stored (time, portfolio) chunk sizes of a lazily opened Zarr variable."""
    pref = da.encoding.get("preferred_chunks") or {}
    chunks = da.encoding.get("chunks")
    t = pref.get("time") or (chunks[da.dims.index("time")] if chunks else da.sizes["time"])
    p = pref.get("portfolio") or (
        chunks[da.dims.index("portfolio")] if chunks else da.sizes["portfolio"]
    )
    return int(t), int(p)


def equity_band(
    equity: xr.DataArray,
    quantiles: tuple[float, ...] = BAND_QUANTILES,
    block_bytes: int = BLOCK_BYTES,
    points: int | None = DISPLAY_POINTS,
) -> Band:
    """Quantiles of equity over portfolios at each bar, reading ``equity`` block by block.

    A quantile at bar t needs every portfolio at t, so the exact path reads time slabs of all
    portfolios, aligned to the stored time chunks so each chunk is decompressed once. When one
    time chunk of every portfolio exceeds ``block_bytes`` (very many portfolios), it reads
    portfolio blocks instead and merges per-block quantile sketches (rank error < 1 %).

    More bars than ``points`` (None: no limit): each slab's quantiles are folded into min/max
    display buckets as they come (`Band.edges`), so only O(points) values are kept.
    """
    eq = equity.transpose("time", "portfolio")
    n_time, n_port = eq.shape
    tc, pc = _chunks(eq)
    row_bytes = n_port * 8
    q = tuple(quantiles)
    edges = None if points is None else agg.display_edges(n_time, points)
    if tc * row_bytes <= block_bytes or n_port <= pc:
        step = max(1, block_bytes // (tc * row_bytes)) * tc
        slabs = (
            (a, agg.row_quantiles(np.asarray(eq[a : a + step].values), q))
            for a in range(0, n_time, step)
        )
        if edges is None:
            return Band(q, np.concatenate([v for _, v in slabs], axis=1), exact=True)
        acc = agg.minmax_init(edges, len(q))
        for a, v in slabs:
            agg.minmax_update(v.T, a, edges, acc)
        return Band(q, agg.minmax_points(edges, acc)[1].T.copy(), exact=True, edges=edges)
    width = max(1, block_bytes // (n_time * 8 * pc)) * pc
    sketches, counts = [], []
    for a in range(0, n_port, width):
        s, c = agg.quantile_sketch(np.asarray(eq[:, a : a + width].values))
        sketches.append(s)
        counts.append(c)
    values = agg.merge_sketches(sketches, counts, q)
    if edges is None:
        return Band(q, values, exact=False)
    return Band(q, agg.minmax_downsample(values.T, points)[1].T.copy(), exact=False, edges=edges)


def display_columns(
    data: dict[str, Any], points: int = DISPLAY_POINTS, *, edges: np.ndarray | None = None
) -> dict[str, Any]:
    """A ColumnDataSource's columns (``time`` and series of one length) drawn in ≤ ``points``.

    Within the budget ``data`` is returned as is (the same dict); beyond it each series is reduced
    to the min/max of the same buckets of bars (``edges``, default
    ``_aggregate.display_edges(len(time), points)``; dtype kept) and ``time`` to the bars those
    points are drawn at.
    """
    if edges is None:
        edges = agg.display_edges(len(data["time"]), points)
    if edges is None:
        return data
    out: dict[str, Any] = {"time": np.asarray(data["time"])[agg.display_rows(edges)]}
    for k, v in data.items():
        if k == "time":
            continue
        v = np.asarray(v)
        acc = agg.minmax_init(edges, 1)
        agg.minmax_update(v, 0, edges, acc)
        values = agg.minmax_points(edges, acc)[1][:, 0]
        out[k] = values.astype(v.dtype if v.dtype.kind == "f" else np.float64)
    return out


class DisplaySink:
    """Columns of `display_columns`, fed block by block (in time order) instead of whole.

    Within ``points`` each series is kept whole (the blocks concatenated); beyond it only its
    min/max display buckets are kept (O(points) per series): the same values as
    ``display_columns`` of the whole series, without holding them.
    """

    def __init__(self, n_bars: int, points: int = DISPLAY_POINTS) -> None:
        self.edges = agg.display_edges(n_bars, points)
        self._parts: dict[str, list[np.ndarray]] = {}
        self._acc: dict[str, tuple[np.ndarray, ...]] = {}
        self._dtype: dict[str, np.dtype] = {}

    def add(self, name: str, row0: int, block: np.ndarray) -> None:
        """Rows ``row0 : row0 + len(block)`` of the series ``name`` (columns keep the order of
        their first block; the dtype is the first block's)."""
        block = np.asarray(block)
        self._dtype.setdefault(name, block.dtype)
        if self.edges is None:
            self._parts.setdefault(name, []).append(block)
            return
        acc = self._acc.get(name)
        if acc is None:
            acc = self._acc[name] = agg.minmax_init(self.edges, 1)
        agg.minmax_update(block, row0, self.edges, acc)

    def columns(self, time: np.ndarray) -> dict[str, Any]:
        """``time`` and every series, as `display_columns` would give them."""
        if self.edges is None:
            out: dict[str, Any] = {"time": time}
            for k, parts in self._parts.items():
                out[k] = np.concatenate(parts) if len(parts) > 1 else parts[0]
            return out
        out = {"time": np.asarray(time)[agg.display_rows(self.edges)]}
        for k, acc in self._acc.items():
            dt = self._dtype[k]
            out[k] = agg.minmax_points(self.edges, acc)[1][:, 0].astype(
                dt if dt.kind == "f" else np.float64
            )
        return out


def bars_per_point(n_bars: int, points: int = DISPLAY_POINTS) -> int | None:
    """Bars behind each drawn point of an ``n_bars`` series (the largest bucket), or None."""
    edges = agg.display_edges(n_bars, points)
    return None if edges is None else int(np.diff(edges).max())


def equity_columns(equity: xr.DataArray, ids: list[int]) -> np.ndarray:
    """Equity of a few portfolios, shape (time, len(ids)) (reads only their chunks)."""
    if not ids:
        return np.empty((equity.sizes["time"], 0))
    eq = equity.transpose("time", "portfolio")
    uniq = sorted(set(ids))
    cols = np.asarray(eq.isel(portfolio=uniq).values, dtype=np.float64)
    pos = {p: i for i, p in enumerate(uniq)}
    return cols[:, [pos[i] for i in ids]]


def read_orders(run_dir: Path | Loc, ids: list[int]) -> tuple[pd.DataFrame | None, int]:
    """Orders of the portfolios ``ids`` and the total order count of the run.

    Returns ``(None, 0)`` when the run wrote no orders. Only row groups that may hold these
    portfolios are read (Parquet statistics), so a run of 10^8 orders stays cheap.
    """
    path = run_dir / "orders.parquet"
    if not path.exists():
        return None, 0
    import pyarrow.dataset as pads

    if isinstance(path, Loc) and not path.is_local:  # a run being written to a store
        root, fs = arrow_target(path)
        files = sorted(f for f in fs.find(root) if f.endswith(".parquet"))
        if not files:
            return None, 0
        dataset = pads.dataset(files, format="parquet", filesystem=fs)
    else:
        files = [p for p in path.rglob("*.parquet") if p.is_file()] if path.is_dir() else [path]
        if not files:
            return None, 0
        dataset = pads.dataset([str(f) for f in sorted(files)], format="parquet")
    total = int(dataset.count_rows())
    cols = [
        c
        for c in ("portfolio", "time", "symbol", "qty", "price", "commission", "reason")
        if c in dataset.schema.names
    ]
    if total == 0 or "portfolio" not in cols or not ids:
        return None, total
    table = dataset.to_table(columns=cols, filter=pads.field("portfolio").isin(sorted(set(ids))))
    df = table.to_pandas()
    if "symbol" in df:
        df["symbol"] = df["symbol"].astype(str)
    if "reason" not in df:
        df["reason"] = "signal"
    df["reason"] = df["reason"].astype(str)
    df["time"] = pd.to_datetime(df["time"])
    return df.sort_values(["portfolio", "time"], kind="stable").reset_index(drop=True), total


#: bytes of close prices the report reads at once (one block of bars × the traded symbols)
CLOSE_BLOCK_BYTES = 32 * 2**20


@dataclass
class Closes:
    """Close prices of some symbols on the run's bars, read block by block (never whole).

    ``close`` is the market data's lazy (dask or Zarr-backed) ``close`` of `symbols`; ``rows``
    maps each bar of the run to its row there (-1: the data has no such bar, read as NaN), i.e.
    the values of ``close.to_pandas().reindex(run time)``, without holding bars × symbols.
    """

    close: xr.DataArray  # (time, symbol)
    symbols: list[str]
    rows: np.ndarray  # int64, one per bar of the run
    step: int  # bars per block: whole stored time chunks when they fit CLOSE_BLOCK_BYTES

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.symbols

    @classmethod
    def of(
        cls, close: xr.DataArray, time: np.ndarray, block_bytes: int = CLOSE_BLOCK_BYTES
    ) -> Closes:
        """`Closes` of ``close`` (time × symbol) on the bars ``time`` of a run."""
        close = close.transpose("time", "symbol")
        rows = pd.DatetimeIndex(close["time"].values).get_indexer(pd.DatetimeIndex(time))
        row_bytes = 8 * max(1, close.sizes["symbol"])
        chunk = 0
        if close.chunks:  # dask: read whole chunks, each computed once
            chunk = int(max(close.chunks[0]))
        elif close.encoding.get("chunks"):
            chunk = int(close.encoding["chunks"][0])
        budget = max(1, block_bytes // row_bytes)
        if 0 < chunk <= budget:
            step = chunk * (budget // chunk)
        else:
            step = max(64, budget)
        return cls(close, [str(s) for s in close["symbol"].values], rows.astype(np.int64), step)

    @property
    def n_bars(self) -> int:
        return len(self.rows)

    def read(self, a: int, b: int) -> np.ndarray:
        """Closes of bars ``a:b`` of the run, shape (b - a, len(symbols)), float64."""
        r = self.rows[a:b]
        out = np.full((len(r), len(self.symbols)), np.nan)
        ok = r >= 0
        if not ok.any():
            return out
        lo, hi = int(r[ok].min()), int(r[ok].max()) + 1
        if hi - lo <= 2 * len(r) + 1024:  # the usual case: the run's bars are the data's
            vals = np.asarray(self.close.isel(time=slice(lo, hi)).values, np.float64)
            out[ok] = vals[r[ok] - lo]
        else:
            want = np.unique(r[ok])
            vals = np.asarray(self.close.isel(time=want).values, np.float64)
            out[ok] = vals[np.searchsorted(want, r[ok])]
        return out

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(a, b, read(a, b))`` over the run's bars, in time order."""
        for a in range(0, self.n_bars, self.step):
            b = min(self.n_bars, a + self.step)
            yield a, b, self.read(a, b)

    def finite_any(self) -> np.ndarray:
        """Per symbol: has it a finite close on some bar of the run?"""
        out = np.zeros(len(self.symbols), bool)
        r = self.rows
        n = len(r)
        if n and r[0] >= 0 and np.array_equal(r, np.arange(r[0], r[0] + n)) and self.close.chunks:
            # the run's bars are a slice of the data's: one reduction on the workers
            part = self.close.isel(time=slice(int(r[0]), int(r[0]) + n)).data
            import dask.array as da

            return np.asarray(da.isfinite(part).any(axis=0).compute(), bool)
        for _, _, block in self.blocks():
            out |= np.isfinite(block).any(axis=0)
        return out

    def column(self, symbol: str) -> np.ndarray:
        """The closes of one symbol on every bar of the run (O(bars))."""
        one = Closes.of(self.close.sel(symbol=[symbol]), np.empty(0, "datetime64[ns]"))
        one.rows = self.rows
        return np.concatenate([blk[:, 0] for _, _, blk in one.blocks()] or [np.empty(0)])


def load_prices(
    manifest: dict[str, Any],
    symbols: list[str],
    market_data: xr.Dataset | None,
    time: np.ndarray | None = None,
) -> tuple[Closes | None, str]:
    """Close prices of ``symbols`` on the run's bars ``time`` (default: the data's own bars),
    read lazily (`Closes`), and where they came from.

    The run folder has no prices: use ``market_data`` when the caller passes it (the pipeline
    has it in hand), else reload the data source from the resolved config (deterministic for
    synthetic data). Returns ``(None, reason)`` when neither works; the report then marks
    positions at fill prices.
    """
    if not symbols:
        return None, "no symbols"
    data = market_data
    if data is None:
        spec = (manifest.get("config") or {}).get("data")
        if not spec:
            return None, "run.json has no data config"
        try:
            from admf_dask.data import load_market_data

            # lazy, unfingerprinted: only the traded symbols' closes are read
            data = load_market_data(
                spec, base_dir=manifest.get("pipeline_dir"), compute_fingerprint=False
            )
        except Exception as exc:  # noqa: BLE001 - any failure just means "no price line"
            return None, f"market data not reloadable ({type(exc).__name__}: {exc})"[:200]
    try:
        available = set(map(str, data["symbol"].values))
        have = [s for s in symbols if s in available]
        if not have:
            return None, "the market data has none of the traded symbols"
        close = data["close"].sel(symbol=have)
        closes = Closes.of(close, close["time"].values if time is None else time)
    except Exception as exc:  # noqa: BLE001
        return None, f"market data has no close prices ({type(exc).__name__})"
    return closes, "close prices of the market data"


def benchmark_equity(
    manifest: dict[str, Any],
    time: np.ndarray,
    market_data: xr.Dataset | None,
    prices: Closes | None = None,
) -> tuple[str, np.ndarray] | None:
    """The run's benchmark (``portfolios.benchmark``) as a buy-and-hold equity line on ``time``.

    ``capital * Π(1 + b[t])`` with ``b`` the close-to-close return of the symbol (docs/TRADES.md,
    benchmark), a missing close contributing 0: i.e. ``capital * close[t] / first finite close``,
    the last close carried through gaps (``capital`` before the first close). None: the run has
    no benchmark or its closes cannot be loaded (`load_prices`; ``prices`` already loaded on
    ``time`` are reused when they hold the symbol). O(bars) memory: the closes are read in blocks.
    """
    portfolios = (manifest.get("config") or {}).get("portfolios") or {}
    symbol = portfolios.get("benchmark")
    if not symbol:
        return None
    if prices is None or str(symbol) not in prices or prices.n_bars != len(time):
        prices, _ = load_prices(manifest, [str(symbol)], market_data, time)
    if prices is None or str(symbol) not in prices:
        return None
    close = prices.column(str(symbol))
    ok = np.isfinite(close) & (close > 0)
    if not ok.any():
        return None
    carried = pd.Series(np.where(ok, close, np.nan)).ffill().to_numpy()
    first = close[np.argmax(ok)]
    capital = float(portfolios.get("capital", 1_000_000.0))
    curve = np.where(np.isfinite(carried), capital * carried / first, capital)
    return str(symbol), curve
