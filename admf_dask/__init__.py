"""admf-dask: backtest thousands of portfolios over shared features and ML signals on Dask.

>>> import admf_dask as ad
>>> result = ad.run(ad.load_pipeline("pipelines/quickstart.yaml"))  # doctest: +SKIP
>>> result.metrics.sort_values("sharpe").tail()                     # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "__version__",
    "compute_features",
    "load_market_data",
    "load_pipeline",
    "open_run",
    "research",
    "run",
]

from admf_dask._lazy import lazy_getattr
from admf_dask.errors import InputError

# imported on first use: `import admf_dask.cli` stays light (see admf_dask/_lazy.py)
__getattr__ = lazy_getattr(
    __name__,
    {
        "load_pipeline": "admf_dask.config",
        "open_run": "admf_dask.pipeline",
        "research": "admf_dask.pipeline.research",
        "run": "admf_dask.pipeline",
    },
)


def load_market_data(spec: Any, *, base_dir: Any = None):
    """Market data as an xarray Dataset (time × symbol); see `admf_dask.data.load_market_data`."""
    from admf_dask.data import load_market_data as _load

    return _load(spec, base_dir=base_dir)


def compute_features(data: Any, specs: Any):
    """Feature Dataset (lazy) for ``{name: {kind, params}}``; see `admf_dask.features`."""
    from admf_dask.features import compute_features as _compute
    from admf_dask.features import validate_feature_spec

    specs = {name: validate_feature_spec(name, dict(spec)) for name, spec in dict(specs).items()}
    return _compute(data, specs)


class _CallableResearch(types.ModuleType):
    """The research stage package, callable as `admf_dask.pipeline.research.research`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from admf_dask.pipeline.research import research

        return research(*args, **kwargs)


class _Package(types.ModuleType):
    """This package: importing its ``research`` stage package makes that the attribute
    ``research``, which is also the documented call ``ad.research(run_dir, overrides)``
    (README); the package is made callable so both keep working."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "research" and type(value) is types.ModuleType:
            value.__class__ = _CallableResearch
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
