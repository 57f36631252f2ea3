"""Fixtures of the report tests (run folders from `report_runs.make_run`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/browser.py, when run alone

from report_runs import make_run, market_path  # noqa: E402


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete small run: 12 portfolios (strategy × stop_loss), orders, signals, ML."""
    return make_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="session")
def bare_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run without orders, signals or ML (output.orders: false, traditional strategies)."""
    return make_run(tmp_path_factory.mktemp("bare") / "run", orders=False, ml=False, signals=False)


SHOWCASE_GRID = {
    "strategy": ["trend", "momentum", "ml"],
    "stop_loss": [None, 0.02, 0.05, 0.1, 0.2],
    # below 1/12 (position_weight of 12 symbols): at or above it they would be duplicates
    "max_position": [0.02, 0.04, 0.06, 0.08],
}


@pytest.fixture(scope="session")
def showcase_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 portfolios (3 × 5 × 4 grid), 5 years of bars, 12 symbols, orders and ML."""
    return make_run(
        tmp_path_factory.mktemp("showcase") / "run",
        grid=SHOWCASE_GRID,
        n_bars=1260,
        n_symbols=12,
        orders_per_portfolio=80,
        seed=11,
        name="showcase grid",
    )


@pytest.fixture(scope="session")
def showcase_report(showcase_run: Path) -> Path:
    """report.html of `showcase_run`, built once, with the fixture's close prices."""
    import xarray as xr

    from admf_dask.report import build_report

    return build_report(showcase_run, market_data=xr.open_zarr(market_path(showcase_run)))
