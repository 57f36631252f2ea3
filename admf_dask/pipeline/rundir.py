"""The run folder: written into a hidden temporary sibling, renamed into place at the end.

A failed or interrupted run removes its temporary folder, so the target is either absent, the
previous complete run (never touched unless ``overwrite``), or the new complete run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from admf_dask.errors import ConfigError


def check_target(out: Path, overwrite: bool, where: str = "output.path") -> None:
    """Refuse a target that is a file, or an existing folder without ``overwrite``."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ConfigError(
                where, f"'{out}' is a file, not a folder", "choose another --out path"
            )
        if not overwrite:
            raise ConfigError(
                where,
                f"'{out}' already exists",
                "choose another --out, delete it, or --set output.overwrite=true",
            )
    parent = out.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            where, f"'{probe}' is a file, so '{out}' cannot be created", "choose another --out path"
        )
    if not os.access(probe, os.W_OK):
        raise ConfigError(
            where, f"no permission to write in '{probe}'", "choose another --out path"
        )


def temp_dir_for(out: Path, run_id: str) -> Path:
    """Hidden sibling of `out` (same filesystem, so the final rename is atomic)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{run_id}"
    tmp.mkdir()
    return tmp


def commit(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished `tmp` to `out`; an old run is replaced only with ``overwrite``."""
    old = None
    if out.exists():
        if not overwrite:  # appeared while we ran: never clobber
            raise ConfigError(
                "output.path", f"'{out}' appeared during the run", "choose another --out"
            )
        old = out.parent / f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard(tmp: Path | None) -> None:
    """Remove a temporary run folder (after a failure or an interrupt)."""
    if tmp is not None and tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)
