"""run.json: what ran, on what, with which data and code, and how long each stage took."""

from __future__ import annotations

import json
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "admf-dask",
    "dask",
    "distributed",
    "numpy",
    "pandas",
    "xarray",
    "zarr",
    "pyarrow",
    "numba",
    "xgboost",
    "torch",
    "bokeh",
    "pydantic",
)


def versions() -> dict[str, str]:
    """Python and package versions (read from metadata: importing torch just for this is slow)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write run.json (pretty, top-level order as given), atomically: a reader never sees half."""
    from admf_dask.dasktools.files import atomic_write_bytes

    atomic_write_bytes(Path(path), (json.dumps(_clean(manifest), indent=2) + "\n").encode())


def read_manifest(path: Path) -> dict[str, Any]:
    """Read run.json."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
