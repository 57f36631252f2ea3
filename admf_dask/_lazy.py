"""Package attributes imported on first use (PEP 562), so that importing a package is cheap.

`import admf_dask.cli` must not load pydantic, dask and numba before the CLI's signal handlers are
in place (docs/ARCHITECTURE.md, Interrupts).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[attr]`` (a module path) on first access."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        namespace[name] = value  # later lookups skip this function
        return value

    return __getattr__


class LazyModule:
    """Module `name`, imported on first attribute access: a kernels module (numba, about half a
    CPU-second) stays out of the processes that only validate a pipeline or read its results from
    the disk cache (the ``admf-dask`` command on a cache hit, docs/ARCHITECTURE.md)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)
