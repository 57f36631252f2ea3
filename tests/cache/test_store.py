"""The disk cache folder: atomic entries, corrupt entries as misses, LRU eviction, clear, info."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from admf_dask.cache import DiskCache, entry_key, open_cache, parse_size
from admf_dask.cache.store import ENTRY, TMP_PREFIX
from admf_dask.config.models import CacheConfig


def _writer(nbytes: int, delay: float = 0.0):
    def write(folder):
        time.sleep(delay)
        (folder / "blob").write_bytes(b"x" * nbytes)

    return write


def _age(cache: DiskCache, kind: str, key: str, t: float) -> None:
    os.utime(cache.path(kind, key) / ENTRY, (t, t))


def test_put_then_lookup_roundtrip(tmp_path):
    cache = DiskCache(tmp_path / "c")
    e = cache.put("features", "k1", _writer(100), {"note": "hello"})
    assert e is not None and e.size == 100
    got = cache.lookup("features", "k1")
    assert got.meta == {"note": "hello"} and got.size == 100
    assert cache.lookup("features", "nope") is None
    # nothing temporary is left behind
    assert not [p for p in (tmp_path / "c" / "features").iterdir() if p.name.startswith(".")]


def test_keys_change_with_token_salt_and_kind():
    k = entry_key("features", "tok")
    assert k == entry_key("features", "tok")
    assert len({k, entry_key("signals", "tok"), entry_key("features", "tok2")}) == 3
    assert entry_key("models", "m", nthreads=1) != entry_key("models", "m", nthreads=2)


def test_concurrent_writers_of_one_key_leave_one_valid_entry(tmp_path):
    cache = DiskCache(tmp_path / "c")
    results = []

    def go():
        results.append(cache.put("signals", "same", _writer(1000, delay=0.2)))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and r.size == 1000 for r in results)
    assert [p.name for p in (tmp_path / "c" / "signals").iterdir()] == ["same"]
    assert cache.lookup("signals", "same").size == 1000
    assert not cache.warnings


@pytest.mark.parametrize(
    "damage",
    ["truncate-payload", "delete-payload", "garbage-manifest", "no-manifest"],
)
def test_corrupt_entry_is_a_miss_removed_with_a_warning(tmp_path, damage):
    cache = DiskCache(tmp_path / "c")
    cache.put("features", "k", _writer(64))
    path = cache.path("features", "k")
    if damage == "truncate-payload":
        (path / "blob").write_bytes(b"x" * 10)
    elif damage == "delete-payload":
        (path / "blob").unlink()
    elif damage == "garbage-manifest":
        (path / ENTRY).write_text("{not json")
    else:
        (path / ENTRY).unlink()
    assert cache.lookup("features", "k") is None
    assert not path.exists()
    assert len(cache.warnings) == 1 and "corrupt" in cache.warnings[0]
    # and it can be written again
    assert cache.put("features", "k", _writer(64)) is not None


def test_verified_lookup_reads_every_checksum(tmp_path):
    cache = DiskCache(tmp_path / "c")
    cache.put("features", "k", _writer(64))
    assert cache.lookup("features", "k", verify=True).verified
    assert not cache.lookup("features", "k").verified  # sizes only: nothing was read
    path = cache.path("features", "k")
    (path / "blob").write_bytes(b"y" * 64)  # same size, other bytes: only the checksum tells
    assert cache.lookup("features", "k") is not None
    assert cache.lookup("features", "k", verify=True) is None
    assert not path.exists() and "checksum" in cache.warnings[-1]


def test_entry_without_checksums_is_not_verified(tmp_path):
    cache = DiskCache(tmp_path / "c")
    cache.put("features", "k", _writer(64))
    manifest = cache.path("features", "k") / ENTRY
    m = json.loads(manifest.read_text())
    del m["crc32"]  # as written before checksums were recorded
    manifest.write_text(json.dumps(m))
    got = cache.lookup("features", "k", verify=True)
    assert got is not None and not got.verified  # the caller reads it back the checked way


def test_foreign_manifest_is_not_removed(tmp_path):
    cache = DiskCache(tmp_path / "c")
    foreign = tmp_path / "c" / "features" / "k"
    foreign.mkdir(parents=True)
    (foreign / ENTRY).write_text(json.dumps({"tool": "someone-else"}))
    assert cache.lookup("features", "k") is None
    assert foreign.exists()  # not ours: left alone


def test_lru_eviction_under_a_tiny_cap(tmp_path):
    cache = DiskCache(tmp_path / "c", max_size=250)
    now = time.time()
    cache.put("features", "a", _writer(100))
    _age(cache, "features", "a", now - 300)
    cache.put("signals", "b", _writer(100))
    _age(cache, "signals", "b", now - 200)
    assert cache.lookup("features", "a") is not None  # a hit: "a" becomes the newest
    cache.put("models", "c", _writer(100))  # 300 > 250: the least recently used ("b") goes
    keys = {(e.kind, e.key) for e in cache.entries()}
    assert keys == {("features", "a"), ("models", "c")}
    # an entry bigger than the cap stays (never evict what was just written); the rest goes
    cache.put("features", "big", _writer(1000))
    assert {(e.kind, e.key) for e in cache.entries()} == {("features", "big")}


def test_clear_removes_only_our_entries(tmp_path):
    root = tmp_path / "c"
    cache = DiskCache(root)
    cache.put("features", "a", _writer(10))
    cache.put("models", "b", _writer(10))
    (root / "notes.txt").write_text("mine")
    (root / "features" / "by-hand").mkdir()
    (root / "features" / "by-hand" / "data.bin").write_bytes(b"1")
    (root / "other").mkdir()
    assert cache.clear() == 2
    assert (root / "notes.txt").read_text() == "mine"
    assert (root / "features" / "by-hand" / "data.bin").exists()
    assert (root / "other").is_dir()
    assert not (root / "models").exists()  # emptied folder of ours
    assert cache.info()["entries"] == 0


def test_fresh_temp_folders_survive_clear(tmp_path):
    """A write in progress (another process) is not pulled from under it."""
    cache = DiskCache(tmp_path / "c")
    cache.put("features", "a", _writer(10))
    busy = tmp_path / "c" / "features" / f"{TMP_PREFIX}x-1-abcd"
    busy.mkdir()
    cache.clear()
    assert busy.exists()


def test_info_counts_per_kind(tmp_path):
    cache = DiskCache(tmp_path / "c")
    cache.put("features", "a", _writer(10))
    cache.put("features", "b", _writer(20))
    cache.put("signals", "c", _writer(5))
    info = cache.info()
    assert info["entries"] == 3 and info["size"] == 35
    assert info["kinds"]["features"] == {"entries": 2, "size": 30}
    assert info["kinds"]["models"] == {"entries": 0, "size": 0}


def test_unwritable_dir_is_a_warning_not_a_crash(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache, why = open_cache(CacheConfig(dir=str(blocker / "sub")))
    assert cache is None and "cache.dir" in why
    assert open_cache(CacheConfig(enabled=False)) == (None, None)


def test_sizes_parse_and_bad_sizes_are_config_errors():
    from admf_dask.config import load_pipeline
    from admf_dask.errors import ConfigError

    assert parse_size("10GiB") == 10 * 2**30 and parse_size("500MB") == 500 * 10**6
    assert parse_size(0) == 0
    with pytest.raises(ValueError):
        parse_size("lots")
    with pytest.raises(ConfigError, match="cache.max_size"):
        load_pipeline({"cache": {"max_size": "lots"}})
    with pytest.raises(ConfigError, match="cache"):
        load_pipeline({"cache": {"size": "1GiB"}})
