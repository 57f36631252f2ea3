"""The package's one least-recently-used cache (session caches, workers' fold models)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRU:
    """Thread-safe mapping that keeps the `maxsize` most recently used items.

    Parameters
    ----------
    maxsize : int
        Items kept; the least recently used one goes first.
    serialize_builds : bool
        `get_or_build` runs one build at a time (under a lock), so two threads asking for the
        same missing key build it once; otherwise builds run concurrently and the first stored
        value wins.

    Attributes
    ----------
    hits, misses : int
        `get_or_build` calls answered from the cache / that built the value.
    """

    def __init__(self, maxsize: int, *, serialize_builds: bool = False) -> None:
        self.maxsize = int(maxsize)
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._build_lock = threading.Lock() if serialize_builds else None

    def _get(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return True, self._items[key]
        return False, None

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> tuple[Any, bool]:
        """``(value, True)`` when `key` is cached, else ``(build(), False)`` stored under it."""
        if self._build_lock is None:
            return self._get_or_build(key, build)
        with self._build_lock:
            return self._get_or_build(key, build)

    def _get_or_build(self, key: Hashable, build: Callable[[], Any]) -> tuple[Any, bool]:
        found, value = self._get(key)
        if found:
            return value, True
        value = build()
        with self._lock:
            if key in self._items:  # built concurrently: keep the first
                self.hits += 1
                return self._items[key], True
            self.misses += 1
            self._items[key] = value
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return value, False

    def keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget every item."""
        with self._lock:
            self._items.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
