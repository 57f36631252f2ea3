"""The `signals` kind: replaying a long table, and its one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admf_dask.errors import ConfigError, DataError
from admf_dask.features import compute_features
from admf_dask.strategies import StrategyContext, compute_signals


def _signals(market, tmp_path, name="sig.csv", strict=False, ctx=None):
    ctx = ctx or StrategyContext(base_dir=tmp_path, strict=strict)
    feats = compute_features(market, {})
    sig = compute_signals(market, feats, {"rep": {"kind": "signals", "path": name}}, ctx)
    return sig.sel(strategy="rep").values


def _write(df: pd.DataFrame, path) -> None:
    if str(path).endswith(".parquet"):
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)


@pytest.mark.parametrize("name", ["sig.csv", "sig.parquet"])
def test_replay_aligns_and_fills_zero(market, tmp_path, name):
    t = market.time.values
    df = pd.DataFrame(
        {"Date": [t[3], t[3], t[10]], "Ticker": ["T0", "T4", "T2"], "SIGNAL": [0.5, -1.0, 1.0]}
    )
    if name.endswith(".csv"):
        df["Date"] = pd.DatetimeIndex(df["Date"]).strftime("%Y-%m-%d")
    _write(df, tmp_path / name)
    got = _signals(market, tmp_path, name)
    expected = np.zeros(got.shape)
    expected[3, 0], expected[3, 4], expected[10, 2] = 0.5, -1.0, 1.0
    np.testing.assert_array_equal(got, expected)


def test_rows_off_the_bars_warn_or_fail_when_strict(market, tmp_path):
    t = pd.DatetimeIndex(market.time.values)
    df = pd.DataFrame(
        {
            "time": [t[0] - pd.Timedelta(days=30), t[5], t[5] + pd.Timedelta(hours=3)],
            "symbol": ["T0", "T0", "T1"],
            "signal": [1, 1, 1],
        }
    )
    _write(df, tmp_path / "s.parquet")
    ctx = StrategyContext(base_dir=tmp_path)
    got = _signals(market, tmp_path, "s.parquet", ctx=ctx)
    assert got[5, 0] == 1 and got.sum() == 1
    assert len(ctx.warnings) == 1 and "not bars" in ctx.warnings[0]
    with pytest.raises(DataError, match=r"s.parquet row 3: time .* is not a bar"):
        _signals(market, tmp_path, "s.parquet", strict=True)


BAD = [
    ("time,symbol,sig\n2015-01-01,T0,1\n", "sig.csv: no 'signal' column"),
    (
        "time,symbol,signal\n2015-01-01,T0,1\n2015-01-02,T0,1.5\n",
        "sig.csv row 2: signal 1.5 is outside [-1, 1]",
    ),
    ("time,symbol,signal\n2015-01-01,T0,-2\n", "sig.csv row 1: signal -2.0 is outside"),
    ("time,symbol,signal\n2015-01-01,T0,buy\n", "sig.csv row 1: signal 'buy' is not a number"),
    (
        "time,symbol,signal\n2015-01-01,T0,1\n2015-01-02,XYZ,1\n",
        "sig.csv row 2: unknown symbol 'XYZ'",
    ),
    (
        "time,symbol,signal\n2015-01-01,T0,1\nnot a date,T0,1\n",
        "sig.csv row 2: unparseable time 'not a date'",
    ),
    (
        "time,symbol,signal\n2015-01-01,T0,1\n2015-01-02,T0,1\n2015-01-01,T0,0.5\n",
        "sig.csv rows 1 and 3: two signals for T0",
    ),
    ("time,symbol,signal\n,T0,1\n", "sig.csv row 1: unparseable time"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_files_are_one_line_data_errors(market, tmp_path, text, message):
    (tmp_path / "sig.csv").write_text(text)
    with pytest.raises(DataError) as info:
        _signals(market, tmp_path)
    assert info.value.line.startswith(message), info.value.line
    assert "\n" not in info.value.line


def test_did_you_mean_for_symbols(market, tmp_path):
    (tmp_path / "sig.csv").write_text("time,symbol,signal\n2015-01-01,T44,1\n")
    with pytest.raises(DataError, match="did you mean 'T4'"):
        _signals(market, tmp_path)


def test_missing_or_unreadable_file(market, tmp_path):
    with pytest.raises(ConfigError) as info:
        _signals(market, tmp_path, "nope.csv")
    assert info.value.where == "strategies.rep.path"
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="bad.parquet: cannot read"):
        _signals(market, tmp_path, "bad.parquet")


def test_empty_signal_cell_is_zero(market, tmp_path):
    (tmp_path / "sig.csv").write_text("time,symbol,signal\n2015-01-01,T0,\n2015-01-02,T0,-0.25\n")
    got = _signals(market, tmp_path)
    assert got[0, 0] == 0 and got[1, 0] == -0.25
