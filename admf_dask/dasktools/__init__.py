"""Shared Dask helpers: identities, atomic writes, an LRU, session caches, halo/chain maps.

Every submodule imports only what it needs (`ids` loads ``dask.base``, `files` and `lru`
the standard library only), so importing this package costs nothing.

Public API
----------
identity(*parts, length=32) -> str
    Deterministic hex token of plain data (`dask.base.tokenize`), equal in every process.
atomic_write(path, write), atomic_write_bytes(path, data), replace_dir(tmp, path)
    Write to a temporary sibling, then rename into place in one step.
LRU(maxsize)
    Thread-safe least-recently-used mapping with ``get_or_build``.
SessionCache, persist, client_key
    The per-process cache of persisted collections (`admf_dask.dasktools.session`).
halo_map, chain_map
    One task per block: window kernels with a halo, stateful kernels chained in time.
WORKER_PLUGIN, worker_plugin()
    Name of the worker plugin of `admf_dask.cluster.plugin`; that plugin, on a worker.
"""

from __future__ import annotations

from admf_dask._lazy import lazy_getattr
from admf_dask.dasktools.session import WORKER_PLUGIN

__all__ = [
    "LRU",
    "WORKER_PLUGIN",
    "SessionCache",
    "atomic_write",
    "atomic_write_bytes",
    "chain_map",
    "client_key",
    "halo_map",
    "identity",
    "persist",
    "replace_dir",
    "worker_plugin",
]

__getattr__ = lazy_getattr(
    __name__,
    {
        "LRU": "admf_dask.dasktools.lru",
        "SessionCache": "admf_dask.dasktools.session",
        "atomic_write": "admf_dask.dasktools.files",
        "atomic_write_bytes": "admf_dask.dasktools.files",
        "chain_map": "admf_dask.dasktools.maps",
        "client_key": "admf_dask.dasktools.session",
        "halo_map": "admf_dask.dasktools.maps",
        "identity": "admf_dask.dasktools.ids",
        "persist": "admf_dask.dasktools.session",
        "replace_dir": "admf_dask.dasktools.files",
        "worker_plugin": "admf_dask.dasktools.session",
    },
)
