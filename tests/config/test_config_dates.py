"""Dates in a pipeline: unquoted YAML dates and datetimes, --set dates, one-line errors."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from _cli import main

from admf_dask.config import config_hash, load_pipeline
from admf_dask.errors import ConfigError

PIPELINE = """\
name: dated
data:
  source: synthetic
  symbols: 3
  bars: 300
  calendar_start: {calendar_start}
  start: {start}
  end: {end}
features:
  sma_5: {{kind: sma, window: 5}}
  sma_20: {{kind: sma, window: 20}}
strategies:
  trend: {{kind: ma_crossover, fast: sma_5, slow: sma_20}}
"""


def _pipeline(tmp_path: Path, name: str = "p.yaml", **dates: str) -> Path:
    values = {"calendar_start": "2010-01-04", "start": "2010-02-01", "end": "2010-06-30"}
    path = tmp_path / name
    path.write_text(PIPELINE.format(**{**values, **dates}))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``admf-dask ARGS`` in-process (tests/_cli.py)."""
    return main(*args)


def test_unquoted_dates_load_as_iso_text_with_a_stable_hash(tmp_path):
    cfg = load_pipeline(_pipeline(tmp_path, end="2010-06-30 16:00:00"))
    assert (cfg.data.calendar_start, cfg.data.start) == ("2010-01-04", "2010-02-01")
    assert cfg.data.end == "2010-06-30T16:00:00"
    quoted = _pipeline(
        tmp_path,
        "q.yaml",
        calendar_start="'2010-01-04'",
        start="'2010-02-01'",
        end="'2010-06-30T16:00:00'",
    )
    assert config_hash(cfg) == config_hash(load_pipeline(quoted))
    api = {
        "data": {"start": dt.date(2010, 2, 1), "end": dt.datetime(2010, 6, 30, 16)},
        "strategies": {"t": {"kind": "ma_crossover", "fast": "f", "slow": "s"}},
        "features": {"f": {"kind": "sma", "window": 5}, "s": {"kind": "sma", "window": 20}},
    }
    api_cfg = load_pipeline(api)
    assert (api_cfg.data.start, api_cfg.data.end) == ("2010-02-01", "2010-06-30T16:00:00")


def test_validate_with_unquoted_dates_and_set(tmp_path):
    p = _pipeline(tmp_path)
    proc = _cli("validate", str(p), "--set", "data.start=2010-03-01")
    assert proc.returncode == 0, proc.stderr
    assert "2010-03-01 to 2010-06-30" in proc.stdout
    assert load_pipeline(p, ["data.start=2010-03-01"]).data.start == "2010-03-01"
    proc = _cli("validate", str(p), "--set", "data.end=someday")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("error: data.end: 'someday' is not a date"), lines[0]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("2010-13-01", "data.start: '2010-13-01' is not a date"),
        ("01/02/2010", "data.start: '01/02/2010' is not a date"),  # not ISO: ambiguous
        ("5", "data.start: expected a date such as 2005-01-01, got 5"),
        ("[2010-01-01]", "data.start: expected a date"),
    ],
)
def test_bad_dates_are_one_line_errors(tmp_path, value, needle):
    with pytest.raises(ConfigError) as info:
        load_pipeline(_pipeline(tmp_path, start=value))
    assert info.value.line.startswith(needle), info.value.line
    assert "\n" not in info.value.line
    with pytest.raises(ConfigError) as info:  # the same through --set
        load_pipeline(_pipeline(tmp_path), [f"data.start={value}"])
    assert info.value.line.startswith(needle), info.value.line
