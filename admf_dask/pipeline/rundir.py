"""The run folder: written into a hidden temporary sibling, renamed into place at the end.

A failed or interrupted run removes its temporary folder, so the target is either absent, the
previous complete run (never touched unless ``overwrite``), or the new complete run.
``overwrite`` replaces only a finished run folder of this tool: its ``run.json`` carries
``"tool": "admf-dask"`` and a run id, and the folder holds nothing the run did not write. Any
other folder (a user's, a half-copied one) is refused before the run and again at the rename.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from admf_dask.errors import ConfigError

# run.json's "tool": marks a folder as a run folder that overwrite may replace.
TOOL = "admf-dask"
# What a run writes at the top of its folder, for run.json files without an "outputs" list
# (written before it existed).
KNOWN_OUTPUTS = frozenset(
    {
        "run.json",
        "results.zarr",
        "orders.parquet",
        "trades.parquet",
        "signals.zarr",
        "report.html",
        "models",
    }
)
# report.html is also rebuilt later by `admf-dask report`; profile.html is written after run.json.
_ALWAYS = frozenset({"run.json", "report.html", "profile.html"})


def outputs(folder: Path) -> list[str]:
    """Top-level names in a run folder being written (for run.json's ``outputs``)."""
    return sorted({p.name for p in Path(folder).iterdir()} | {"run.json"})


def run_folder_problem(folder: Path) -> str | None:
    """Why `folder` is not a finished run folder of this tool, or None when it is one.

    Parameters
    ----------
    folder : pathlib.Path
        An existing path.

    Returns
    -------
    str or None
        A short reason (``"it has no run.json"``), or None: the folder's ``run.json`` says
        ``"tool": "admf-dask"`` with a ``run_id`` (or is one written before that key existed:
        ``run_id``, ``config_hash`` and ``versions["admf-dask"]``), and every entry in the folder
        is one the run wrote.
    """
    folder = Path(folder)
    if folder.is_symlink():
        return "it is a symbolic link"
    if not folder.is_dir():
        return "it is not a folder"
    manifest_path = folder / "run.json"
    if not manifest_path.is_file():
        return "it has no run.json"
    try:
        manifest: Any = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "its run.json is not readable JSON"
    if not isinstance(manifest, dict) or not _is_ours(manifest):
        return "its run.json was not written by admf-dask"
    listed = manifest.get("outputs")
    allowed = set(listed) if _str_list(listed) else set(KNOWN_OUTPUTS)
    extra = sorted(p.name for p in folder.iterdir() if p.name not in allowed | _ALWAYS)
    if extra:
        shown = ", ".join(extra[:5]) + (f", ... ({len(extra)} in all)" if len(extra) > 5 else "")
        return f"it holds files the run did not write ({shown})"
    return None


def _is_ours(manifest: dict[str, Any]) -> bool:
    run_id = manifest.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        return False
    if manifest.get("tool") == TOOL:
        return True
    versions = manifest.get("versions")  # a run.json written before "tool" was added
    return (
        "tool" not in manifest
        and isinstance(versions, dict)
        and TOOL in versions
        and isinstance(manifest.get("config_hash"), str)
    )


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _refuse_overwrite(out: Path, problem: str, where: str) -> ConfigError:
    return ConfigError(
        where,
        f"'{out}' is not a run folder of admf-dask ({problem}); output.overwrite replaces only "
        "the folder of a previous run, so it was left untouched",
        "choose another --out, or move or delete that folder yourself",
    )


def check_target(out: Path, overwrite: bool, where: str = "output.path") -> None:
    """Refuse a target that is a file, an existing folder without ``overwrite``, or (with it)
    an existing folder that is not a finished run folder of this tool."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ConfigError(
                where, f"'{out}' is a file, not a folder", "choose another --out path"
            )
        if not overwrite:
            raise ConfigError(
                where,
                f"'{out}' already exists",
                "choose another --out, delete it, or --set output.overwrite=true "
                "(which replaces only a previous run's folder)",
            )
        problem = run_folder_problem(out)
        if problem is not None:
            raise _refuse_overwrite(out, problem, where)
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
    _PENDING.add(tmp)
    return tmp


def commit(tmp: Path, out: Path, overwrite: bool, where: str = "output.path") -> None:
    """Move the finished `tmp` to `out`; an old run is replaced only with ``overwrite``, and
    only while it is still a finished run folder of this tool (checked again here: the folder
    may have changed while the run computed)."""
    from admf_dask.dasktools.files import replace_dir

    if out.exists() or out.is_symlink():
        if not overwrite:  # appeared while we ran: never clobber
            raise ConfigError(where, f"'{out}' appeared during the run", "choose another --out")
        problem = run_folder_problem(out)
        if problem is not None:
            raise _refuse_overwrite(out, problem, where)
    replace_dir(tmp, out)


#: temporary folders made by `temp_dir_for` and neither committed nor discarded yet: what an
#: interrupt's cleanup (another thread than the run's) must remove
_PENDING: set[Path] = set()


def forget(tmp: Path) -> None:
    """`tmp` was committed (renamed into place): nothing left to discard."""
    _PENDING.discard(tmp)


def discard(tmp: Path | None, timeout: float = 15.0) -> None:
    """Remove a temporary run folder (after a failure or an interrupt).

    Workers still finishing a task may write into it while it is removed (and a Zarr or Parquet
    write re-creates parent folders), so removal is retried until the folder is gone and stays
    gone for a moment, for at most `timeout` seconds.
    """
    if tmp is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        shutil.rmtree(tmp, ignore_errors=True)
        time.sleep(0.1)
        if not tmp.exists() or time.monotonic() > deadline:
            break
    _PENDING.discard(tmp)


def discard_pending(timeout: float = 15.0) -> None:
    """`discard` every temporary folder of this process that was not committed."""
    for tmp in list(_PENDING):
        discard(tmp, timeout)
