"""Datasets in the disk cache: written as Zarr by the workers that hold them, read back lazily.

Only the data variables go to Zarr (float64 blocks, lossless compression, so values come back bit
for bit); coordinates come from the caller (the market data they were computed on) and the
Dataset's attrs, variable order and dask chunks from the entry's manifest, so a loaded entry is
indistinguishable from the computed one. Zarr needs regular chunks (all equal but a smaller
last one): other chunkings are stored regular and rechunked back on load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import xarray as xr

from admf_dask.cache.store import DiskCache

STORE = "data.zarr"


def _regular(chunks: tuple[int, ...]) -> bool:
    return all(c == chunks[0] for c in chunks[:-1]) and chunks[-1] <= chunks[0]


def _compute(obj: Any, client: Any) -> None:
    if client is not None:
        client.compute(obj).result()
    else:
        obj.compute()


def save_dataset(
    cache: DiskCache,
    kind: str,
    key: str,
    ds: xr.Dataset,
    client: Any = None,
    meta: Mapping[str, Any] | None = None,
) -> bool:
    """Write a (persisted) dask-backed Dataset as entry ``(kind, key)``; True when stored.

    The write runs where the blocks are (``client.compute`` of the Zarr store task), into a
    temporary folder renamed into place (`DiskCache.put`). Empty datasets are not stored.
    """
    if not ds.data_vars or any(n == 0 for n in ds.sizes.values()):
        return False
    chunks = {str(d): [int(c) for c in cs] for d, cs in ds.chunks.items()}
    body = ds.drop_vars(list(ds.coords))
    body.attrs = {}
    for v in body.variables.values():
        v.encoding = {}
    irregular = {d: max(cs) for d, cs in chunks.items() if not _regular(tuple(cs))}
    if irregular:
        body = body.chunk(irregular)
    full = {
        "variables": [str(v) for v in ds.data_vars],
        "attrs": {str(k): v for k, v in ds.attrs.items()},
        "chunks": chunks,
        "sizes": {str(d): int(n) for d, n in ds.sizes.items()},
        **dict(meta or {}),
    }

    def write(folder) -> None:
        job = body.to_zarr(folder / STORE, mode="w-", compute=False, consolidated=False)
        _compute(job, client)

    return cache.put(kind, key, write, full) is not None


def load_dataset(
    cache: DiskCache,
    kind: str,
    key: str,
    coords: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]],
    client: Any = None,
    lazy: bool = False,
) -> tuple[xr.Dataset, dict[str, Any]] | None:
    """Entry ``(kind, key)`` as a persisted Dataset plus its meta; None on a miss.

    Parameters
    ----------
    coords : mapping or callable
        dim -> coordinate values to attach (their sizes must match the stored ones), or a
        function of the entry's meta giving them.
    client : distributed.Client, optional
        Persist on its workers (they read the Zarr chunks themselves).
    lazy : bool
        Check every file against its checksum here and return the Dataset unread: its chunks
        are read from disk by the tasks that use them, if any (on a signal-cache hit the
        features are often not needed at all). Entries without checksums are persisted.

    A corrupt entry (unreadable store, wrong shape, a block that fails to decode) is removed
    with a warning and reads as a miss.
    """
    entry = cache.lookup(kind, key, verify=lazy)
    if entry is None:
        return None
    meta = entry.meta
    try:
        ds = xr.open_zarr(entry.path / STORE, consolidated=False, chunks={})
        names = list(meta["variables"])
        if sorted(map(str, ds.data_vars)) != sorted(names):
            raise ValueError(f"variables {sorted(map(str, ds.data_vars))} != {sorted(names)}")
        sizes = {str(d): int(n) for d, n in ds.sizes.items()}
        if callable(coords):
            coords = coords(meta)
        if sizes != meta["sizes"]:
            raise ValueError(f"sizes {sizes} != {meta['sizes']}")
        for d, values in coords.items():
            if len(values) != sizes.get(d):
                raise ValueError(f"{d} has {sizes.get(d)} values here, {len(values)} in the data")
        ds = ds[names]
        want = {d: tuple(cs) for d, cs in meta["chunks"].items()}
        if {str(d): tuple(cs) for d, cs in ds.chunks.items()} != want:
            ds = ds.chunk(want)
        ds = ds.assign_coords(dict(coords))
        ds.attrs = dict(meta["attrs"])
        for v in ds.variables.values():
            v.encoding = {}
        if not (lazy and entry.verified):
            ds = _persist_checked(ds, client)
    except Exception as exc:  # any unreadable entry is a miss, never a crash
        from distributed.scheduler import KilledWorker

        if isinstance(exc, KilledWorker):  # the cluster failed, not the entry: keep it
            raise
        cache.discard(kind, key, f"{type(exc).__name__}: {exc}")
        return None
    return ds, meta


def _persist_checked(ds: xr.Dataset, client: Any) -> xr.Dataset:
    """Persist and wait: a block that fails to read raises here, where it can become a miss."""
    if client is None:
        return ds.persist()
    from distributed import futures_of, wait

    ds = client.persist(ds)
    futures = futures_of(ds)
    with client.as_current():  # `wait` looks up the default client
        wait(futures)
    for f in futures:
        if f.status == "error":
            raise f.exception()
    return ds
