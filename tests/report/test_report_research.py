"""The Research tab and the psr/dsr columns of the Metrics table (no browser)."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from report_runs import make_run

from admf_dask.errors import InputError
from admf_dask.report import _load, build_report
from admf_dask.report.tabs.research_data import scatter_rows
from admf_dask.research.config import ResearchConfig
from admf_dask.research.stage import research_stage
from admf_dask.research.write import write_research


def _doc(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', html, re.S)
    assert m, "no embedded document"
    return json.loads(m.group(1))


def _models(obj, out=None) -> list[dict]:
    """Every serialized Bokeh model of the document (nested dicts with a 'type')."""
    out = [] if out is None else out
    if isinstance(obj, dict):
        if obj.get("type") == "object" and "name" in obj:
            out.append(obj)
        for v in obj.values():
            _models(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _models(v, out)
    return out


def _named(doc: dict, name: str) -> dict:
    hits = [m for m in _models(doc) if (m.get("attributes") or {}).get("name") == name]
    assert len(hits) == 1, name
    return hits[0]


def _research_run(tmp_path: Path, walk_forward=True) -> Path:
    run = make_run(tmp_path / "run", n_bars=300, ml=False, signals=False)
    cfg = ResearchConfig(
        cscv_blocks=6, walk_forward={"train": 100, "test": 50} if walk_forward else None
    )
    write_research(run, research_stage(run / "results.zarr", cfg))
    return run


def test_research_tab_and_metrics_columns(tmp_path):
    run = _research_run(tmp_path)
    html = build_report(run).read_text()
    doc = _doc(html)
    text = json.dumps(doc, ensure_ascii=False)
    assert '"title": "Research"' in text and "Probability of backtest overfitting" in text
    research = json.loads((run / "research.json").read_text())
    assert f"<th>pbo</th><td>{research['pbo']['pbo']:.3f} —" in html_lib.unescape(text)
    # logit histogram: every split counted once
    logits = _named(doc, "research_logits")
    counts = logits["attributes"]["data"]["entries"]
    assert "count" in json.dumps(counts)
    # walk-forward windows table and the stitched equity
    assert "research_wf_table" in text and "research_wf_equity" in text
    assert "Walk-forward equity" in text
    # the metrics table carries psr and dsr
    metrics_src = json.dumps(_named(doc, "metrics_source"))
    assert '"psr"' in metrics_src and '"dsr"' in metrics_src
    ds = xr.open_zarr(run / "results.zarr")
    assert np.isfinite(ds["psr"].values).all()


def test_research_tab_without_walk_forward(tmp_path):
    run = _research_run(tmp_path, walk_forward=False)
    text = json.dumps(_doc(build_report(run).read_text()), ensure_ascii=False)
    assert '"title": "Research"' in text and "Off for this run" in text
    assert "research_wf_equity" not in text


def test_no_research_tab_without_research_json(tmp_path):
    run = make_run(tmp_path / "run", n_bars=120, ml=False, signals=False)
    text = json.dumps(_doc(build_report(run).read_text()), ensure_ascii=False)
    assert '"title": "Research"' not in text
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "research.json").write_text("{not json")
    with pytest.raises(InputError, match="research.json"):
        build_report(copy)


def test_long_curves_keep_their_extremes_and_splits_their_ends():
    # the walk-forward curves are drawn as min/max per bucket: a spike is never skipped
    from types import SimpleNamespace

    from admf_dask.report.tabs.research import _equity_figure
    from admf_dask.report.tabs.research_data import ResearchView

    n = 10_001
    wfo, best = np.linspace(1.0, 2.0, n), np.linspace(1.0, 3.0, n)
    wfo[1235], best[4321] = 99.0, -5.0
    ctx = SimpleNamespace(run=SimpleNamespace(time=np.arange(n).astype("datetime64[D]")))
    view = ResearchView(summary={"best": {"portfolio": 0}}, wfo=wfo, best=best)
    src = _equity_figure(ctx, view).select_one({"name": "research_wf_equity"})
    shown = {k: np.asarray(v) for k, v in src.data.items()}
    assert len(shown["wfo"]) <= _load.DISPLAY_POINTS
    assert shown["wfo"].max() == 99.0 and shown["best"].min() == -5.0
    assert shown["time"][0] == np.datetime64(0, "D") and shown["time"][-1] == np.datetime64(
        n - 1, "D"
    )
    rows = scatter_rows({"is_sharpe": [0.0] * 50_000}, limit=1000)
    assert rows[0] == 0 and rows[-1] == 49_999 and len(rows) == 1000
