"""Fixtures of the report tests (run folders from `report_runs.make_run`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/browser.py, when run alone

from report_runs import make_run  # noqa: E402


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete small run: 12 portfolios (strategy × stop_loss), orders, signals, ML."""
    return make_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="session")
def bare_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run without orders, signals or ML (output.orders: false, traditional strategies)."""
    return make_run(tmp_path_factory.mktemp("bare") / "run", orders=False, ml=False, signals=False)
