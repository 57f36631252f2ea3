"""Block-wise maps of numba kernels over 2-D ``(time, symbol)`` dask arrays, one task per block.

Two graph shapes, both leaving values independent of the time chunking:

* **halo** (window kernels): the task for time block i gets block i plus the last ``halo`` rows
  before it (slices of earlier blocks), runs the kernel with the global time offset of its first
  row, and drops the halo rows. This is ``map_overlap`` with ``depth={0: (halo, 0)}``,
  ``boundary="none"``, built by hand because dask's ``map_overlap`` rechunks when the depth
  exceeds a chunk, and the contract is "same chunks as the data".
* **chain** (recursive kernels, stateful strategies): per symbol block, task i takes block i and
  the state returned by task i-1.
"""

from __future__ import annotations

import operator
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

#: kernel executions per label (indicator kind), in this process: shows work is not repeated
KERNEL_CALLS: Counter[str] = Counter()
_COUNT_LOCK = threading.Lock()


def _count(label: str) -> None:
    with _COUNT_LOCK:
        KERNEL_CALLS[label] += 1


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _concat(pieces: Sequence[np.ndarray]) -> np.ndarray:
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0)


def _run_window(
    func: Callable[..., Any], label: str, offset: int, n_halo: int, n_out: int, *piece_lists
) -> Any:
    _count(label)
    res = func(*[_f64(_concat(p)) for p in piece_lists], offset=offset)
    outs = (res,) if n_out == 1 else tuple(res)
    # a view would keep the halo rows alive in persisted memory: copy when they weigh much
    trimmed = tuple(
        r[n_halo:].copy() if 4 * n_halo > r.shape[0] - n_halo else r[n_halo:] for r in outs
    )
    return trimmed[0] if n_out == 1 else trimmed


def _run_chain(func: Callable[..., Any], label: str, n_out: int, *args) -> tuple[tuple, Any]:
    *inputs, prev = args
    _count(label)
    state = None if prev is None else prev[1].copy()  # never mutate another task's result
    outs, state = func(*[_f64(a) for a in inputs], state=state)
    return ((outs,) if n_out == 1 else tuple(outs)), state


def _pick_chain(res: tuple[tuple, Any], k: int) -> np.ndarray:
    return res[0][k]


def _aligned(arrays: Sequence[da.Array]) -> list[da.Array]:
    ref = arrays[0]
    return [a if a.chunks == ref.chunks else a.rechunk(ref.chunks) for a in arrays]


def _outputs(
    graph: HighLevelGraph,
    run: str,
    picker: Callable[..., Any],
    names: Sequence[str],
    chunks: tuple[tuple[int, ...], ...],
) -> list[da.Array]:
    layers = dict(graph.layers)
    deps = {k: set(v) for k, v in graph.dependencies.items()}
    nt, ns = len(chunks[0]), len(chunks[1])
    for k, out in enumerate(names):
        layers[out] = MaterializedLayer(
            {(out, i, j): (picker, (run, i, j), k) for i in range(nt) for j in range(ns)}
        )
        deps[out] = {run}
    hlg = HighLevelGraph(layers, deps)
    meta = np.empty((0, 0), dtype=np.float64)
    return [da.Array(hlg, out, chunks, dtype=np.float64, meta=meta) for out in names]


def halo_map(
    func: Callable[..., Any],
    arrays: Sequence[da.Array],
    *,
    halo: int,
    names: Sequence[str],
    label: str,
) -> list[da.Array]:
    """Map a window kernel over time blocks with ``halo`` rows of history (no rechunking).

    Parameters
    ----------
    func : callable
        ``func(*blocks, offset=int) -> array or tuple of arrays`` on 2-D float64 blocks.
    arrays : sequence of dask arrays
        2-D ``(time, symbol)`` inputs (rechunked to the first one's chunks if they differ).
    halo : int
        Rows of history before each block that the kernel needs.
    names : sequence of str
        One unique dask name per output.
    label : str
        Counter label (`KERNEL_CALLS`).

    Returns
    -------
    list of dask arrays
        One per output, chunked like ``arrays[0]``.
    """
    arrays = _aligned(arrays)
    chunks = arrays[0].chunks
    n_out = len(names)
    run = names[0] if n_out == 1 else f"{names[0]}-run"
    starts = np.concatenate([[0], np.cumsum(chunks[0])]).astype(int)
    dsk: dict[Hashable, Any] = {}
    for j in range(len(chunks[1])):
        for i in range(len(chunks[0])):
            s0 = int(starts[i])
            lo = max(0, s0 - halo)
            first = int(np.searchsorted(starts, lo, side="right") - 1)  # block holding row lo
            lists = []
            for ai, a in enumerate(arrays):
                pieces: list[Any] = []
                for k in range(first, i):
                    cut = lo - int(starts[k]) if k == first else 0
                    if cut == 0:
                        pieces.append((a.name, k, j))
                    else:
                        key = (f"{run}-halo", ai, i, k, j)
                        dsk[key] = (operator.getitem, (a.name, k, j), (slice(cut, None),))
                        pieces.append(key)
                pieces.append((a.name, i, j))
                lists.append(pieces)
            dsk[(run, i, j)] = (partial(_run_window, func, label, lo, s0 - lo, n_out), *lists)
    graph = HighLevelGraph.from_collections(run, dsk, dependencies=list(arrays))
    if n_out == 1:
        return [da.Array(graph, run, chunks, dtype=np.float64, meta=np.empty((0, 0)))]
    return _outputs(graph, run, operator.getitem, names, chunks)


def chain_map(
    func: Callable[..., Any],
    arrays: Sequence[da.Array],
    *,
    names: Sequence[str],
    label: str,
) -> list[da.Array]:
    """Map a stateful kernel over time blocks, carrying its state block to block.

    Parameters
    ----------
    func : callable
        ``func(*blocks, state=None | state) -> (output or tuple of outputs, state)``; ``state``
        None means no history. The state must not alias the outputs.
    arrays : sequence of dask arrays
        2-D ``(time, symbol)`` inputs.
    names : sequence of str
        One unique dask name per output.
    label : str
        Counter label (`KERNEL_CALLS`).

    Returns
    -------
    list of dask arrays
        One per output, chunked like ``arrays[0]``; one chain of tasks per symbol block.
    """
    arrays = _aligned(arrays)
    chunks = arrays[0].chunks
    run = f"{names[0]}-chain"
    fn = partial(_run_chain, func, label, len(names))
    dsk: dict[Hashable, Any] = {}
    for j in range(len(chunks[1])):
        prev = None
        for i in range(len(chunks[0])):
            key = (run, i, j)
            dsk[key] = (fn, *[(a.name, i, j) for a in arrays], prev)
            prev = key
    graph = HighLevelGraph.from_collections(run, dsk, dependencies=list(arrays))
    return _outputs(graph, run, _pick_chain, names, chunks)
