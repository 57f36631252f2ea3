"""Per-process cache of persisted collections, and persisting with or without a client."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Literal

from admf_dask.dasktools.lru import LRU

#: name of the worker plugin of `admf_dask.cluster.plugin` (here: no import of distributed)
WORKER_PLUGIN = "admf-dask"

CacheStatus = Literal["hit", "miss"]


class SessionCache(LRU):
    """Small LRU of persisted collections, keyed by a deterministic token (thread-safe).

    The first `get_or_build` for a key builds and stores; every later one returns the very
    same object, so nothing is recomputed within the session.
    """

    def __init__(self, maxsize: int = 8) -> None:
        super().__init__(maxsize)

    def get_or_build(  # type: ignore[override]
        self, key: Hashable, build: Callable[[], Any]
    ) -> tuple[Any, CacheStatus]:
        """Return ``(value, "hit")`` if cached, else build, store and return ``(value, "miss")``."""
        value, found = super().get_or_build(key, build)
        return value, "hit" if found else "miss"


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


def worker_plugin() -> Any:
    """The `WORKER_PLUGIN` of the worker running the caller, or None (not on such a worker)."""
    import sys

    if "distributed" not in sys.modules:  # not a worker process: do not import distributed
        return None
    from distributed import get_worker

    try:
        return get_worker().plugins.get(WORKER_PLUGIN)
    except ValueError:  # a client or local thread, not a worker's task
        return None
