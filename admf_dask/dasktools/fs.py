"""Locations that are local paths or fsspec URLs (``s3://``, ``gs://``, ``memory://``, ...).

`resolve` turns what the user wrote (``data.path``, ``output.path``, ``--out``) into a `Loc`:
a local path stays a path (every local code path is unchanged), a URL keeps its filesystem and
``storage_options``. A `Loc` is plain data, so it pickles into task graphs; the fsspec
filesystem is rebuilt (and cached by fsspec) where it is used. `probe` checks, before anything
is computed, that the bucket exists and the credentials may write there. docs/ARCHITECTURE.md
("Object stores") says how a run folder is committed on a store.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from admf_dask.errors import ConfigError, DataError, InputError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: credentials each store reads from the environment, for the "refused" message
_CRED_HINT = {
    "s3": "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
    "s3a": "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
    "gs": "set GOOGLE_APPLICATION_CREDENTIALS",
    "gcs": "set GOOGLE_APPLICATION_CREDENTIALS",
    "az": "set AZURE_STORAGE_CONNECTION_STRING (or the account name and key)",
    "abfs": "set AZURE_STORAGE_CONNECTION_STRING (or the account name and key)",
}


def scheme_of(text: str | os.PathLike[str]) -> str | None:
    """The URL scheme of `text` (``"s3"``), or None for a local path (``file://`` included)."""
    m = _SCHEME.match(str(text))
    if m is None:
        return None
    s = m.group(1).lower()
    return None if s in ("file", "local") else s


def local_path(text: str | os.PathLike[str]) -> str:
    """A local path or ``file://`` / ``local://`` URL as a plain path (``file:///abs/x`` →
    ``/abs/x``); anything else unchanged."""
    raw = str(text)
    if scheme_of(raw) is None and _SCHEME.match(raw):
        return raw.split("://", 1)[1]
    return raw


def is_url(text: str | os.PathLike[str] | Loc) -> bool:
    """True for a non-local fsspec URL (a local path or ``file://`` is not one)."""
    if isinstance(text, Loc):
        return not text.is_local
    return scheme_of(text) is not None


@dataclass(frozen=True)
class Loc:
    """A folder or file on a filesystem: a local path or an fsspec URL.

    Attributes
    ----------
    url : str
        ``s3://bucket/runs/x`` or an absolute local path.
    storage_options : dict
        Keyword arguments of the fsspec filesystem (``endpoint_url``, ``key``, ...); empty:
        credentials from the environment.
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def scheme(self) -> str | None:
        return scheme_of(self.url)

    @property
    def is_local(self) -> bool:
        return self.scheme is None

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (fsspec caches instances per options)."""
        import fsspec

        return fsspec.filesystem(self.scheme or "file", **self.storage_options)

    @property
    def path(self) -> str:
        """The path inside the filesystem (``bucket/runs/x``)."""
        if self.is_local:
            return self.url
        return self.fs._strip_protocol(self.url)

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Loc:
        head = self.url.rstrip("/").rsplit("/", 1)[0]
        return Loc(head, self.storage_options)

    def __truediv__(self, name: str) -> Loc:
        return Loc(self.url.rstrip("/") + "/" + str(name).strip("/"), self.storage_options)

    def __str__(self) -> str:
        return self.url

    def local_path(self) -> Path:
        """The `pathlib.Path` of a local location."""
        if not self.is_local:
            raise ValueError(f"{self.url} is not a local path")
        return Path(self.url)

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.path))

    def open(self, mode: str = "rb", **kwargs: Any) -> Any:
        return self.fs.open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        return bytes(self.fs.cat_file(self.path))

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        self.fs.pipe_file(self.path, data)

    def mapper(self) -> Any:
        """A zarr store of this location (``xr.open_zarr(loc.mapper())``)."""
        return self.fs.get_mapper(self.path)

    def rm(self) -> None:
        """Remove this location and everything under it (absent: nothing to do)."""
        try:
            self.fs.rm(self.path, recursive=True)
        except FileNotFoundError:
            pass


def resolve(
    text: str | os.PathLike[str] | Loc,
    storage_options: dict[str, Any] | None = None,
    base_dir: str | Path | None = None,
    where: str = "output.path",
) -> Loc:
    """`text` as a `Loc`: a URL keeps its scheme, a local path is made absolute.

    Parameters
    ----------
    text : str, path or Loc
        ``s3://bucket/x``, ``file:///abs/x``, ``~/x`` or a relative path.
    storage_options : dict, optional
        Options of the URL's filesystem (ignored for local paths).
    base_dir : path, optional
        What a relative local path is relative to (default: the current directory).
    where : str
        The setting, for error messages.

    Returns
    -------
    Loc

    Raises
    ------
    ConfigError
        An unknown scheme, or one whose filesystem package is not installed (named).
    """
    if isinstance(text, Loc):
        return text
    raw = str(text)
    scheme = scheme_of(raw)
    if scheme is None:
        p = Path(local_path(raw)).expanduser()
        if not p.is_absolute():
            p = Path(base_dir or Path.cwd()) / p
        return Loc(str(p.resolve()))
    filesystem_class(scheme, raw, where)
    return Loc(raw, dict(storage_options or {}))


def filesystem_class(scheme: str, url: str, where: str) -> Any:
    """The fsspec class of `scheme`, or a one-line ConfigError naming the package to install."""
    import fsspec
    from fsspec.registry import known_implementations, registry

    if scheme not in known_implementations and scheme not in registry:
        from admf_dask.errors import did_you_mean

        common = ("s3", "gs", "az", "abfs", "memory", "file", "http", "https")
        raise ConfigError(
            where,
            f"'{url}' has an unknown URL scheme '{scheme}://'{did_you_mean(scheme, common)}",
            "use a local path or an fsspec URL such as s3://bucket/prefix",
        )
    try:
        return fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        hint = known_implementations.get(scheme, {}).get("err") or str(exc)
        m = re.search(r"[Ii]nstall\s+([A-Za-z0-9_.\-\[\]]+)", hint)
        package = m.group(1) if m else None
        raise ConfigError(
            where,
            f"'{url}' needs a filesystem for '{scheme}://' that is not installed",
            f"pip install {package}" if package else hint.rstrip("."),
        ) from None


def bucket_of(loc: Loc) -> str:
    """The first path component of a URL (the bucket or container)."""
    return loc.path.strip("/").split("/", 1)[0]


def _cred_fix(loc: Loc, setting: str) -> str:
    hint = _CRED_HINT.get(loc.scheme or "", "give the store's credentials")
    return f"{hint}, or {setting.split('.')[0]}.storage_options"


def store_error(exc: BaseException, loc: Loc, where: str, *, writing: bool) -> InputError:
    """A filesystem exception on `loc` as one line: missing bucket, refused credentials, ..."""
    cls = ConfigError if writing else DataError
    fix_path = f"fix {where}" if where else "fix the URL"
    text = " ".join(str(exc).split()) or type(exc).__name__
    bucket = bucket_of(loc)
    if isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
        return cls(
            where,
            f"bucket '{bucket}' does not exist at {loc.url}",
            f"create it or {fix_path}",
        )
    if isinstance(exc, PermissionError) or _looks_denied(text):
        return cls(
            where,
            f"credentials refused by {loc.url} ({text[:160]})",
            _cred_fix(loc, where or "output.path"),
        )
    if isinstance(exc, FileNotFoundError):
        return cls(where, f"'{loc.url}' does not exist", f"check the URL or {fix_path}")
    return cls(
        where,
        f"cannot reach {loc.url} ({type(exc).__name__}: {text[:160]})",
        "check the URL, the endpoint (storage_options) and the network",
    )


def _looks_denied(text: str) -> bool:
    low = text.lower()
    return any(
        k in low
        for k in (
            "accessdenied",
            "access denied",
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "forbidden",
            "unable to locate credentials",
            "nocredentials",
            "expiredtoken",
        )
    )


def probe(loc: Loc, where: str = "output.path", shown: Loc | None = None) -> None:
    """Check that a run can be written at `loc` before anything is computed.

    On a URL: writes and deletes a marker object under `loc` (the bucket must exist and the
    credentials may write); a local location is left to the run folder checks.

    `shown` is the location named in messages (the run folder, when `loc` is its temporary
    prefix).

    Raises
    ------
    ConfigError
        One line: the bucket does not exist, the credentials were refused, the store is
        unreachable.
    """
    if loc.is_local:
        return
    marker = loc / f".admf-dask-probe-{secrets.token_hex(4)}"
    try:
        marker.write_bytes(b"")
        marker.fs.rm_file(marker.path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - every store raises its own types
        raise store_error(exc, shown or loc, where, writing=True) from None


def check_readable(loc: Loc, label: str, where: str = "data.path") -> None:
    """A URL input exists and may be read (one-line DataError otherwise)."""
    try:
        found = loc.exists()
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, loc, where, writing=False) from None
    if not found:
        try:  # a missing bucket reads as "nothing there": say which
            loc.fs.ls(bucket_of(loc))
        except Exception as exc:  # noqa: BLE001
            raise store_error(
                exc, Loc(loc.url, loc.storage_options), where, writing=False
            ) from None
        raise DataError(where, f"'{label}' does not exist (looked for {loc.url})", "check the URL")


_SECRET = re.compile(r"key|secret|token|password|credential|sas|signature", re.IGNORECASE)


def redact(options: Any) -> Any:
    """`storage_options` for run.json: values of secret-looking keys replaced by ``"***"``."""
    if isinstance(options, dict):
        return {
            k: ("***" if _SECRET.search(str(k)) and not isinstance(v, dict) else redact(v))
            for k, v in options.items()
        }
    return options


def refuse_process_local(text: str | os.PathLike[str], where: str) -> None:
    """``memory://`` outlives no process: refused where the process ends with the command."""
    if scheme_of(text) == "memory":
        raise ConfigError(
            where,
            f"'{text}' is in this process's memory only and is gone when the command exits",
            "use a local folder or an object store URL (memory:// works from Python: ad.run)",
        )


_INPUT_COPIES: list[Any] = []  # temporary folders of downloaded inputs, removed at exit


def stage_input(
    url: str, storage_options: dict[str, Any] | None, *, keep_remote: bool, where: str = "data.path"
) -> Loc | Path:
    """A ``data.path`` URL as the readers take it.

    A Zarr store or a Parquet table (`keep_remote`) stays a `Loc`: the tasks read its chunks or
    row groups from the store (workers on other machines too). A CSV is copied into a local
    temporary folder once and its local path returned: the client reads it (a cluster given by
    ``cluster.address`` gets its values from the client; a local cluster may convert it into the
    disk cache, which its workers see).
    """
    import tempfile

    loc = resolve(url, storage_options, where=where)
    check_readable(loc, url, where)
    if keep_remote:
        return loc
    folder = tempfile.TemporaryDirectory(prefix="admf-dask-input-")
    _INPUT_COPIES.append(folder)
    local = Path(folder.name) / (loc.name or "data")
    try:
        loc.fs.get(loc.path, str(local), recursive=loc.is_dir())
    except Exception as exc:  # noqa: BLE001 - every store raises its own types
        raise store_error(exc, loc, where, writing=False) from None
    return local


# ------------------------------------------------------------------ writes that take either
# The portfolio tasks, the research stage and the signals write into the run folder, which is a
# local path or, for a run to a store, its temporary prefix (a `Loc`: the workers write straight
# to the store, docs/ARCHITECTURE.md "Object stores"). These take either; a local path keeps its
# plain path code.


def direct_writes(loc: Loc) -> bool:
    """True when workers write a run to `loc` directly (a URL other processes can reach).

    ``memory://`` lives in one process only: a run there is computed in a local staging folder
    and uploaded (the workers are other processes).
    """
    return not loc.is_local and loc.scheme != "memory"


def join(base: str | os.PathLike[str] | Loc, name: str) -> str | Loc:
    """``base/name``: a `Loc` under a `Loc`, else a plain path string."""
    if isinstance(base, Loc):
        return base / name
    return os.path.join(base, name)


def zarr_target(where: Any, read_only: bool = False) -> Any:
    """What zarr / xarray take as a store: a path as given, or an fsspec store of a URL."""
    if isinstance(where, Loc) and not where.is_local:
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(
            where.url, storage_options=where.storage_options or None, read_only=read_only
        )
    return str(where) if isinstance(where, Loc) else where


def arrow_target(where: str | os.PathLike[str] | Loc) -> tuple[str, Any]:
    """``(path, filesystem)`` for pyarrow's ``write_table`` / ``dataset``: None for a local path."""
    if isinstance(where, Loc) and not where.is_local:
        return where.path, where.fs
    return os.fspath(str(where) if isinstance(where, Loc) else where), None


def remove_tree(where: str | os.PathLike[str] | Loc) -> None:
    """Remove a folder or prefix and everything under it (absent: nothing to do)."""
    if isinstance(where, Loc) and not where.is_local:
        where.rm()
        return
    import shutil

    shutil.rmtree(str(where), ignore_errors=True)
