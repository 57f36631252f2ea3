"""Replayed signal files read their text times with one format per column, like market data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admf_dask.errors import DataError
from admf_dask.features import compute_features
from admf_dask.strategies import StrategyContext, compute_signals


def _signals(market, tmp_path, **extra):
    ctx = StrategyContext(base_dir=tmp_path)
    spec = {"kind": "signals", "path": "sig.csv", **extra}
    sig = compute_signals(market, compute_features(market, {}), {"rep": spec}, ctx)
    return sig.sel(strategy="rep").values


def _write(tmp_path, times: list[str]) -> None:
    rows = [f"{t},T0,1" for t in times]
    (tmp_path / "sig.csv").write_text("\n".join(["date,symbol,signal", *rows]) + "\n")


def test_day_first_times_land_on_their_bars(market, tmp_path):
    t = pd.DatetimeIndex(market.time.values)
    picks = [i for i in range(len(t)) if t[i].day <= 12][:3] + [
        i for i in range(len(t)) if t[i].day > 12
    ][:1]
    _write(tmp_path, [t[i].strftime("%d/%m/%Y") for i in picks])
    got = _signals(market, tmp_path)
    assert sorted(np.flatnonzero(got[:, 0])) == sorted(picks)


def test_ambiguous_times_ask_for_the_strategy_date_format(market, tmp_path):
    t = pd.DatetimeIndex(market.time.values)
    picks = [i for i in range(len(t)) if t[i].day <= 12 and t[i].day != t[i].month][:3]
    _write(tmp_path, [t[i].strftime("%d/%m/%Y") for i in picks])
    with pytest.raises(DataError) as info:
        _signals(market, tmp_path)
    assert info.value.line.startswith("sig.csv row 1: dates are ambiguous"), info.value.line
    assert "strategies.rep.date_format" in info.value.line
    got = _signals(market, tmp_path, date_format="%d/%m/%Y")
    assert sorted(np.flatnonzero(got[:, 0])) == picks


def test_mixed_formats_name_the_row(market, tmp_path):
    _write(tmp_path, ["13/01/2015", "15/01/2015", "2015-01-14"])
    with pytest.raises(DataError, match=r"^sig.csv row 3: unparseable time '2015-01-14'"):
        _signals(market, tmp_path)
    _write(tmp_path, ["13/01/2015"])
    with pytest.raises(DataError, match=r"row 1: time '13/01/2015' does not match strategies"):
        _signals(market, tmp_path, date_format="%m/%d/%Y")
