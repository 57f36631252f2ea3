"""Research statistics over the portfolio grid (docs/RESEARCH.md).

Per-portfolio probabilistic and deflated Sharpe ratios (``psr``, ``dsr``), the probability of
backtest overfitting by combinatorially symmetric cross-validation (``pbo``) and walk-forward
selection of the best in-sample portfolio with its stitched out-of-sample path.
`research_stage` computes them from a ``results.zarr``; `write_research` adds them to a run
folder; ``admf_dask.pipeline.research.research`` recomputes them on a finished run.
"""

from __future__ import annotations

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
