"""The on-disk cache: content-keyed entries, atomic writes, least-recently-used eviction.

Layout under the cache folder (``cache.dir``)::

    <kind>/<key>/entry.json     the entry's manifest, written last (tool, format, kind, key,
                                size, every payload file with its size, free-form meta)
    <kind>/<key>/...            payload (a Zarr store, model files)
    <kind>/.admf-tmp-<key>-*    an entry being written (renamed into place when complete)

An entry is written into a temporary folder next to its final place and renamed in one step, so
readers see a complete entry or none, and two processes writing the same key both succeed (the
second rename finds the first one's entry and discards its own copy). An entry whose manifest is
unreadable, foreign, or whose files are missing or of another size is treated as a miss: it is
removed with a warning. Only folders holding an ``entry.json`` this tool wrote are ever removed.

"Last used" is the modification time of ``entry.json``, refreshed on every hit (access times are
unreliable: many file systems are mounted ``noatime``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("admf_dask")

TOOL = "admf-dask"
FORMAT = 1
ENTRY = "entry.json"
TMP_PREFIX = ".admf-tmp-"
KINDS = ("features", "signals", "models", "market")
#: temporary folders older than this are left-overs of a killed process (removed by `clear`)
STALE_TMP_S = 3600.0
ENV_VAR = "ADMF_DASK_CACHE"
DEFAULT_MAX_SIZE = "10GiB"


def default_cache_dir() -> Path:
    """``$ADMF_DASK_CACHE`` if set, else the user cache folder (``platformdirs``)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("admf-dask", appauthor=False))


def parse_size(text: str | int) -> int:
    """Bytes of ``"10GiB"``, ``"500MB"``, ``"0"`` or an int (dask's `parse_bytes` rules).

    Raises
    ------
    ValueError
        Not a size, or negative.
    """
    from dask.utils import parse_bytes

    if isinstance(text, bool):
        raise ValueError(f"not a size: {text!r}")
    try:
        n = int(text) if isinstance(text, int) else int(parse_bytes(str(text)))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a size: {text!r} (write e.g. '10GiB' or '500MB')") from exc
    if n < 0:
        raise ValueError(f"size must not be negative, got {text!r}")
    return n


def format_size(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _versions() -> dict[str, str]:
    """Versions of what computes cached content (a new version must not reuse old entries)."""
    from importlib import metadata

    out = {}
    for pkg in ("admf-dask", "numpy", "numba", "xgboost", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover - optional at runtime
            out[pkg] = "-"
    return out


_VERSIONS: dict[str, str] | None = None


def versions() -> dict[str, str]:
    """`_versions`, computed once per process."""
    global _VERSIONS
    if _VERSIONS is None:
        _VERSIONS = _versions()
    return dict(_VERSIONS)


def entry_key(kind: str, token: str, **salt: Any) -> str:
    """Cache key of a content token: the token plus package versions and `salt`, hashed."""
    from admf_dask.dasktools.ids import identity

    return identity("cache-entry", kind, token, FORMAT, versions(), salt)


@dataclass(frozen=True)
class Entry:
    """One complete cache entry."""

    kind: str
    key: str
    path: Path
    size: int
    last_used: float
    meta: dict[str, Any]
    #: every file's checksum was read back and matched (`DiskCache.lookup(verify=True)`)
    verified: bool = False


class CorruptEntry(Exception):
    """An entry that must be treated as a miss (and removed)."""


def _read_manifest(path: Path, kind: str, key: str | None) -> dict[str, Any]:
    mpath = path / ENTRY
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorruptEntry("no entry.json") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptEntry(f"unreadable entry.json ({exc})") from exc
    if not isinstance(m, dict) or m.get("tool") != TOOL:
        raise CorruptEntry("entry.json was not written by admf-dask")
    if m.get("format") != FORMAT or m.get("kind") != kind:
        raise CorruptEntry(f"entry format {m.get('format')} / kind {m.get('kind')}")
    if key is not None and m.get("key") != key:
        raise CorruptEntry(f"entry.json is for key {m.get('key')}")
    if not isinstance(m.get("files"), dict) or not isinstance(m.get("size"), int):
        raise CorruptEntry("entry.json lacks its file list")
    return m


def _is_foreign(path: Path) -> bool:
    """An ``entry.json`` that another program wrote (readable, but not this tool's).

    A missing or unreadable manifest in an entry's place is a broken entry of ours (a folder
    is only ever created there by `DiskCache.put`'s rename), and may be removed.
    """
    try:
        m = json.loads((path / ENTRY).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return not (isinstance(m, dict) and m.get("tool") == TOOL)


def _crc32(path: Path) -> int:
    import zlib

    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _payload_files(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            if rel != ENTRY:
                out[rel] = p.stat().st_size
    return out


def _remove_tree(path: Path) -> None:
    """Rename out of the way first (atomic: readers never see half a folder), then delete."""
    trash = path.with_name(f"{TMP_PREFIX}del-{path.name}-{secrets.token_hex(4)}")
    try:
        os.rename(path, trash)
    except OSError:
        return  # gone already (another process removed it)
    shutil.rmtree(trash, ignore_errors=True)


@dataclass
class DiskCache:
    """Content-keyed on-disk cache of features, signals and fold models.

    Parameters
    ----------
    root : path
        The cache folder (created on first write).
    max_size : int
        Size cap in bytes: after each write, least recently used entries are removed until
        the total is under it (never the entry just written).
    origin : dict, optional
        ``{"run_id", "path"}`` of the run using it, recorded in signal entries.

    Attributes
    ----------
    warnings : list of str
        Corrupt entries met, failed writes (the run reports them).
    hits : dict
        kind -> number of disk hits in this run (``cache_detail`` in run.json).
    """

    root: Path
    max_size: int = field(default_factory=lambda: parse_size(DEFAULT_MAX_SIZE))
    origin: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # picklable for worker tasks (no lock)
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- keys and paths -------------------------------------------------------------------

    def path(self, kind: str, key: str) -> Path:
        """Folder of an entry."""
        if kind not in KINDS:
            raise ValueError(f"unknown cache kind {kind!r}")
        return self.root / kind / key

    def warn(self, text: str) -> None:
        """Record and log a warning."""
        log.warning("cache: %s", text)
        with self._lock:
            self.warnings.append(f"cache: {text}")

    def note(self, counter: str, kind: str, n: int = 1) -> None:
        """Count a disk hit / write of `kind` (run.json ``cache_detail``)."""
        with self._lock:
            d = getattr(self, counter)
            d[kind] = d.get(kind, 0) + n

    # -- read -----------------------------------------------------------------------------

    def lookup(self, kind: str, key: str, verify: bool = False) -> Entry | None:
        """The complete entry, its last-used time refreshed; None on a miss.

        A corrupt or partial entry is removed with a warning and reads as a miss. With `verify`,
        every file is also read back against its CRC-32 (entries written before checksums were
        recorded come back with ``verified`` false).
        """
        path = self.path(kind, key)
        if not path.is_dir():
            return None
        try:
            m = _read_manifest(path, kind, key)
            for rel, size in m["files"].items():
                p = path / rel
                try:
                    actual = p.stat().st_size
                except OSError as exc:
                    raise CorruptEntry(f"missing file {rel}") from exc
                if actual != size:
                    raise CorruptEntry(f"file {rel} has {actual} bytes, expected {size}")
            sums = m.get("crc32")
            verified = bool(verify and isinstance(sums, dict) and sums.keys() == m["files"].keys())
            for rel in sums if verified else ():
                if _crc32(path / rel) != sums[rel]:
                    raise CorruptEntry(f"file {rel} does not match its checksum")
        except CorruptEntry as exc:
            self.discard(kind, key, str(exc))
            return None
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(path / ENTRY, (now, now))
        return Entry(kind, key, path, int(m["size"]), now, dict(m.get("meta") or {}), verified)

    def discard(self, kind: str, key: str, reason: str) -> None:
        """Remove a bad entry (never one another program wrote) with a warning."""
        path = self.path(kind, key)
        if path.is_dir() and _is_foreign(path):
            self.warn(f"{path} was not written by admf-dask; left alone, not cached")
            return
        self.warn(f"{kind} entry {key[:12]} is corrupt ({reason}); removed, recomputing")
        if path.is_dir():
            _remove_tree(path)

    # -- write ----------------------------------------------------------------------------

    def put(
        self,
        kind: str,
        key: str,
        write: Callable[[Path], None],
        meta: dict[str, Any] | None = None,
        *,
        evict: bool = True,
    ) -> Entry | None:
        """Write an entry atomically: `write(folder)` fills a temporary folder, then rename.

        Returns the entry, or None when the write failed (a warning; the run goes on) or another
        process wrote the same key first (its entry is returned instead).
        """
        from admf_dask.dasktools.files import atomic_write

        final = self.path(kind, key)
        if final.is_dir():
            return self.lookup(kind, key)
        manifest: dict[str, Any] = {}

        def fill(tmp: Path) -> None:
            write(tmp)
            files = _payload_files(tmp)
            manifest.update(
                tool=TOOL,
                format=FORMAT,
                kind=kind,
                key=key,
                created=time.time(),
                size=int(sum(files.values())),
                files=files,
                crc32={rel: _crc32(tmp / rel) for rel in files},
                meta=meta or {},
            )
            (tmp / ENTRY).write_text(json.dumps(manifest, sort_keys=True, default=str))

        try:
            if not atomic_write(final, fill, directory=True, replace=False, prefix=TMP_PREFIX):
                return self.lookup(kind, key)  # another process won the race
        except OSError as exc:  # a full disk or a bad path must not fail the run
            # (a cluster fault during the write, e.g. a killed worker, is the run's own error)
            self.warn(f"could not write {kind} entry to {self.root} ({type(exc).__name__}: {exc})")
            return None
        self.note("written", kind)
        if evict:
            self.evict(protect={(kind, key)})
        return Entry(kind, key, final, manifest["size"], time.time(), manifest["meta"])

    # -- whole cache ----------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every complete entry of this tool (foreign folders and files are skipped)."""
        out = []
        for kind in KINDS:
            d = self.root / kind
            if not d.is_dir():
                continue
            for p in d.iterdir():
                if p.name.startswith(TMP_PREFIX) or not p.is_dir():
                    continue
                try:
                    m = _read_manifest(p, kind, p.name)
                    used = (p / ENTRY).stat().st_mtime
                except (CorruptEntry, OSError):
                    continue
                out.append(Entry(kind, p.name, p, int(m["size"]), used, dict(m.get("meta") or {})))
        return out

    def evict(self, protect: set[tuple[str, str]] | frozenset = frozenset()) -> list[Entry]:
        """Remove least recently used entries until the total size is under ``max_size``.

        Entries in `protect` (``(kind, key)``) stay, even when they alone exceed the cap.
        """
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.size for e in entries)
        removed = []
        for e in entries:
            if total <= self.max_size:
                break
            if (e.kind, e.key) in protect:
                continue
            _remove_tree(e.path)
            total -= e.size
            removed.append(e)
        return removed

    def info(self) -> dict[str, Any]:
        """``{"dir", "entries", "size", "kinds": {kind: {"entries", "size"}}}``."""
        entries = self.entries()
        kinds = {
            k: {
                "entries": sum(e.kind == k for e in entries),
                "size": sum(e.size for e in entries if e.kind == k),
            }
            for k in KINDS
        }
        return {
            "dir": str(self.root),
            "entries": len(entries),
            "size": sum(e.size for e in entries),
            "max_size": self.max_size,
            "kinds": kinds,
        }

    def clear(self) -> int:
        """Remove every entry this tool wrote (and its stale temporary folders); return how many.

        Anything else in the folder is left alone.
        """
        n = 0
        for e in self.entries():
            _remove_tree(e.path)
            n += 1
        now = time.time()
        for kind in KINDS:
            d = self.root / kind
            if not d.is_dir():
                continue
            for p in d.iterdir():
                if p.name.startswith(TMP_PREFIX) and p.is_dir():
                    with contextlib.suppress(OSError):
                        if now - p.stat().st_mtime > STALE_TMP_S or p.name.startswith(
                            f"{TMP_PREFIX}del-"
                        ):
                            shutil.rmtree(p, ignore_errors=True)
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty: a foreign file keeps it
        return n


@contextlib.contextmanager
def probe_file(root: Path) -> Iterator[Path]:
    """A small file in `root` (created for the duration), to test who can see the folder."""
    root.mkdir(parents=True, exist_ok=True)
    p = root / f"{TMP_PREFIX}probe-{os.getpid()}-{secrets.token_hex(4)}"
    p.write_text("admf-dask cache probe")
    try:
        yield p
    finally:
        with contextlib.suppress(OSError):
            p.unlink()
