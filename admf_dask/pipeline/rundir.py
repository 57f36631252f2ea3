"""The run folder: written into a hidden temporary sibling, renamed into place at the end.

A failed or interrupted run removes its temporary folder, so the target is either absent, the
previous complete run (never touched unless ``overwrite``), or the new complete run.
``overwrite`` replaces only a finished run folder of this tool: its ``run.json`` carries
``"tool": "admf-dask"`` and a run id, and the folder holds nothing the run did not write. Any
other folder (a user's, a half-copied one) is refused before the run and again at the rename.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from admf_dask.dasktools.fs import Loc
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


def outputs(folder: Path, work: Path | Loc | None = None) -> list[str]:
    """Top-level names in a run folder being written (for run.json's ``outputs``); with `work`,
    also those under the prefix the workers wrote into (a run to a store)."""
    names = {p.name for p in Path(folder).iterdir()} | {"run.json"}
    if isinstance(work, Loc):
        names |= set(_listing(work))
    return sorted(names)


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


def _refuse_overwrite(out: Path | Loc, problem: str, where: str) -> ConfigError:
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
    """`discard` every temporary folder (and store prefix) of this process not committed."""
    for tmp in list(_PENDING):
        discard(tmp, timeout)
    for staging in list(_PENDING_REMOTE):
        discard_remote(staging)


# ----------------------------------------------------------------------------- object stores
# A run whose output.path is a URL: the workers write results.zarr, the ledgers and signals.zarr
# straight under a temporary prefix next to the target (`remote_dir`); the client's own files
# (run.json, report.html, research.json, models) go to a local staging folder (`stage_dir`) and
# are uploaded into that prefix at the end (`upload_remote`); `commit_remote` copies the prefix
# to the target with run.json written last, and deletes the temporary prefix. A prefix without
# run.json is never a run (`open_run` refuses it). ``memory://`` is one process's memory: there
# the workers write into the staging folder, uploaded whole. docs/ARCHITECTURE.md, "Object
# stores".


def remote_temp(target: Loc, run_id: str) -> Loc:
    """The temporary prefix of a run on a store: ``<parent>/.<name>.tmp-<run_id>``."""
    return target.parent / f".{target.name}.tmp-{run_id}"


def _listing(loc: Loc) -> list[str]:
    """Top-level names under a prefix (empty when nothing is there)."""
    fs = loc.fs
    fs.invalidate_cache(loc.path)
    try:
        entries = fs.ls(loc.path, detail=False)
    except FileNotFoundError:
        return []
    base = loc.path.rstrip("/")
    return sorted({str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != base})


def remote_problem(target: Loc) -> str | None:
    """`run_folder_problem` for a prefix on a store."""
    names = _listing(target)
    if "run.json" not in names:
        return "it has no run.json"
    try:
        manifest: Any = json.loads((target / "run.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return "its run.json is not readable JSON"
    if not isinstance(manifest, dict) or not _is_ours(manifest):
        return "its run.json was not written by admf-dask"
    listed = manifest.get("outputs")
    allowed = set(listed) if _str_list(listed) else set(KNOWN_OUTPUTS)
    extra = [n for n in names if n not in allowed | _ALWAYS]
    if extra:
        shown = ", ".join(extra[:5]) + (f", ... ({len(extra)} in all)" if len(extra) > 5 else "")
        return f"it holds files the run did not write ({shown})"
    return None


def _remote_exists(target: Loc, where: str) -> bool:
    from admf_dask.dasktools.fs import store_error

    try:
        target.fs.invalidate_cache(target.path)
        if target.fs.isfile(target.path):
            raise ConfigError(
                where, f"'{target}' is an object, not a prefix", "choose another --out URL"
            )
        return bool(_listing(target))
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every store raises its own types
        raise store_error(exc, target, where, writing=True) from None


def check_remote_target(target: Loc, overwrite: bool, where: str = "output.path") -> None:
    """`check_target` for a URL: an existing prefix only with ``overwrite`` and only ours."""
    if not _remote_exists(target, where):
        return
    if not overwrite:
        raise ConfigError(
            where,
            f"'{target}' already exists",
            "choose another --out, delete it, or --set output.overwrite=true "
            "(which replaces only a previous run's folder)",
        )
    problem = remote_problem(target)
    if problem is not None:
        raise _refuse_overwrite(target, problem, where)


def remote_dir(target: Loc, run_id: str) -> Loc:
    """`remote_temp`, where the workers write a run to `target`; deleted by `discard_remote`
    (a failure, an interrupt) or by `commit_remote`."""
    tmp = remote_temp(target, run_id)
    _PENDING_REMOTE.add(tmp)
    return tmp


def stage_path(run_id: str) -> Path:
    """Local folder of a run to a URL: the client's own files (run.json, report.html, ...), or
    the whole run for ``memory://`` (in the temporary folder, ``TMPDIR``)."""
    import tempfile

    return Path(tempfile.gettempdir()).resolve() / f".admf-dask-stage-{run_id}"


def stage_dir(run_id: str) -> Path:
    """Create `stage_path` (removed after the upload, or by `discard`)."""
    tmp = stage_path(run_id)
    tmp.mkdir(parents=True)
    _PENDING.add(tmp)
    return tmp


def upload_remote(tmp: Path, target: Loc, run_id: str) -> Loc:
    """Upload the finished local `tmp`, all but its run.json, to `remote_temp` on the store."""
    staging = remote_temp(target, run_id)
    _PENDING_REMOTE.add(staging)
    files = sorted(p for p in tmp.rglob("*") if p.is_file() and p != tmp / "run.json")
    if files:
        rel = [p.relative_to(tmp).as_posix() for p in files]
        try:
            target.fs.put([str(p) for p in files], [(staging / r).path for r in rel])
        except BaseException:
            discard_remote(staging)
            raise
    return staging


def commit_remote(
    tmp: Path, staging: Loc, target: Loc, overwrite: bool, where: str = "output.path"
) -> None:
    """Commit an uploaded run (`upload_remote`) at `target`, then delete `staging`.

    An old run at `target` (only with ``overwrite``, only while it is still ours) loses its
    run.json before anything else, so a half-replaced prefix is never a run; the staging prefix
    is copied to `target` (server-side where the store can), run.json is written last.
    """
    fs = target.fs
    try:
        if _remote_exists(target, where):
            if not overwrite:  # appeared while we ran: never clobber
                raise ConfigError(
                    where, f"'{target}' appeared during the run", "choose another --out"
                )
            problem = remote_problem(target)
            if problem is not None:
                raise _refuse_overwrite(target, problem, where)
            (target / "run.json").rm()
            target.rm()
        fs.invalidate_cache(staging.path)
        src = sorted(fs.find(staging.path))
        if src:
            base = staging.path.rstrip("/") + "/"
            fs.copy(src, [(target / s[len(base) :]).path for s in src])
        (target / "run.json").write_bytes((tmp / "run.json").read_bytes())
    finally:
        discard_remote(staging)


#: temporary prefixes on stores not deleted yet (an interrupt's cleanup removes them)
_PENDING_REMOTE: set[Loc] = set()


def discard_remote(staging: Loc | None, timeout: float = 15.0) -> None:
    """Delete a run's temporary prefix on a store (absent: nothing to do).

    Like `discard`: workers still finishing a task may write under it while it is deleted, so
    the deletion is retried until the prefix stays empty for a moment (at most `timeout` s).
    """
    if staging is None or staging not in _PENDING_REMOTE:  # deleted already (committed)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            staging.rm()
            time.sleep(0.1)
            if not _listing(staging) or time.monotonic() > deadline:
                break
        except Exception:  # noqa: BLE001 - best effort: the prefix has no run.json either way
            break
    _PENDING_REMOTE.discard(staging)


@contextlib.contextmanager
def remote_edit(target: Loc, where: str) -> Iterator[Path]:
    """A local copy of a finished run on a store, committed back when the block succeeds.

    For the commands that rewrite a run folder in place (``admf-dask report``, ``research``):
    the run is copied into a staging folder, changed there, then committed like a new run
    (`upload_remote`, `commit_remote`: run.json last). A failure leaves the store as it was.
    """
    import secrets

    from admf_dask.dasktools.fs import store_error
    from admf_dask.errors import InputError

    try:
        problem = remote_problem(target)
    except Exception as exc:  # noqa: BLE001 - every store raises its own types
        raise store_error(exc, target, where, writing=False) from None
    if problem is not None:
        raise InputError(where, f"not a run ({problem})", "pass the prefix of a finished run")
    token = "edit-" + secrets.token_hex(4)
    tmp = stage_dir(token)
    try:
        fs = target.fs
        src = sorted(fs.find(target.path))
        base = target.path.rstrip("/") + "/"
        dst = [str(tmp / s[len(base) :]) for s in src]
        for d in dst:
            Path(d).parent.mkdir(parents=True, exist_ok=True)
        fs.get(src, dst)
        yield tmp
        staging = upload_remote(tmp, target, token)
        commit_remote(tmp, staging, target, True, where)
    finally:
        discard(tmp)
