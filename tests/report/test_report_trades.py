"""The Trades tab and the trade metrics on the Grid tab, on a real small run."""

from __future__ import annotations

import copy
import json
import re

import pytest

import admf_dask as ad
from admf_dask.report import build_report


def _doc(html: str) -> str:
    m = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', html, re.S)
    assert m, "no embedded document"
    return json.dumps(json.loads(m.group(1)), ensure_ascii=False)


SMALL = {
    "name": "trades-report",
    "data": {"source": "synthetic", "symbols": 5, "bars": 250, "seed": 4, "chunks": {"time": 100}},
    "features": {"sma_5": {"kind": "sma", "window": 5}, "sma_20": {"kind": "sma", "window": 20}},
    "strategies": {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}},
    "portfolios": {
        "capital": 100000,
        "batch_size": 4,
        "benchmark": "S000",
        "grid": {"stop_loss": [None, 0.05], "allow_short": [False, True]},
    },
    "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
    "output": {"report": False},
}


def _model(node, name: str) -> dict:
    """The attributes of the document's model called ``name``."""
    if isinstance(node, dict):
        attrs = node.get("attributes")
        if isinstance(attrs, dict) and attrs.get("name") == name:
            return attrs
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return {}
    for child in children:
        found = _model(child, name)
        if found:
            return found
    return {}


@pytest.fixture(scope="module")
def runs(client, tmp_path_factory):
    root = tmp_path_factory.mktemp("report-trades")
    on = copy.deepcopy(SMALL)
    ad.run(on, client, out=root / "on")
    off = copy.deepcopy(SMALL)
    off["output"]["trades"] = False
    ad.run(off, client, out=root / "off")
    return root / "on", root / "off"


def test_trades_tab_and_grid_metrics(runs):
    on, off = runs
    doc = _doc(build_report(on).read_text())
    for name in ("trades_table", "trades_pnl_hist", "trades_mfe_mae", "trades_choice"):
        assert f'"{name}"' in doc, name
    assert "MFE / MAE per trade" in doc and "P&amp;L per trade" in doc
    heat = _model(json.loads(doc), "heat_metric")["options"]
    assert "win_rate" in heat and "profit_factor" in heat and "alpha" in heat
    plain = _doc(build_report(off).read_text())
    assert '"trades_table"' not in plain and "win_rate" not in plain
