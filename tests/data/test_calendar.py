"""Bar frequencies and sessions (docs/TIME.md): the synthetic intraday calendar, inference of a
file's frequency, and the one ``periods_per_year`` rule."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from admf_dask.config.models import DataConfig
from admf_dask.data import load_market_data
from admf_dask.data.calendar import (
    bar_label,
    bar_vol_scale,
    bars_per_day,
    infer_frequency,
    periods_per_year,
    synthetic_times,
    time_attrs,
)
from admf_dask.errors import ConfigError, DataError


def _minutes(bars: int, freq: str = "1min", session: str | None = None) -> np.ndarray:
    return synthetic_times(DataConfig(bars=bars, frequency=freq, session=session))


# ------------------------------------------------------------------------ synthetic calendar


def test_intraday_calendar_is_business_days_times_session_bars_labelled_by_start():
    t = _minutes(1000)
    assert t.dtype == np.dtype("datetime64[ns]") and t.size == 1000
    assert (np.diff(t) > np.timedelta64(0)).all()
    s = pd.DatetimeIndex(t)
    assert s[0] == pd.Timestamp("2010-01-04 09:30") and s[389] == pd.Timestamp("2010-01-04 15:59")
    assert s[390] == pd.Timestamp("2010-01-05 09:30")  # next business day, first bar
    assert s[-1] == pd.Timestamp("2010-01-06 13:09")  # 1000 = 2 × 390 + 220: a partial day
    assert (s.dayofweek < 5).all()
    # a Friday is followed by Monday's session
    fri = DataConfig(bars=200, frequency="5min", calendar_start="2010-01-08")
    f = pd.DatetimeIndex(synthetic_times(fri))
    assert f[77] == pd.Timestamp("2010-01-08 15:55") and f[78] == pd.Timestamp("2010-01-11 09:30")


def test_session_and_step_that_does_not_divide_it():
    t = pd.DatetimeIndex(_minutes(10, "1h", "09:30-16:00"))
    # bars start 09:30 ... 15:30 (the last one is 30 min): 7 a day
    assert list(t[:8].strftime("%H:%M")) == [f"{h:02d}:30" for h in range(9, 16)] + ["09:30"]
    assert bars_per_day("1h", "09:30-16:00") == 7
    custom = pd.DatetimeIndex(_minutes(6, "15min", "08:00-08:45"))
    assert list(custom.strftime("%d %H:%M")) == [
        "04 08:00", "04 08:15", "04 08:30", "05 08:00", "05 08:15", "05 08:30"
    ]  # fmt: skip


def test_daily_calendar_unchanged():
    cfg = DataConfig(bars=300, calendar_start="2011-03-05")
    expected = pd.bdate_range("2011-03-05", periods=300).to_numpy().astype("datetime64[ns]")
    np.testing.assert_array_equal(synthetic_times(cfg), expected)
    b = synthetic_times(DataConfig(bars=300, calendar_start="2011-03-05", frequency="1B"))
    np.testing.assert_array_equal(b, expected)


def test_bar_label_of_run_json():
    day = np.datetime64("2010-01-04T00:00:00", "ns")
    assert bar_label(day, "1D") == bar_label(day, None) == "2010-01-04"  # daily: the date only
    assert bar_label(np.datetime64("2010-01-04T09:30", "ns"), "1min") == "2010-01-04T09:30:00"
    far = np.datetime64("2300-01-02T09:30", "s")
    assert bar_label(far, "5min") == "2300-01-02T09:30:00" and bar_label(far, "1W") == "2300-01-02"


def test_bar_vol_scale():
    assert bar_vol_scale(DataConfig()) == 1.0
    assert bar_vol_scale(DataConfig(frequency="1D")) == 1.0
    assert bar_vol_scale(DataConfig(frequency="1min")) == np.sqrt(1 / 390)
    assert bar_vol_scale(DataConfig(frequency="30min", session="10:00-12:00")) == 0.5


def test_time_axis_past_2262_is_held_in_seconds():
    # fits datetime64[ns]: [ns] as always
    near = synthetic_times(DataConfig(bars=300, calendar_start="2011-03-05"))
    assert near.dtype == np.dtype("datetime64[ns]")
    # past 2262-04-11: datetime64[s], the same business days
    far = synthetic_times(DataConfig(bars=80_000, calendar_start="2000-01-01"))
    assert far.dtype == np.dtype("datetime64[s]") and far.size == 80_000
    want = pd.bdate_range("2000-01-01", periods=80_000).to_numpy().astype("datetime64[s]")
    np.testing.assert_array_equal(far, want)
    assert str(far[-1]) > "2262-04-11"
    # intraday: the end of the last day's session counts
    minutes = synthetic_times(
        DataConfig(bars=390 * 3, frequency="1min", calendar_start="2262-04-10")
    )
    assert minutes.dtype == np.dtype("datetime64[s]")
    assert [str(minutes[i]) for i in (0, 389, 390, -1)] == [
        "2262-04-10T09:30:00",
        "2262-04-10T15:59:00",
        "2262-04-11T09:30:00",
        "2262-04-14T15:59:00",
    ]
    # before 1677-09-22 too
    old = synthetic_times(DataConfig(bars=3, calendar_start="1600-01-03"))
    assert old.dtype == np.dtype("datetime64[s]") and str(old[0]) == "1600-01-03T00:00:00"


# ------------------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("1min", "1min"), ("5min", "5min"), ("60min", "1h"), ("1h", "1h"), ("30s", "30s"),
     ("90s", "90s"), ("1D", "1D"), ("D", "1D"), ("B", "1B"), ("W", "1W"), ("1M", "1M"),
     ("ME", "1M")],
)  # fmt: skip
def test_frequency_aliases_are_canonical(text, canonical):
    assert DataConfig(source="csv", path="x.csv", frequency=text).frequency == canonical


@pytest.mark.parametrize(
    ("data", "where", "what"),
    [
        ({"frequency": "1min", "session": "9:30"}, "data.session", "not a session"),
        ({"frequency": "1min", "session": "09:30-25:00"}, "data.session", "time of day"),
        ({"frequency": "1min", "session": "09:61-16:00"}, "data.session", "time of day"),
        ({"frequency": "1min", "session": "16:00-09:30"}, "data.session", "over midnight"),
        ({"session": "09:30-16:00"}, "data.session", "intraday bars only"),
        ({"frequency": "1D", "session": "09:30-16:00"}, "data.session", "intraday bars only"),
        ({"frequency": "fortnight"}, "data.frequency", "not a bar frequency"),
        ({"frequency": "3D"}, "data.frequency", "not supported"),
        ({"frequency": "1500ms"}, "data.frequency", "whole seconds"),
        ({"frequency": "1W"}, "data.frequency", "synthetic bars are daily"),
    ],
)
def test_bad_frequency_or_session_is_one_config_error(data, where, what):
    with pytest.raises(ConfigError) as e:
        load_market_data({"source": "synthetic", "symbols": 2, "bars": 10, **data})
    assert e.value.where == where and what in e.value.line and "\n" not in e.value.line


# ---------------------------------------------------------------------------------- inference


def test_inference_of_intraday_daily_and_longer_bars():
    assert infer_frequency(_minutes(1000), "f") == "1min"
    assert infer_frequency(_minutes(500, "5min"), "f") == "5min"
    assert infer_frequency(_minutes(50, "1h"), "f") == "1h"
    gaps = np.delete(_minutes(1000), [3, 4, 5, 400, 999])  # missing bars are gaps, not mixing
    assert infer_frequency(gaps, "f") == "1min"
    assert infer_frequency(synthetic_times(DataConfig(bars=300)), "f") == "1D"
    assert (
        infer_frequency(pd.date_range("2001-01-01", periods=60, freq="W-FRI").values, "f") == "1W"
    )
    assert infer_frequency(pd.date_range("2001-01-01", periods=30, freq="BME").values, "f") == "1M"
    assert infer_frequency(pd.date_range("2001-01-01", periods=9, freq="QE").values, "f") == "1Q"
    assert infer_frequency(pd.date_range("2001-01-01", periods=9, freq="YE").values, "f") == "1Y"
    assert infer_frequency(np.array(["2020-01-02"], dtype="datetime64[ns]"), "f") == "1D"


def test_mixed_frequencies_name_the_file_and_the_first_offending_time():
    one = _minutes(390 * 3)
    # day 2 at 5min in a 1min file
    mixed = np.concatenate([one[:390], one[390:780:5], one[780:]])
    with pytest.raises(DataError) as e:
        infer_frequency(mixed, "bars.csv")
    assert e.value.where == "bars.csv time 2010-01-05T09:35:00"
    assert "5min step" in e.value.what and "1min apart" in e.value.what
    # a step that is not a whole number of bars (off the 1min grid)
    off = one.copy()
    off[700:] += np.timedelta64(30, "s")
    with pytest.raises(DataError, match=r"bars.csv time 2010-01-05T14:40:30: .*90s step"):
        infer_frequency(off, "bars.csv")


def test_time_attrs_of_files():
    t = _minutes(1000)
    csv = {"source": "csv", "path": "m.csv"}
    attrs = time_attrs(DataConfig(**csv), t, "m.csv")
    assert attrs == {"frequency": "1min", "session": "", "bars_per_day": 390}
    given = time_attrs(DataConfig(**csv, frequency="1min", session="09:30-16:00"), t, "m.csv")
    assert given == {"frequency": "1min", "session": "09:30-16:00", "bars_per_day": 390}
    with pytest.raises(
        DataError, match=r"m.csv: its bars are 1min apart, but data.frequency is 5min"
    ):
        time_attrs(DataConfig(**csv, frequency="5min"), t, "m.csv")
    with pytest.raises(DataError, match=r"m.csv time 2010-01-04T09:30:00: a bar outside"):
        time_attrs(DataConfig(**csv, session="10:00-16:00"), t, "m.csv")
    daily = synthetic_times(DataConfig(bars=30))
    assert time_attrs(DataConfig(**csv, frequency="1B"), daily, "m.csv") == {"frequency": "1B"}
    with pytest.raises(ConfigError, match="data.session: applies to intraday bars only"):
        time_attrs(DataConfig(**csv, session="09:30-16:00"), daily, "m.csv")


def test_loaded_csv_gets_its_frequency(tmp_path):
    t = pd.DatetimeIndex(_minutes(20, "5min"))
    rows = [f"{x:%Y-%m-%d %H:%M},AAA,10,11,9,10.5,100" for x in t]
    (tmp_path / "m.csv").write_text("time,symbol,open,high,low,close,volume\n" + "\n".join(rows))
    ds = load_market_data({"source": "csv", "path": "m.csv"}, base_dir=tmp_path)
    assert ds.attrs["frequency"] == "5min" and ds.attrs["bars_per_day"] == 20
    bad = rows[:10] + [
        f"{x:%Y-%m-%d %H:%M},AAA,10,11,9,10.5,100" for x in t[10:] + pd.Timedelta("2min")
    ]
    (tmp_path / "bad.csv").write_text("time,symbol,open,high,low,close,volume\n" + "\n".join(bad))
    with pytest.raises(DataError, match=r"^bad.csv time 2010-01-04T10:22:00: mixed bar"):
        load_market_data({"source": "csv", "path": "bad.csv"}, base_dir=tmp_path)


# ---------------------------------------------------------------------------- periods_per_year


def test_periods_per_year_rule():
    assert periods_per_year(None) == 252.0
    assert periods_per_year(None, {}) == 252.0
    assert periods_per_year(None, {"frequency": "1D"}) == 252.0
    assert periods_per_year(None, {"frequency": "1B"}) == 252.0
    assert periods_per_year(None, {"frequency": "1W"}) == 52.0
    assert periods_per_year(None, {"frequency": "1M"}) == 12.0
    assert periods_per_year(None, {"frequency": "1Q"}) == 4.0
    assert periods_per_year(None, {"frequency": "1Y"}) == 1.0
    assert periods_per_year(None, {"frequency": "1min", "bars_per_day": 390}) == 252.0 * 390
    assert periods_per_year(None, {"frequency": "5min"}) == 252.0 * 78  # the default session
    assert periods_per_year(365, {"frequency": "1min", "bars_per_day": 390}) == 365.0
    daily = load_market_data({"source": "synthetic", "symbols": 2, "bars": 20})
    assert daily.attrs["frequency"] == "1D" and periods_per_year(None, daily.attrs) == 252.0
    minute = load_market_data(
        {"source": "synthetic", "symbols": 2, "bars": 20, "frequency": "1min"}
    )
    assert periods_per_year(None, minute.attrs) == 98_280.0


# ------------------------------------------------------------------------------- end to end


def test_minute_bar_pipeline_annualizes_with_252_times_390(tmp_path, client):
    import yaml

    import admf_dask as ad
    from admf_dask.metrics import compute_metrics

    cfg = {
        "name": "minutes",
        "data": {
            "source": "synthetic",
            "symbols": 3,
            "bars": 2000,
            "seed": 5,
            "frequency": "1min",
            "chunks": {"time": 500},
        },
        "features": {
            "sma_5": {"kind": "sma", "window": 5},
            "sma_30": {"kind": "sma", "window": 30},
            "vol_20": {"kind": "volatility", "window": 20},
        },
        "strategies": {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_30"}},
        "portfolios": {"capital": 100000, "batch_size": 4, "grid": {"allow_short": [False, True]}},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(tmp_path / "run"), "report": False},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg))
    res = ad.run(tmp_path / "p.yaml", client=client)
    ppy = 252.0 * 390
    assert res.results.attrs["periods_per_year"] == ppy
    assert res.manifest["data"]["frequency"] == "1min"
    assert res.manifest["data"]["periods_per_year"] == ppy
    # intraday: run.json keeps the first and last bars' times, not only their dates
    assert res.manifest["data"]["start"] == "2010-01-04T09:30:00"
    assert res.manifest["data"]["end"] == "2010-01-11T10:19:00"
    assert res.manifest["config"]["portfolios"]["periods_per_year"] is None  # as written
    equity = res.equity.transpose("time", "portfolio").values
    assert equity.shape == (2000, 2) and (np.diff(equity, axis=0) != 0).any()
    expected = compute_metrics(equity, 100000.0, ppy)
    daily = compute_metrics(equity, 100000.0, 252.0)
    got = res.metrics
    for name in ("annual_return", "annual_volatility", "sharpe", "sortino"):
        np.testing.assert_array_equal(got[name].to_numpy(), expected[name], err_msg=name)
        assert not np.allclose(expected[name], daily[name]), name
    # the volatility feature's default annualization is the data's too
    times = res.equity["time"].values
    assert pd.Timestamp(times[390]) == pd.Timestamp("2010-01-05 09:30")
    data = load_market_data(cfg["data"])
    c = pd.Series(data["close"].values[:, 0])
    twin = np.log(c / c.shift(1)).rolling(20).std() * np.sqrt(ppy)
    vol = client.compute(res.features["vol_20"]).result().values  # persisted on the cluster
    np.testing.assert_allclose(vol[:, 0], twin, rtol=1e-9)


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """``admf-dask ARGS`` in-process (tests/_cli.py), from folder `cwd`."""
    from _cli import main

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return main(*args)
    finally:
        os.chdir(old)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr[-2000:])
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    return lines[0]


def test_cli_bad_session_and_mixed_frequencies_exit_2_with_one_line_and_write_nothing(
    tmp_path, client
):
    import yaml

    t = pd.DatetimeIndex(_minutes(390 * 2))
    t = t[:390].append(t[390::5])  # day 2 at 5min
    rows = [f"{x:%Y-%m-%d %H:%M},AAA,10,11,9,10.5,100" for x in t]
    (tmp_path / "mixed.csv").write_text(
        "time,symbol,open,high,low,close,volume\n" + "\n".join(rows) + "\n"
    )
    cfg = {
        "name": "mixed",
        "data": {"source": "csv", "path": "mixed.csv"},
        "features": {"sma_2": {"kind": "sma", "window": 2}, "sma_5": {"kind": "sma", "window": 5}},
        "strategies": {"s": {"kind": "ma_crossover", "fast": "sma_2", "slow": "sma_5"}},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": "out", "report": False},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg))
    addr = ("--address", client.scheduler.address)  # the session's cluster, not one started
    line = _one_line(_cli("run", "p.yaml", *addr, cwd=tmp_path))
    assert "mixed.csv time 2010-01-05T09:35:00: mixed bar frequencies" in line
    assert not (tmp_path / "out").exists()
    line = _one_line(_cli("validate", "p.yaml", "--set", "data.session=9h30", cwd=tmp_path))
    assert "data.session" in line and "HH:MM-HH:MM" in line


def test_daily_defaults_are_bit_for_bit_the_explicit_252(tmp_path, client, small_pipeline):
    import yaml

    import admf_dask as ad

    runs = []
    for i, ppy in enumerate((None, 252)):
        cfg = {**small_pipeline, "output": {"path": str(tmp_path / f"r{i}"), "report": False}}
        cfg["portfolios"] = {**cfg["portfolios"], "periods_per_year": ppy}
        cfg["features"] = {**cfg["features"], "vol_20": {"kind": "volatility", "window": 20}}
        if ppy is not None:
            cfg["features"]["vol_20"]["periods_per_year"] = ppy
        (tmp_path / f"p{i}.yaml").write_text(yaml.safe_dump(cfg))
        runs.append(ad.run(tmp_path / f"p{i}.yaml", client=client))
    a, b = runs
    assert a.results.attrs["periods_per_year"] == b.results.attrs["periods_per_year"] == 252.0
    np.testing.assert_array_equal(a.equity.values, b.equity.values)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert a.features.attrs["feature_token"] == b.features.attrs["feature_token"]
