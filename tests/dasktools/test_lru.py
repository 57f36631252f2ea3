"""`LRU`: least recently used first out; builds counted; optional one-build-at-a-time."""

from __future__ import annotations

import threading

from admf_dask.dasktools import LRU, SessionCache


def test_evicts_least_recently_used():
    c = LRU(2)
    c.get_or_build("a", lambda: 1)
    c.get_or_build("b", lambda: 2)
    assert c.get_or_build("a", lambda: 0) == (1, True)  # a is now the most recent
    c.get_or_build("c", lambda: 3)
    assert c.keys() == ["a", "c"] and "b" not in c and len(c) == 2
    assert (c.hits, c.misses) == (1, 3)
    c.clear()
    assert len(c) == 0


def test_serialized_builds_build_once():
    c = LRU(4, serialize_builds=True)
    calls = []
    gate = threading.Event()

    def build():
        calls.append(1)
        gate.wait(1)
        return object()

    out = []
    threads = [
        threading.Thread(target=lambda: out.append(c.get_or_build("k", build)[0])) for _ in range(4)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(v) for v in out}) == 1


def test_session_cache_reports_hit_and_miss():
    c = SessionCache(maxsize=1)
    v, s = c.get_or_build("x", lambda: [1])
    assert s == "miss" and c.get_or_build("x", lambda: [2]) == (v, "hit")
