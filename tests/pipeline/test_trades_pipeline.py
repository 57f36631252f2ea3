"""Trades and the benchmark through the pipeline: config keys, run folder, `RunResult.trades`,
and the one-line errors of bad input (exit 2, nothing written)."""

from __future__ import annotations

import json
import logging
import signal

import numpy as np
import pytest
import yaml

import admf_dask as ad
from admf_dask.metrics.relative import RELATIVE_METRIC_NAMES
from admf_dask.portfolio._trades import TRADE_METRIC_NAMES


def test_run_writes_trades_and_benchmark_metrics(small_pipeline, client, tmp_path):
    cfg = small_pipeline
    cfg["portfolios"]["benchmark"] = "S000"
    res = ad.run(cfg, client, out=tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "trades.parquet" in manifest["outputs"]
    assert manifest["config"]["output"]["trades"] is True
    every = res.trades()
    assert len(every) > 0 and set(every["portfolio"]) <= set(range(4))
    one = res.trades(portfolio=2)
    assert len(one) == int((every["portfolio"] == 2).sum()) and set(one["portfolio"]) == {2}
    some = res.trades(portfolio=[1, 3], symbol=["S001", "S002"])
    want = every[
        every["portfolio"].isin([1, 3]) & every["symbol"].astype(str).isin(["S001", "S002"])
    ]
    assert len(some) == len(want)
    m = res.metrics
    for k in (*TRADE_METRIC_NAMES, *RELATIVE_METRIC_NAMES):
        assert k in m.columns, k
    n = every.groupby("portfolio").size().reindex(range(4), fill_value=0)
    np.testing.assert_array_equal(m["n_trades"].to_numpy(), n.to_numpy())
    # the sum of the trades' pnl is the portfolio's gain
    gain = res.equity.isel(time=-1).values - cfg["portfolios"]["capital"]
    pnl = every.groupby("portfolio")["pnl"].sum().reindex(range(4), fill_value=0.0)
    np.testing.assert_allclose(pnl.to_numpy(), gain, rtol=1e-9, atol=1e-6)
    again = ad.open_run(tmp_path / "run")
    assert len(again.trades(symbol="S003")) == int((every["symbol"] == "S003").sum())


def test_trades_off(small_pipeline, client, tmp_path):
    cfg = small_pipeline
    cfg["output"]["trades"] = False
    res = ad.run(cfg, client, out=tmp_path / "run")
    assert not (tmp_path / "run" / "trades.parquet").exists()
    assert res.trades().empty and "n_trades" not in res.metrics.columns


def _cli(args, capsys) -> tuple[int, str]:
    from admf_dask.cli import main

    logger = logging.getLogger("admf_dask")
    saved = (logger.handlers[:], logger.propagate, logger.level, signal.getsignal(signal.SIGTERM))
    capsys.readouterr()
    try:
        rc = main(args)
    finally:
        logger.handlers[:], logger.propagate, logger.level = saved[:3]
        signal.signal(signal.SIGTERM, saved[3])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        ({"portfolios": {"benchmark": "SPY"}}, "portfolios.benchmark", "'SPY' is not a symbol"),
        (
            {"portfolios": {"benchmark": "S009"}},
            "portfolios.benchmark",
            "symbols: S000, S001, S002",
        ),
        (
            {"portfolios": {"benchmark": "S000"}, "data": {"symbols": 1}},
            "portfolios.benchmark",
            "the data has one symbol",
        ),
        ({"output": {"trades": "yes"}}, "output.trades", "boolean"),
        ({"output": {"trades": 1}}, "output.trades", "boolean"),
    ],
    ids=["unknown", "names-the-symbols", "one-symbol", "trades-yes", "trades-1"],
)
def test_bad_input_is_one_line_and_writes_nothing(
    change, where, what, small_pipeline, tmp_path, monkeypatch, capsys
):
    cfg = small_pipeline
    cfg["data"]["symbols"] = 3
    for section, values in change.items():
        cfg[section].update(values)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = _cli(["run", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "out")], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and where in lines[0] and what in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
