"""Helpers for the data-stage tests: small long tables written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

HEADER = "time,symbol,open,high,low,close,volume"
GOOD_ROWS = [
    "2020-01-02,AAA,10,11,9,10.5,100",
    "2020-01-02,BBB,20,21,19,20.5,200",
    "2020-01-03,AAA,10.5,12,10,11.5,150",
    "2020-01-03,BBB,20.5,21,20,20.25,250",
    "2020-01-06,AAA,11.5,12,11,11.75,120",
]


@pytest.fixture
def good_rows() -> list[str]:
    """Five valid bars of AAA and BBB (BBB has no bar on 2020-01-06)."""
    return list(GOOD_ROWS)


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write ``rows`` under ``header`` to ``tmp_path/name``; return the spec for it."""

    def write(rows: list[str], name: str = "prices.csv", header: str = HEADER) -> dict:
        (tmp_path / name).write_text("\n".join([header, *rows]) + "\n")
        return {"source": "csv", "path": name}

    return write
