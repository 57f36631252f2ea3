"""Persistent cache across processes: features, signals and fold models on disk (``cache:``).

The session caches (`admf_dask.features.FEATURE_CACHE`, `admf_dask.strategies.SIGNAL_CACHE`)
come first; on a session miss the stages look here, under the same content tokens (data
fingerprint, specs, chunking, replay file hashes) salted with the package versions, and write
what they computed. See `store` for the layout and its guarantees.

Public API
----------
DiskCache, Entry
    The cache folder: `lookup`, `put`, `evict`, `info`, `clear`.
open_cache(config, client=None, origin=None) -> (DiskCache | None, warning | None)
    The cache a run uses, or None when disabled or out of the workers' reach.
default_cache_dir(), parse_size(text), format_size(n), entry_key(kind, token, **salt)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from admf_dask.cache.store import (
    DEFAULT_MAX_SIZE,
    ENV_VAR,
    KINDS,
    DiskCache,
    Entry,
    default_cache_dir,
    entry_key,
    format_size,
    parse_size,
    probe_file,
)


def resolve_dir(directory: str | Path | None) -> Path:
    """``directory`` (``~`` expanded, relative to the current folder), else the default."""
    if directory:
        return Path(directory).expanduser().resolve()
    return default_cache_dir().resolve()


def open_cache(
    config: Any, client: Any = None, origin: dict[str, Any] | None = None
) -> tuple[DiskCache | None, str | None]:
    """The disk cache for a run, or ``(None, reason)`` when it cannot be used.

    Parameters
    ----------
    config : CacheConfig
        ``enabled``, ``dir``, ``max_size``.
    client : distributed.Client, optional
        The workers must see the folder (they write and read the entries where the data is);
        on a cluster whose workers cannot (other machines), the cache is off for the run.
    origin : dict, optional
        ``{"run_id", "path"}`` recorded in the signal entries this run writes.

    Returns
    -------
    (DiskCache or None, str or None)
        The cache, and a warning when it was wanted but is off.
    """
    if not config.enabled:
        return None, None
    root = resolve_dir(config.dir)
    try:
        with probe_file(root) as probe:
            if client is not None:
                import os

                seen = client.run(os.path.exists, str(probe))
                blind = sorted(addr for addr, ok in seen.items() if not ok)
                if blind:
                    return None, (
                        f"cache.dir {root} is not visible to worker(s) {', '.join(blind)}; the "
                        "disk cache is off for this run (set cache.dir to a folder every worker "
                        "can reach, or cache.enabled: false to silence this)"
                    )
    except OSError as exc:
        return None, (
            f"cannot write to cache.dir {root} ({exc}); the disk cache is off for this run "
            "(set cache.dir to a writable folder, or cache.enabled: false)"
        )
    return DiskCache(root, parse_size(config.max_size), origin=dict(origin or {})), None


__all__ = [
    "DEFAULT_MAX_SIZE",
    "ENV_VAR",
    "KINDS",
    "DiskCache",
    "Entry",
    "default_cache_dir",
    "entry_key",
    "format_size",
    "open_cache",
    "parse_size",
    "resolve_dir",
]
