"""Market data built inside tasks: the client holds coordinates, the graph holds no arrays.

docs/ARCHITECTURE.md (data stage), DESIGN §4 "Data on the workers":

* `LazySource`: a source's coordinates (time, symbols) and a builder of its dask arrays over
  given row bounds. `LazySource.from_reader` makes one from a per-chunk reader function
  ``read(row_start, row_stop) -> {field: (rows, symbols) array}`` (one task per chunk);
  `synthetic_source` builds the seeded market as a chain of block tasks (the generator carries
  a small state from block to block, `admf_dask.data._synthetic.block`) cut into the chunks.
* `universe_array`: the universe mask per chunk from per-symbol row intervals.
* `row_digests`: per-bar (row) digests of the values, one task per chunk, whatever the
  chunking: the data fingerprint combines them on the client (`admf_dask.data.load`). The same
  tasks check the bars of files read lazily (`admf_dask.data.validate.check_bars`, through a
  `ZarrLocator` naming the file, time and symbol); the client raises the first bad bar as a
  `DataError`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from admf_dask.data import _synthetic
from admf_dask.data.dates import as_time, open_zarr
from admf_dask.data.validate import FIELDS, check_bars
from admf_dask.errors import DataError

__all__ = [
    "LazySource",
    "ZarrLocator",
    "row_digests",
    "synthetic_source",
    "universe_array",
]

#: bytes of each bar's digest (blake2b): 2**-128 collision odds per bar
DIGEST_SIZE = 16

Builder = Callable[[Sequence[int]], dict[str, da.Array]]


@dataclass(frozen=True)
class LazySource:
    """A market source that reads (or generates) its values inside tasks.

    Attributes
    ----------
    time : numpy.ndarray
        datetime64[ns] bars ([s] past 2262), sorted and unique (all the source has).
    symbols : list of str
        Its symbols, in column order.
    token : str
        Deterministic name of the source's content (keys of its tasks derive from it).
    build : callable
        ``build(bounds) -> {field: dask array}``: the five float64 ``(time, symbol)`` arrays
        over rows ``bounds[0]:bounds[-1]`` of `time`, time-chunked at ``bounds``, symbols in
        one chunk.
    """

    time: np.ndarray
    symbols: list[str]
    token: str
    build: Builder

    @classmethod
    def from_reader(
        cls,
        time: np.ndarray,
        symbols: list[str],
        token: str,
        read: Callable[[int, int], dict[str, np.ndarray]],
    ) -> LazySource:
        """A source whose task for rows ``[a, b)`` calls ``read(a, b)`` (one task per chunk).

        Parameters
        ----------
        time, symbols, token
            See the attributes.
        read : callable
            ``read(a, b) -> {field: (b - a, len(symbols)) array}``, picklable (it travels to
            the workers); it may raise `DataError`.
        """
        n_sym = len(symbols)

        def build(bounds: Sequence[int]) -> dict[str, da.Array]:
            bounds = [int(b) for b in bounds]
            run = f"market-read-{tokenize(token, bounds)}"
            layer = {(run, i): (read, a, b) for i, (a, b) in enumerate(itertools.pairwise(bounds))}
            return _fields(run, layer, bounds, n_sym, token)

        return cls(np.asarray(time), list(symbols), token, build)


def _pick_field(parts: dict[str, np.ndarray], field: str) -> np.ndarray:
    return np.ascontiguousarray(parts[field], dtype=np.float64)


def _fields(
    run: str, layer: dict, bounds: Sequence[int], n_sym: int, token: str
) -> dict[str, da.Array]:
    """Field arrays picking ``field`` out of the dict each task ``(run, i)`` of `layer` returns."""
    chunks = (tuple(np.diff(bounds).tolist()), (n_sym,))
    n = len(bounds) - 1
    meta = np.empty((0, 0), dtype=np.float64)
    out = {}
    for f in FIELDS:
        name = f"market-{f}-{tokenize(token, f, list(bounds))}"
        layers = {
            run: MaterializedLayer(layer),
            name: MaterializedLayer({(name, i, 0): (_pick_field, (run, i), f) for i in range(n)}),
        }
        hlg = HighLevelGraph(layers, {run: set(), name: {run}})
        out[f] = da.Array(hlg, name, chunks, dtype=np.float64, meta=meta)
    return out


# ----------------------------------------------------------------------------- synthetic


def _plan_task(
    n_bars: int,
    n_symbols: int,
    seed: int,
    missing: float,
    late_listed: float,
    delisted: float,
    vol_scale: float,
) -> tuple[_synthetic.Plan, _synthetic.State]:
    return _synthetic.plan(
        n_bars,
        n_symbols,
        seed,
        missing=missing,
        late_listed=late_listed,
        delisted=delisted,
        vol_scale=vol_scale,
    )


def _block_task(
    k: int, planned: tuple[_synthetic.Plan, _synthetic.State], prev: _synthetic.State | None
) -> tuple[dict[str, np.ndarray], _synthetic.State]:
    plan, first = planned
    return _synthetic.block(k, plan, first if prev is None else prev)


def _state_of(res: tuple[dict[str, np.ndarray], _synthetic.State]) -> _synthetic.State:
    return res[1]


def _cut(a: int, b: int, k0: int, blocks: list[tuple[dict[str, np.ndarray], Any]]) -> dict:
    """Rows ``[a, b)`` of the market from the blocks ``k0, k0 + 1, ...`` that cover them."""
    size = _synthetic._BLOCK
    out = {}
    for f in FIELDS:
        pieces = []
        for j, (arrays, _) in enumerate(blocks):
            t0 = (k0 + j) * size
            lo, hi = max(a, t0) - t0, min(b, t0 + arrays[f].shape[0]) - t0
            pieces.append(arrays[f][lo:hi])
        # a copy: a view would keep the whole block alive in the persisted chunk
        arr = np.concatenate(pieces, axis=0) if len(pieces) > 1 else pieces[0].copy()
        arr.flags.writeable = False  # tasks must not mutate another task's result
        out[f] = arr
    return out


def synthetic_source(
    n_bars: int,
    symbols: list[str],
    seed: int,
    time: np.ndarray,
    *,
    missing: float = 0.0,
    late_listed: float = 0.0,
    delisted: float = 0.0,
    vol_scale: float = 1.0,
) -> LazySource:
    """The seeded market (`admf_dask.data._synthetic`) generated per block on the workers.

    Task graph: one plan task (per-symbol draws from the seed), a chain of block tasks (block
    ``k`` takes the state left by block ``k - 1``), and one task per chunk cutting its rows
    out of the blocks. The graph holds the scalars only; values equal `synthetic_ohlcv`'s bit
    for bit, whatever the chunking.

    Parameters
    ----------
    n_bars : int
        Bars generated (the whole span: later selections do not change the values).
    symbols : list of str
        Names of the columns.
    seed, missing, late_listed, delisted, vol_scale
        See `admf_dask.data._synthetic.plan`.
    time : numpy.ndarray
        The time axis (``n_bars`` datetime64[ns], or [s] past 2262).

    Returns
    -------
    LazySource
    """
    n_sym = len(symbols)
    args = (
        int(n_bars),
        n_sym,
        int(seed),
        float(missing),
        float(late_listed),
        float(delisted),
        float(vol_scale),
    )
    _synthetic._check_args(*args[:6])
    token = tokenize("admf-dask synthetic v1", *args)
    size = _synthetic._BLOCK

    def build(bounds: Sequence[int]) -> dict[str, da.Array]:
        bounds = [int(b) for b in bounds]
        gen = f"synthetic-gen-{token}"
        plan_key = (f"{gen}-plan",)
        layer: dict = {plan_key: (_plan_task, *args)}
        last = -(-bounds[-1] // size)  # blocks past the selection are not generated
        for k in range(last):
            prev = None if k == 0 else (f"{gen}-state", k - 1)
            layer[(f"{gen}-block", k)] = (_block_task, k, plan_key, prev)
            layer[(f"{gen}-state", k)] = (_state_of, (f"{gen}-block", k))
        run = f"synthetic-cut-{tokenize(token, bounds)}"
        cuts = {}
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            k0, k1 = a // size, (b - 1) // size
            cuts[(run, i)] = (_cut, a, b, k0, [(f"{gen}-block", k) for k in range(k0, k1 + 1)])
        chunks = (tuple(np.diff(bounds).tolist()), (n_sym,))
        meta = np.empty((0, 0), dtype=np.float64)
        out = {}
        for f in FIELDS:
            name = f"market-{f}-{tokenize(token, f, bounds)}"
            picks = {(name, i, 0): (_pick_field, (run, i), f) for i in range(len(bounds) - 1)}
            hlg = HighLevelGraph(
                {
                    gen: MaterializedLayer(layer),
                    run: MaterializedLayer(cuts),
                    name: MaterializedLayer(picks),
                },
                {gen: set(), run: {gen}, name: {run}},
            )
            out[f] = da.Array(hlg, name, chunks, dtype=np.float64, meta=meta)
        return out

    return LazySource(as_time(time), list(symbols), token, build)


# ----------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class ZarrLocator:
    """Names a bar of a Zarr store's selection in messages (reads the time axis on error only).

    Attributes
    ----------
    path : str
        The store (as xarray opens it).
    label : str
        The store as the user wrote it.
    rows : slice or numpy.ndarray
        The selection's rows of the store's time axis (an index array when the store's times
        are unsorted).
    symbols : list of str
        The selection's symbols.
    storage_options : dict, optional
        Of a URL (fsspec).
    """

    path: str
    label: str
    rows: slice | np.ndarray
    symbols: list[str]
    storage_options: dict | None = None

    def __call__(self, row0: int) -> Callable[[int], str]:
        """``locate(i)`` for a chunk whose first row is selection row ``row0``."""
        n_sym = len(self.symbols)

        def locate(i: int) -> str:

            row = row0 + i // n_sym
            try:
                store = open_zarr(self.path, storage_options=self.storage_options)
                t = as_time(np.asarray(store["time"].values)[self.rows])[row]
                when = f"time={str(t)[:19]}"
            except Exception:  # noqa: BLE001 - the store went away meanwhile: name the row
                when = f"row {row + 1}"
            return f"{self.label} {when} symbol={self.symbols[i % n_sym]}"

        return locate


# ----------------------------------------------------------------------------- universe


def _universe_rows(rows: tuple[np.ndarray, np.ndarray], a: int, b: int) -> np.ndarray:
    lo, hi = rows
    r = np.arange(a, b)[:, None]
    return (r >= lo) & (r < hi)


def universe_array(
    lo: np.ndarray, hi: np.ndarray, time_chunks: tuple[int, ...], token: str
) -> da.Array:
    """The bool ``(time, symbol)`` universe mask, one task per chunk.

    Parameters
    ----------
    lo, hi : numpy.ndarray
        Per symbol, the rows ``[lo, hi)`` it is in the universe (int64, one per symbol).
    time_chunks : tuple of int
        The data's time chunks.
    token : str
        Deterministic name of the inputs.

    Returns
    -------
    dask.array.Array
    """
    bounds = np.concatenate([[0], np.cumsum(time_chunks)]).astype(int).tolist()
    name = f"market-universe-{token}"
    rows_key = (f"{name}-rows",)
    layer: dict = {rows_key: (tuple, [np.asarray(lo), np.asarray(hi)])}
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        layer[(name, i, 0)] = (_universe_rows, rows_key, a, b)
    chunks = (tuple(time_chunks), (len(lo),))
    return da.Array(layer, name, chunks, dtype=bool, meta=np.empty((0, 0), dtype=bool))


# ----------------------------------------------------------------------------- digests


def _digest_rows(*blocks: np.ndarray) -> np.ndarray:
    """``(rows, DIGEST_SIZE)`` uint8: blake2b of each row's bytes over all the blocks."""
    parts = [np.ascontiguousarray(b) for b in blocks]
    n = parts[0].shape[0]
    out = np.empty((n, DIGEST_SIZE), dtype=np.uint8)
    blake = hashlib.blake2b
    for i in range(n):
        h = blake(parts[0][i], digest_size=DIGEST_SIZE)
        for p in parts[1:]:
            h.update(p[i])
        out[i] = np.frombuffer(h.digest(), dtype=np.uint8)
    return out


Locator = Callable[[int], Callable[[int], str]]


def _digest_task(
    check: Locator | None, row0: int, *blocks: np.ndarray
) -> tuple[np.ndarray, tuple[int, DataError] | None]:
    """A chunk's row digests and, when `check` is given, its first bad bar (never raised here).

    A bad bar is returned, not raised: a task failing on a worker makes the worker log it on
    the run's stderr, while the client raises the one line (the first bad bar in time order).
    """
    error = None
    if check is not None:
        seen: list[int] = []
        locate = check(row0)

        def record(i: int) -> str:
            seen.append(i)
            return locate(i)

        values = {
            f: np.ascontiguousarray(b, dtype=np.float64)
            for f, b in zip(FIELDS, blocks, strict=False)
        }
        try:
            check_bars(values, record, allow_missing=True)
        except DataError as e:
            n_sym = blocks[0].shape[1]
            error = (row0 * n_sym + (seen[0] if seen else 0), e)
    return _digest_rows(*blocks), error


def row_digests(
    arrays: Sequence[Any], *, check: Locator | None = None, client: Any = None
) -> np.ndarray:
    """Per-bar digests of ``(time, symbol)`` arrays, computed in one task per time chunk.

    The digest of a row depends on that row's values only, so the result does not depend on
    the time chunking. Only the digests (and a bad bar's error) reach the client.

    Parameters
    ----------
    arrays : sequence of numpy or dask arrays
        Same shape ``(time, symbol)``; with `check`, the five fields first, in `FIELDS` order.
    check : callable, optional
        ``check(row0)`` gives the ``locate(i)`` of a chunk starting at row ``row0``
        (`ZarrLocator`): the five fields are then checked by `check_bars` in the same tasks.
    client : distributed.Client, optional
        Computes the tasks; default: the current dask scheduler.

    Returns
    -------
    numpy.ndarray
        ``(time, DIGEST_SIZE)`` uint8.

    Raises
    ------
    DataError
        With `check`: the first bad bar in time order.
    """
    if not any(isinstance(a, da.Array) for a in arrays):
        results = [_digest_task(check, 0, *arrays)]
    else:
        import dask
        from dask.delayed import Delayed

        first = da.asarray(arrays[0]).rechunk({1: -1})
        inputs = [first] + [da.asarray(a).rechunk(first.chunks) for a in arrays[1:]]
        token = tokenize([x.name for x in inputs], check)
        run = f"market-digest-{token}"
        layer: dict = {}
        check_key = None
        if check is not None:
            check_key = (f"{run}-check",)
            layer[check_key] = check
        row0 = 0
        for i, n in enumerate(first.chunks[0]):
            layer[(run, i)] = (_digest_task, check_key, row0, *[(x.name, i, 0) for x in inputs])
            row0 += n
        graph = HighLevelGraph.merge(
            *[x.__dask_graph__() for x in inputs],
            HighLevelGraph({run: MaterializedLayer(layer)}, {run: set()}),
        )
        graph = HighLevelGraph(
            dict(graph.layers), {**graph.dependencies, run: {x.name for x in inputs}}
        )
        parts = [Delayed((run, i), graph, layer=run) for i in range(len(first.chunks[0]))]
        if client is not None:
            results = client.gather(client.compute(parts))
        else:
            results = list(dask.compute(*parts))
    errors = [r[1] for r in results if r[1] is not None]
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return np.concatenate([r[0] for r in results], axis=0)
