"""Adding the research outputs to a run folder without ever leaving it half written.

The new variables (``psr``, ``dsr``, ``wfo_equity``) are written into a temporary Zarr store
beside ``results.zarr``; then each variable's folder is renamed into place (the one it replaces
first moved aside) and the store's consolidated metadata, which is what readers open, is
replaced by one atomic rename. A failure before that last rename leaves the old metadata, so
readers see the old state; the temporary store is removed either way. ``research.json`` is
written to a temporary file and renamed.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from admf_dask.dasktools.files import atomic_write_bytes
from admf_dask.dasktools.fs import Loc, zarr_target
from admf_dask.research.stage import ResearchResult

#: the variables the research stage owns in results.zarr
VARIABLES = ("psr", "dsr", "wfo_equity")

_DOC = {
    "psr": "probabilistic Sharpe ratio PSR(0) of the per-bar Sharpe ratio (docs/RESEARCH.md)",
    "dsr": "deflated Sharpe ratio PSR(SR0), SR0 the expected maximum SR of the grid's trials",
    "wfo_equity": "walk-forward equity: the stitched out-of-sample path, NaN before it starts",
}


def write_research(
    run_dir: str | Path, result: ResearchResult, results: Path | Loc | None = None
) -> list[str]:
    """Write ``psr``, ``dsr`` (and ``wfo_equity``) into ``run_dir/results.zarr`` and
    ``run_dir/research.json``.

    Parameters
    ----------
    run_dir : str or Path
        A run folder (finished, or the temporary folder of a run being written).
    result : ResearchResult
        From `admf_dask.research.research_stage`.
    results : Path or Loc, optional
        The run's results.zarr when not in `run_dir` (a run being written to a store: under
        its temporary prefix).

    Returns
    -------
    list of str
        The top-level names written (``["research.json"]``), for run.json's ``outputs``.
    """
    run_dir = Path(run_dir)
    new: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        "psr": (("portfolio",), result.psr),
        "dsr": (("portfolio",), result.dsr),
    }
    if result.wfo_equity is not None:
        new["wfo_equity"] = (("time",), result.wfo_equity)
    store = run_dir / "results.zarr" if results is None else results
    replace_variables(store, new, drop=[v for v in VARIABLES if v not in new])
    write_json_atomic(run_dir / "research.json", result.summary)
    return ["research.json"]


def write_json_atomic(path: Path, obj: Any) -> None:
    """JSON (NaN/inf as null) to a temporary sibling, renamed over ``path``."""
    atomic_write_bytes(path, (_dumps(_clean(obj)) + "\n").encode())


_NUMBERS = {int, float, type(None)}


def _dumps(obj: Any) -> str:
    """Indented JSON whose lists of numbers are each written on one line.

    The PBO and walk-forward lists hold tens of thousands of numbers: one per line, they were
    most of the file, and the indenting encoder (pure Python) took a tenth of a second on them;
    the compact one is C. The values are the same either way.
    """
    lists: list[str] = []
    tag = secrets.token_hex(8)  # a placeholder no string of the summary can hold by chance

    def mark(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: mark(v) for k, v in o.items()}
        if isinstance(o, list):
            if o and set(map(type, o)) <= _NUMBERS:  # C loops: the lists are long
                lists.append(json.dumps(o))
                return f"{tag}:{len(lists) - 1}"
            return [mark(v) for v in o]
        return o

    text = json.dumps(mark(obj), indent=1)
    if not lists:
        return text
    return re.sub(f'"{tag}:(\\d+)"', lambda m: lists[int(m.group(1))], text)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become null, numpy scalars Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        # plain floats and ints inline: the PBO lists hold tens of thousands of them
        return [
            v
            if type(v) is int or (type(v) is float and math.isfinite(v))
            else (None if type(v) is float else _clean(v))
            for v in obj
        ]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def replace_variables(
    store: Path | Loc,
    new: dict[str, tuple[tuple[str, ...], np.ndarray]],
    drop: list[str] | tuple[str, ...] = (),
) -> None:
    """Add or replace variables of a Zarr v3 store (and remove those in ``drop``), the
    consolidated metadata switched last, in one rename.

    A `Loc` on an object store is the results.zarr of a run being written (under its temporary
    prefix, which no reader opens before the commit): there is no rename, the variables are
    written in place and the metadata consolidated again.
    """
    import xarray as xr
    from zarr.codecs import BloscCodec

    if isinstance(store, Loc) and not store.is_local:
        _write_variables_in_place(store, new, drop)
        return
    store = Path(str(store))
    root_meta = json.loads((store / "zarr.json").read_text(encoding="utf-8"))
    tmp = store.parent / f".{store.name}.research-{secrets.token_hex(4)}"
    try:
        ds = xr.Dataset(
            {
                k: (dims, np.asarray(v, dtype=np.float64), {"description": _DOC.get(k, k)})
                for k, (dims, v) in new.items()
            }
        )
        fast = [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")]
        enc = {k: {"compressors": fast, "fill_value": np.nan} for k in new}
        ds.to_zarr(tmp / "new.zarr", mode="w", zarr_format=3, consolidated=False, encoding=enc)
        aside = tmp / "old"
        aside.mkdir()
        metas = {}
        for name in new:
            metas[name] = json.loads((tmp / "new.zarr" / name / "zarr.json").read_text("utf-8"))
        consolidated = root_meta.get("consolidated_metadata")
        if isinstance(consolidated, dict) and isinstance(consolidated.get("metadata"), dict):
            for name in drop:
                consolidated["metadata"].pop(name, None)
            consolidated["metadata"].update(metas)
        (tmp / "zarr.json").write_text(json.dumps(root_meta, indent=2), encoding="utf-8")
        for name in [*new, *drop]:
            if (store / name).exists():
                os.replace(store / name, aside / name)
        for name in new:
            os.replace(tmp / "new.zarr" / name, store / name)
        os.replace(tmp / "zarr.json", store / "zarr.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _variables(new: dict[str, tuple[tuple[str, ...], np.ndarray]]):
    """The new variables as a Dataset and their encoding (as `replace_variables` writes them)."""
    import xarray as xr
    from zarr.codecs import BloscCodec

    ds = xr.Dataset(
        {
            k: (dims, np.asarray(v, dtype=np.float64), {"description": _DOC.get(k, k)})
            for k, (dims, v) in new.items()
        }
    )
    fast = [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")]
    return ds, {k: {"compressors": fast, "fill_value": np.nan} for k in new}


def _write_variables_in_place(
    store: Loc, new: dict[str, tuple[tuple[str, ...], np.ndarray]], drop
) -> None:
    """`replace_variables` on a store prefix no reader sees yet (a run's temporary prefix): the
    variables are written beside the store, copied in (a store has no rename), and the root's
    consolidated metadata updated as the local path does (the same variable order)."""
    root_meta = json.loads((store / "zarr.json").read_text())
    tmp = store.parent / f".{store.name}.research-{secrets.token_hex(4)}"
    try:
        ds, enc = _variables(new)
        made = tmp / "new.zarr"
        ds.to_zarr(zarr_target(made), mode="w", zarr_format=3, consolidated=False, encoding=enc)
        metas = {name: json.loads((made / name / "zarr.json").read_text()) for name in new}
        consolidated = root_meta.get("consolidated_metadata")
        if isinstance(consolidated, dict) and isinstance(consolidated.get("metadata"), dict):
            for name in drop:
                consolidated["metadata"].pop(name, None)
            consolidated["metadata"].update(metas)
        fs = store.fs
        for name in [*new, *drop]:
            (store / name).rm()
        for name in new:
            src = sorted(fs.find((made / name).path))
            base = (made / name).path.rstrip("/") + "/"
            fs.copy(src, [(store / name / s[len(base) :]).path for s in src])
        (store / "zarr.json").write_bytes(json.dumps(root_meta, indent=2).encode())
    finally:
        tmp.rm()
