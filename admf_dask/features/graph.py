"""The feature stage: indicator kernels wired into one dask graph over ``(time, symbol)`` blocks.

Two graph shapes, both one task per output block and both leaving values independent of the
time chunking:

* **halo** (window indicators): the task for time block i gets block i plus the last
  ``lookback`` rows before it (slices of earlier blocks), runs the kernel with the global time
  offset of its first row, and drops the halo rows. This is ``map_overlap`` with
  ``depth={0: (lookback, 0)}``, ``boundary="none"``, built by hand because dask's
  ``map_overlap`` rechunks when the depth exceeds a chunk, and the contract is "same chunks as
  the data".
* **chain** (recursive indicators, stateful strategies): per symbol block, task i takes block i
  and the state returned by task i-1.

Task keys are tokens of (kind, kernel parameters, input arrays), so a feature defined twice, or
used by many strategies, is one set of tasks; `feature_stage` persists it once per session.
"""

from __future__ import annotations

import hashlib
import json
import operator
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.features.registry import INDICATORS, validate_feature_specs

#: kernel executions per label (indicator kind), in this process: shows work is not repeated
KERNEL_CALLS: Counter[str] = Counter()
_COUNT_LOCK = threading.Lock()

CacheStatus = Literal["hit", "miss"]


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


# --------------------------------------------------------------------------------------------
# compute_features
# --------------------------------------------------------------------------------------------


def _dask_data(data: xr.Dataset) -> xr.Dataset:
    if any(not isinstance(v.data, da.Array) for v in data.data_vars.values()):
        data = data.chunk({d: -1 for d in data.dims})
    return data


def _fields_array(data: xr.Dataset, field: str, name: str) -> da.Array:
    if field not in data.data_vars:
        raise ConfigError(
            f"features.{name}",
            f"reads data variable '{field}', which the data does not have"
            + did_you_mean(field, list(map(str, data.data_vars))),
            "data variables are: " + ", ".join(map(str, data.data_vars)),
        )
    arr = data[field].transpose("time", "symbol").data
    return arr if arr.dtype == np.float64 else arr.astype(np.float64)


def _data_identity(data: xr.Dataset) -> str:
    fp = data.attrs.get("fingerprint")
    if not fp:
        fp = "tokenize:" + tokenize(data)
    return str(fp)


def feature_token(data: xr.Dataset, specs: Mapping[str, Mapping[str, Any]]) -> str:
    """Deterministic token of (data fingerprint, time chunks, normalized feature specs).

    Parameters
    ----------
    data : xr.Dataset
        Market data; ``attrs["fingerprint"]`` identifies its values (a dask token of the data is
        used when absent).
    specs : mapping
        Feature name -> spec (normalized here).

    Returns
    -------
    str
        Hex digest; equal inputs give equal tokens in any process.
    """
    norm = validate_feature_specs(specs)
    ref = data["close"] if "close" in data.data_vars else data[next(iter(data.data_vars))]
    chunks = ref.chunks
    payload = {
        "data": _data_identity(data),
        "chunks": [list(c) for c in chunks] if chunks else None,
        "specs": norm,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def compute_features(data: xr.Dataset, specs: Mapping[str, Mapping[str, Any]]) -> xr.Dataset:
    """Build the (lazy) feature graph.

    Parameters
    ----------
    data : xr.Dataset
        ``open high low close volume`` float64 ``(time, symbol)``, dask-chunked (numpy-backed
        data is taken as one chunk).
    specs : mapping
        Feature name -> ``{"kind": ..., **params}`` (validated with `validate_feature_spec`).

    Returns
    -------
    xr.Dataset
        One dask-backed float64 ``(time, symbol)`` variable per output, chunked like the data:
        ``name`` for single-output kinds, ``name_<output>`` for multi-output ones (``x_macd``,
        ``x_signal``, ``x_hist``; ``x_upper``, ``x_middle``, ``x_lower``; ``x_high``,
        ``x_low``). ``attrs``: ``feature_token``, ``feature_specs`` (JSON of the normalized
        specs) and the data's ``fingerprint``.

    Raises
    ------
    ConfigError
        For a bad spec or a data variable the data lacks.
    """
    norm = validate_feature_specs(specs)
    data = _dask_data(data)
    coords = {"time": data["time"], "symbol": data["symbol"]}
    out: dict[str, xr.DataArray] = {}
    for name, spec in norm.items():
        ind = INDICATORS[spec["kind"]]
        arrays = [_fields_array(data, f, name) for f in ind.fields(spec)]
        kparams = ind.kernel_params(spec)
        token = tokenize(ind.kind, sorted(kparams.items()), [a.name for a in arrays])
        labels = ind.outputs or ("",)
        dnames = [f"{ind.kind}{'_' + o if o else ''}-{token}" for o in labels]
        func = partial(ind.func, **kparams)
        if ind.recursive:
            arrs = chain_map(func, arrays, names=dnames, label=ind.kind)
        else:
            arrs = halo_map(
                func, arrays, halo=int(ind.lookback(spec)), names=dnames, label=ind.kind
            )
        for var, o, arr in zip(ind.variable_names(name), labels, arrs, strict=True):
            attrs = {
                "feature": name,
                "kind": ind.kind,
                "output": o,
                "params": json.dumps(kparams, sort_keys=True),
            }
            out[var] = xr.DataArray(arr, dims=("time", "symbol"), coords=coords, attrs=attrs)
    ds = xr.Dataset(out, coords=coords)
    ds.attrs["feature_token"] = feature_token(data, norm)
    ds.attrs["feature_specs"] = json.dumps(norm, sort_keys=True)
    if "fingerprint" in data.attrs:
        ds.attrs["fingerprint"] = data.attrs["fingerprint"]
    return ds


# --------------------------------------------------------------------------------------------
# session cache and the stage
# --------------------------------------------------------------------------------------------


class SessionCache:
    """Small LRU of persisted collections, keyed by a deterministic token (thread-safe).

    The first ``get_or_build`` for a key builds and stores; every later one returns the very
    same object, so nothing is recomputed within the session.
    """

    def __init__(self, maxsize: int = 8) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> tuple[Any, CacheStatus]:
        """Return ``(value, "hit")`` if cached, else build, store and return ``(value, "miss")``."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], "hit"
        value = build()
        with self._lock:
            if key in self._items:  # built concurrently: keep the first
                return self._items[key], "hit"
            self._items[key] = value
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return value, "miss"

    def clear(self) -> None:
        """Forget everything (persisted data is released once nothing references it)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


FEATURE_CACHE = SessionCache()


def client_key(client: Any) -> str:
    """Cache-key part identifying where a collection was persisted."""
    return "local" if client is None else f"client:{getattr(client, 'id', id(client))}"


def persist(obj: Any, client: Any = None) -> Any:
    """``client.persist(obj)`` with a client, else ``obj.persist()`` (default scheduler).

    A collection with nothing lazy in it (``features: {}`` gives an empty Dataset) is returned
    as it is: ``Client.persist`` rejects objects that are not dask collections.
    """
    from dask import is_dask_collection

    if not is_dask_collection(obj):
        return obj
    return client.persist(obj) if client is not None else obj.persist()


def feature_stage(
    data: xr.Dataset,
    specs: Mapping[str, Mapping[str, Any]],
    client: Any = None,
    disk: Any = None,
) -> tuple[xr.Dataset, CacheStatus]:
    """Compute and persist the features once per session (and once per disk cache).

    Parameters
    ----------
    data : xr.Dataset
        Market data (see `compute_features`).
    specs : mapping
        Feature name -> spec.
    client : distributed.Client, optional
        Persist on this cluster; None persists with the default scheduler.
    disk : admf_dask.cache.DiskCache, optional
        On a session miss, read the features from this cache (a hit, counted in
        ``disk.hits["features"]``), else compute them and store them there. Only data with a
        content ``fingerprint`` uses it.

    Returns
    -------
    (xr.Dataset, "hit" | "miss")
        The persisted features (the same object for every call with the same token and
        client) and whether it came from the session or the disk cache.
    """
    token = feature_token(data, specs)
    from_disk: list[bool] = []

    def build() -> xr.Dataset:
        if disk is None or not data.attrs.get("fingerprint"):
            return persist(compute_features(data, specs), client)
        from admf_dask.cache import entry_key
        from admf_dask.cache.arrays import load_dataset, save_dataset

        key = entry_key("features", token)
        coords = {"time": data["time"], "symbol": data["symbol"]}
        # lazy: on a signal-cache hit most runs never read a feature (docs/ARCHITECTURE.md)
        got = load_dataset(disk, "features", key, coords, client, lazy=True)
        if got is not None:
            from_disk.append(True)
            disk.note("hits", "features")
            return got[0]
        ds = persist(compute_features(data, specs), client)
        save_dataset(disk, "features", key, ds, client)
        return ds

    ds, status = FEATURE_CACHE.get_or_build((token, client_key(client)), build)
    return ds, "hit" if from_disk else status
