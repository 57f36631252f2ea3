"""The package's one atomic-write helper: readers see the old content or the new, never half."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def atomic_write(
    path: str | Path,
    write: Callable[[Path], object],
    *,
    directory: bool = False,
    replace: bool = True,
    prefix: str = ".tmp-",
) -> bool:
    """Fill a temporary sibling of `path` with ``write(tmp)``, then rename it to `path`.

    Parameters
    ----------
    path : path
        The final file or folder.
    write : callable
        Writes the content at the temporary path it is given (a folder already created when
        `directory`).
    directory : bool
        The content is a folder.
    replace : bool
        An existing file at `path` is replaced (``os.replace``). With False, an existing `path`
        wins: the new copy is discarded and False returned (two processes writing the same
        content-keyed entry both succeed, the second keeping the first's).
    prefix : str
        Start of the temporary name (next to `path`, so the rename stays on one file system).

    Returns
    -------
    bool
        True when this call's content was put in place.

    Raises
    ------
    OSError
        From `write` or the rename; the temporary copy is removed first.
    """
    path = Path(path)
    tmp = path.parent / f"{prefix}{path.name}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        if directory:
            tmp.mkdir(parents=True)
        else:
            tmp.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            # a folder's rename fails onto a non-empty folder, a hard link onto any file
            os.rename(tmp, path) if directory else os.link(tmp, path)
        except OSError:
            if not path.exists():
                raise
            _remove(tmp)
            return False
        if not directory:
            _remove(tmp)
        return True
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to the file `path` atomically (replacing it)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def replace_dir(tmp: str | Path, path: str | Path) -> None:
    """Move the finished folder `tmp` to `path`, replacing the folder there if any.

    The old folder is first renamed aside (``.<name>.old-<random>``) and removed only once the
    new one is in place, so `path` always holds one complete folder or, for an instant, none.
    """
    tmp, path = Path(tmp), Path(path)
    old = None
    if path.exists() or path.is_symlink():
        old = path.parent / f".{path.name}.old-{secrets.token_hex(4)}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        _remove(old)
