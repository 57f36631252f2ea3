"""Research statistics over the portfolio grid (docs/RESEARCH.md).

Per-portfolio probabilistic and deflated Sharpe ratios (``psr``, ``dsr``), the probability of
backtest overfitting by combinatorially symmetric cross-validation (``pbo``) and walk-forward
selection of the best in-sample portfolio with its stitched out-of-sample path.
`research_stage` computes them from a ``results.zarr``; `write_research` adds them to a run
folder; ``admf_dask.pipeline.research.research`` recomputes them on a finished run.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from admf_dask._lazy import lazy_getattr

__all__ = [
    "ResearchConfig",
    "ResearchResult",
    "WalkForwardConfig",
    "check_research",
    "research_stage",
    "walk_forward_windows",
    "write_research",
]

__getattr__ = lazy_getattr(
    __name__,
    {
        "ResearchConfig": "admf_dask.research.config",
        "WalkForwardConfig": "admf_dask.research.config",
        "check_research": "admf_dask.research.config",
        "ResearchResult": "admf_dask.research.stage",
        "research_stage": "admf_dask.research.stage",
        "walk_forward_windows": "admf_dask.research.stage",
        "write_research": "admf_dask.research.write",
    },
)


class _ResearchPackage(types.ModuleType):
    """This package, callable as `admf_dask.pipeline.research.research`.

    Importing it makes it the attribute ``research`` of ``admf_dask``, which is also the
    documented call ``ad.research(run_dir, overrides)`` (README): both are kept working.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from admf_dask.pipeline.research import research

        return research(*args, **kwargs)


sys.modules[__name__].__class__ = _ResearchPackage
