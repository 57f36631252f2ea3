"""Can every worker see the run's local paths? Asked once, before any data is read.

Workers write the run folder's region writes and read the market data where it is computed
(docs/ARCHITECTURE.md, Dask rules), so a local path only works when every worker sees the same
file there. On a cluster of other machines (Kubernetes, a cloud cluster) it does not, and without
this check the run would fail deep inside the workers' writes, or read back NaN. `check_reachable`
asks every worker in one `client.run`:

* the output: the client writes a marker file ``.admf-reach-<run_id>`` with a random token in
  the nearest existing folder above the run folder (removed afterwards, whatever happens); each
  worker must read the same token there;
* the inputs the workers read: each worker must see the path with the client's kind, size and
  modification time (a folder: its number of entries).

URLs (``s3://...``) are not local paths: the object-store layer checks those. On a LocalCluster
the whole check is one round trip to the workers (a few milliseconds).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from admf_dask.errors import ConfigError

#: the marker file's name, followed by the run id
MARKER_PREFIX = ".admf-reach-"
#: seconds the workers have to answer (a worker compiling its kernels still answers: the
#: compile runs off its event loop, `admf_dask.cluster.plugin`)
TIMEOUT = 60.0
#: how many worker addresses the message lists
SHOWN = 3

#: data sources the workers open themselves (docs/ARCHITECTURE.md, Dask rules: data on the
#: workers); a CSV table is read by the client
WORKER_READ_SOURCES = ("parquet", "zarr")

FIX = "use a URL all workers can reach (s3://..., a shared filesystem) or run without --address"

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


def local_path(path: Any, base_dir: str | Path | None = None) -> Path | None:
    """The absolute local path `path` names, or None for a URL other than ``file://``.

    `path` is a path, a string, or a location object whose ``str`` is its URL; a relative path
    starts at `base_dir` (default: the working directory).
    """
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    m = _URL.match(text)
    if m is not None:
        if m.group(1).lower() not in ("file", "local"):
            return None
        text = text[m.end() :]
    p = Path(text).expanduser()
    return p if p.is_absolute() else Path(base_dir or Path.cwd()).absolute() / p


def worker_inputs(data: Any, base_dir: str | Path | None = None) -> dict[str, Path]:
    """The input files the workers read, by pipeline key, resolved like the data loader does.

    Only ``data.path`` of a Parquet or Zarr source: the workers open those where the data is
    computed (replayed Parquet signals: `replay_inputs`). A CSV table, the universe table, a
    replayed CSV and model files are read by the client (the fold-model cache checks its own folder, `admf_dask.cache.open_cache`).

    Parameters
    ----------
    data : DataConfig
        The pipeline's ``data`` section.
    base_dir : path, optional
        Folder relative paths start at (the pipeline file's folder); default the working dir.

    Returns
    -------
    dict
        ``{"data.path": Path}`` for a local path that exists on this machine (a missing one is the
        loader's error), else empty.
    """
    if getattr(data, "source", None) not in WORKER_READ_SOURCES or not data.path:
        return {}
    p = local_path(data.path, base_dir)  # relative to the pipeline file's folder
    return {"data.path": p} if p is not None and p.exists() else {}


def replay_inputs(strategies: Mapping[str, Any], base_dir: str | Path | None = None) -> dict:
    """Replayed Parquet signal files (``kind: signals``), by pipeline key: the workers read their
    row groups (`admf_dask.strategies.replay.signal_array`); a CSV one is read by the client.

    Returns
    -------
    dict
        ``{"strategies.<name>.path": Path}`` for each local Parquet file or folder that exists
        on this machine.
    """
    out: dict[str, Path] = {}
    for name, spec in (strategies or {}).items():
        spec = dict(spec) if isinstance(spec, Mapping) else {}
        if spec.get("kind") != "signals" or not spec.get("path"):
            continue
        p = local_path(spec["path"], base_dir)
        if p is not None and p.exists():
            if p.is_dir() or p.name.lower().endswith((".parquet", ".pq")):
                out[f"strategies.{name}.path"] = p
    return out


def check_reachable(
    client: Any,
    paths: Mapping[str, str | os.PathLike[str]],
    run_id: str,
    *,
    output: str | None = None,
    timeout: float = TIMEOUT,
) -> None:
    """Raise a one-line `ConfigError` unless every worker of `client` sees `paths` as we do.

    Parameters
    ----------
    client : distributed.Client
        The run's client.
    paths : mapping
        Pipeline key (``output.path``, ``--out``, ``data.path``) → local path or URL. URLs are
        skipped; so are inputs missing on this machine (the loader says so).
    run_id : str
        Names the marker file.
    output : str, optional
        The key in `paths` that is the run folder (to be created): checked with a marker file in
        its nearest existing parent folder. The other keys are inputs.
    timeout : float
        Seconds the workers have to answer.

    Raises
    ------
    ConfigError
        Some worker cannot see a path, or sees a different file there (the first such key in
        `paths` order, naming up to three workers), or the workers did not answer in time.
        Nothing was written then: the marker is gone.
    """
    out_path: Path | None = None
    inputs: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for where, raw in paths.items():
        p = local_path(raw)
        if p is None:
            continue
        if where == output:
            out_path = p
        else:
            sig = _signature(str(p))
            if sig is not None:
                inputs[where] = (str(p), sig)
    if out_path is None and not inputs:
        return
    with _marker(out_path, run_id, output) as (marker, token):
        answers = _ask(client, (marker, token, output, inputs), timeout)
    problems: dict[str, dict[str, list[str]]] = {}
    for addr, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            answer = {w: "error" for w in ([output] if marker else []) + list(inputs)}
        for where, problem in answer.items():
            problems.setdefault(where, {}).setdefault(problem, []).append(addr)
    for where in paths:
        if where not in problems:
            continue
        kind, addrs = next(iter(sorted(problems[where].items())))
        shown = ", ".join(addrs[:SHOWN]) + (f" ({len(addrs)} in all)" if len(addrs) > SHOWN else "")
        one = len(addrs) == 1
        who = f"worker {shown}" if one else f"workers {shown}"
        path = str(out_path) if where == output else inputs[where][0]
        if kind == "error":
            raise ConfigError(
                where,
                f"{who} could not check whether {'it sees' if one else 'they see'} {path} (is "
                "admf-dask the same version there?)",
                "install the same admf-dask on the workers, or run without --address",
            )
        if kind == "different":
            raise ConfigError(
                where,
                f"{who} {'sees' if one else 'see'} a different {path} than this machine (its "
                "size or modification time differ)",
                FIX,
            )
        raise ConfigError(
            where, f"{who} cannot see {path} (it is a local path on this machine)", FIX
        )


def _signature(path: str) -> tuple[Any, ...] | None:
    """What a worker must see at `path`: kind, size (a folder: its entries) and mtime (s)."""
    try:
        st = os.stat(path)
        if os.path.isdir(path):
            return ("dir", len(os.listdir(path)), int(st.st_mtime))
    except OSError:
        return None
    return ("file", st.st_size, int(st.st_mtime))


@contextlib.contextmanager
def _marker(out: Path | None, run_id: str, where: str | None):
    """The marker file (path, token) in the nearest existing folder above `out`; removed after."""
    if out is None:
        yield None, None
        return
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    marker = folder / f"{MARKER_PREFIX}{run_id}"
    token = secrets.token_hex(16)
    try:
        with open(marker, "x", encoding="ascii") as f:  # "x": never replaces anything
            f.write(token)
    except OSError as exc:
        raise ConfigError(
            where or "output.path",
            f"cannot write in '{folder}' ({exc.strerror or exc})",
            "choose another --out path",
        ) from exc
    try:
        yield str(marker), token
    finally:
        with contextlib.suppress(OSError):
            marker.unlink()


def _ask(client: Any, args: tuple[Any, ...], timeout: float) -> dict[str, Any]:
    """Every worker's answer (`_look`), or its exception; a ConfigError when they do not answer."""
    try:
        return client.sync(client._run, _look, *args, on_error="return", callback_timeout=timeout)
    except TimeoutError as exc:
        raise ConfigError(
            "cluster.address",
            f"the workers did not answer within {timeout:.0f} s (asked whether they see the "
            "run's files)",
            "check that the workers are running (their logs, the dashboard)",
        ) from exc


def _look(
    marker: str | None,
    token: str | None,
    output: str | None,
    inputs: dict[str, tuple[str, tuple[Any, ...]]],
) -> dict[str, str]:
    """On a worker: ``{key: "absent" | "different"}`` for each path it does not see as we do."""
    found: dict[str, str] = {}
    if marker is not None:
        try:
            with open(marker, encoding="ascii") as f:
                seen = f.read()
        except (OSError, UnicodeDecodeError):
            seen = None
        if seen != token:
            found[output or "output.path"] = "absent"
    for where, (path, sig) in inputs.items():
        mine = _signature(path)
        if mine != tuple(sig):
            found[where] = "absent" if mine is None else "different"
    return found


def check_run_paths(
    client: Any,
    cfg: Any,
    target: str | os.PathLike[str],
    where: str,
    base_dir: str | Path | None,
    run_id: str,
) -> None:
    """`check_reachable` for a run: its folder `target` (named `where`) and `worker_inputs`.

    Parameters
    ----------
    client : distributed.Client
        The run's client.
    cfg : PipelineConfig
        The run's pipeline (its ``data`` section is read).
    target : path or URL
        The run folder.
    where : str
        ``output.path`` or ``--out``: where the run folder was given.
    base_dir : path, optional
        The pipeline file's folder.
    run_id : str
        The run's id.
    """
    paths: dict[str, Any] = {where: target, **worker_inputs(cfg.data, base_dir)}
    paths.update(replay_inputs(getattr(cfg, "strategies", None) or {}, base_dir))
    check_reachable(client, paths, run_id, output=where)


def check_store_reach(client: Any, prefix: Any, where: str, shown: Any, timeout: float = TIMEOUT):
    """Raise a one-line `ConfigError` unless every worker may write under `prefix` on a store.

    A run to a URL is written by the workers straight to the store (docs/ARCHITECTURE.md,
    "Object stores"), so each worker writes and deletes a marker object under the run's
    temporary prefix (one `client.run`): a worker without the store's credentials or route to
    its endpoint is named before anything is computed.

    Parameters
    ----------
    client : distributed.Client
        The run's client.
    prefix : Loc
        The run's temporary prefix (carries the URL and ``storage_options``).
    where : str
        ``output.path`` or ``--out``.
    shown : Loc
        The run folder, named in the message.
    timeout : float
        Seconds the workers have to answer.
    """
    try:
        answers = client.sync(
            client._run, _write_marker, prefix, on_error="return", callback_timeout=timeout
        )
    except TimeoutError as exc:
        raise ConfigError(
            "cluster.address",
            f"the workers did not answer within {timeout:.0f} s (asked whether they can write "
            f"to {shown})",
            "check that the workers are running (their logs, the dashboard)",
        ) from exc
    failed = {
        addr: (f"{type(a).__name__}: {a}" if isinstance(a, BaseException) else a)
        for addr, a in sorted(answers.items())
        if a is not None
    }
    if not failed:
        return
    addrs = list(failed)
    names = ", ".join(addrs[:SHOWN]) + (f" ({len(addrs)} in all)" if len(addrs) > SHOWN else "")
    who = f"worker {names}" if len(addrs) == 1 else f"workers {names}"
    why = " ".join(str(failed[addrs[0]]).split())[:200]
    raise ConfigError(
        where,
        f"{who} cannot write to {shown} ({why}); the workers write the run to the store themselves",
        "give the workers the store's credentials (their environment, or "
        "output.storage_options) and a route to its endpoint",
    )


def _write_marker(prefix: Any) -> str | None:
    """On a worker: write and delete a marker object under `prefix`; None, or why it failed."""
    from admf_dask.dasktools.fs import store_error

    marker = prefix / f"{MARKER_PREFIX}{secrets.token_hex(8)}"
    try:
        marker.write_bytes(b"")
        marker.fs.rm_file(marker.path)
    except Exception as exc:  # noqa: BLE001 - every store raises its own types
        return store_error(exc, prefix, "", writing=True).what
    return None


#: seconds a TCP connect to the scheduler may take in `probe_scheduler`; a host that does not
#: answer in time is left to distributed's own connect timeout
PROBE_TIMEOUT = 2.0

#: schemes whose address is a TCP host:port
_TCP_SCHEMES = ("tcp", "tls", "ws", "wss")


def probe_scheduler(address: str, where: str = "cluster.address", timeout: float = PROBE_TIMEOUT):
    """Raise a one-line `ConfigError` at once when nothing listens at a scheduler's address.

    distributed's ``Client(address)`` retries a refused connection until its timeout (10 s for
    the session client) before it gives up; a short socket connect tells a refused port or an
    unknown host at once. A host that does not answer is not decided here (the client's timeout
    applies), nor is an address whose scheme is not TCP (``inproc://``, ``ucx://``).

    Parameters
    ----------
    address : str
        ``tcp://host:port`` (or ``host:port``), as `distributed.Client` takes it.
    where : str
        The key the message names (``cluster.address``).
    timeout : float
        Seconds the connect may take.

    Raises
    ------
    ConfigError
        The connection was refused, or the host name does not resolve.
    """
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, loc = parse_address(address)
        if scheme not in _TCP_SCHEMES:
            return
        host, port = parse_host_port(loc)
    except (ValueError, TypeError):
        return  # not ours to judge: distributed's own message
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except (ConnectionRefusedError, socket.gaierror) as exc:
        refused = isinstance(exc, ConnectionRefusedError)
        why = "connection refused: nothing listens there" if refused else "unknown host name"
        raise ConfigError(
            where,
            f"cannot reach a Dask scheduler at {address} ({why})",
            "start one with 'dask scheduler' or fix the address",
        ) from None
    except OSError:
        return  # a timeout or an unreachable network: the client's timeout decides
