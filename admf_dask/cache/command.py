"""``admf-dask cache info | clear``: what the disk cache holds, and emptying it."""

from __future__ import annotations

from admf_dask.cache import KINDS, DiskCache, format_size, resolve_dir
from admf_dask.errors import ConfigError


def cache_command(action: str, directory: str | None = None) -> int:
    """Print the cache's folder, entries and size per kind (``info``) or remove its entries.

    ``clear`` removes only entries this tool wrote (folders with its ``entry.json``); any other
    file in the folder stays.

    Raises
    ------
    ConfigError
        The folder is a file.
    """
    root = resolve_dir(directory)
    where = "--dir" if directory else "cache folder"
    if root.exists() and not root.is_dir():
        raise ConfigError(where, f"{root} is a file, not a folder", "pass the cache folder")
    cache = DiskCache(root)
    if action == "clear":
        n = cache.clear() if root.is_dir() else 0
        print(f"cache: {root}: removed {n} entr{'y' if n == 1 else 'ies'}")
        return 0
    info = cache.info() if root.is_dir() else {"entries": 0, "size": 0, "kinds": {}}
    print(f"cache: {root}")
    print(f"entries: {info['entries']} ({format_size(info['size'])})")
    for kind in KINDS:
        k = info["kinds"].get(kind, {"entries": 0, "size": 0})
        print(f"  {kind:<9} {k['entries']:>5}  {format_size(k['size']):>10}")
    return 0
