"""Pipelines without features: replaying one's own signals through the CLI and the API."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _cli import main
from test_cli import assert_one_line_error, write_pipeline

import admf_dask as ad
from admf_dask.errors import ConfigError

DATA = {"source": "synthetic", "symbols": 4, "bars": 120, "seed": 5, "chunks": {"time": 60}}


def _signal_file(tmp_path) -> pd.DataFrame:
    """A long table time, symbol, signal on every 5th bar (as tests/strategies/test_replay.py)."""
    market = ad.load_market_data(DATA)
    times = pd.DatetimeIndex(market.time.values)[::5]
    symbols = [str(s) for s in market.symbol.values]
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        [(t, s, float(rng.choice([-1.0, 0.5, 1.0]))) for t in times for s in symbols],
        columns=["time", "symbol", "signal"],
    )
    df.to_parquet(tmp_path / "my_signals.parquet")
    return df


def _pipeline(out) -> dict:
    return {
        "name": "replay-only",
        "data": DATA,
        "features": {},
        "strategies": {"mine": {"kind": "signals", "path": "my_signals.parquet"}},
        "portfolios": {"capital": 100000, "batch_size": 2, "grid": {"allow_short": [False, True]}},
        "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
        "output": {"path": str(out), "report": True},
    }


def test_replay_only_pipeline_through_the_cli(tmp_path, client):
    # the CLI in-process (tests/_cli.py), the run on the session's cluster
    df = _signal_file(tmp_path)
    path = write_pipeline(tmp_path, _pipeline(tmp_path / "runs" / "r"))
    proc = main("validate", str(path))
    assert proc.returncode == 0 and "is valid" in proc.stdout, proc.stderr
    proc = main("run", str(path), "--address", client.scheduler.address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    run_dir = tmp_path / "runs" / "r"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["portfolios"]["n"] == 2 and manifest["portfolios"]["n_orders"] > 0
    (run_dir / "report.html").unlink()
    proc = main("report", str(run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "report.html").stat().st_size > 0
    res = ad.open_run(run_dir)
    sig = res.signals.sel(strategy="mine").to_pandas()  # the replayed table, aligned
    want = df.pivot(index="time", columns="symbol", values="signal")
    np.testing.assert_array_equal(sig.loc[want.index, want.columns].to_numpy(), want.to_numpy())


def test_replay_only_pipeline_through_the_api(tmp_path, client):
    _signal_file(tmp_path)
    cfg = _pipeline(tmp_path / "runs" / "api")
    cfg["output"]["report"] = False
    res = ad.run(write_pipeline(tmp_path, cfg), client=client)
    assert len(res.features.data_vars) == 0
    assert res.manifest["portfolios"]["n_orders"] > 0 and len(res.orders) > 0
    again = ad.open_run(tmp_path / "runs" / "api")
    assert list(again.metrics.index) == [0, 1]
    np.testing.assert_array_equal(again.equity.values, res.equity.values)


def test_vol_target_without_features_is_a_config_error(tmp_path):
    _signal_file(tmp_path)
    cfg = _pipeline(tmp_path / "runs" / "vt")
    cfg["portfolios"]["sizing"] = "vol_target"
    path = write_pipeline(tmp_path, cfg)
    assert_one_line_error(main("validate", str(path)), "portfolios.vol_feature", "vol_target")
    with pytest.raises(ConfigError, match="vol_target needs a volatility feature"):
        ad.load_pipeline(path)
    assert not (tmp_path / "runs").exists()
