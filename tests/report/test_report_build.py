"""build_report and the notebook figures on fixture run folders (no browser)."""

from __future__ import annotations

import html
import json
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bokeh.plotting import figure
from report_runs import make_run, market_path

from admf_dask.errors import InputError
from admf_dask.report import _aggregate as agg
from admf_dask.report import (
    _load,
    build_report,
    context,
    drawdown_figure,
    equity_band_figure,
    heatmap_figure,
)
from admf_dask.report.figures import highlighted_lines
from admf_dask.report.heatmap import heatmap_data
from admf_dask.report.tabs import overview


def _doc_json(html: str) -> str:
    """The embedded Bokeh document (JSON inside a <script type="application/json">)."""
    m = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', html, re.S)
    assert m, "no embedded document"
    return json.dumps(json.loads(m.group(1)), ensure_ascii=False)  # readable: '×', not \\u00d7


def _no_remote(html: str) -> None:
    assert not re.search(r"<(script|link)[^>]+(src|href)=", html), "external JS/CSS referenced"
    assert "cdn.bokeh.org" not in html


def test_full_report(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    out = build_report(str(run))  # default: run_dir / report.html
    assert out == run / "report.html"
    html = out.read_text()
    assert len(html) > 100_000  # Bokeh's JS is inline
    _no_remote(html)
    doc = _doc_json(html)
    for text in ("Overview", "Metrics", "Grid", "Portfolio", "ML", "Run", "fixture run"):
        assert text in doc
    ds = xr.open_zarr(run_dir / "results.zarr", chunks=None)
    best, median, worst = agg.pick_best_median_worst(ds["sharpe"].values)
    for role, pid in (("best", best), ("median", median), ("worst", worst)):
        assert f"{role} #{pid}" in doc
    assert "stop_loss=none" in doc or "stop_loss=0.02" in doc  # labelled with grid values
    assert "Where and how long models ran" in doc  # ML trace timeline


def test_absent_optional_parts(bare_run_dir: Path, tmp_path: Path) -> None:
    """No orders, no signals, no ML: the report builds without those panels."""
    doc = _doc_json(build_report(bare_run_dir, tmp_path / "r.html").read_text())
    assert '"title": "ML"' not in doc
    assert "wrote no orders" in doc
    assert "Where and how long models ran" not in doc


def test_without_manifest_and_empty_orders(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", manifest=False, ml=False, signals=False, n_bars=60)
    for f in (run / "orders.parquet").iterdir():  # an orders folder with no files
        f.unlink()
    out = build_report(run, tmp_path / "r.html")
    assert "Run" in _doc_json(out.read_text())


def test_bad_input(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such run folder"):
        build_report(tmp_path / "missing")
    with pytest.raises(InputError, match="no results.zarr"):
        build_report(tmp_path)
    with pytest.raises(InputError, match="chosen_portfolio"):
        build_report(run_dir, tmp_path / "r.html", chosen_portfolio=10_000)


def test_chosen_portfolio_and_market_data(run_dir: Path, tmp_path: Path) -> None:
    market = xr.open_zarr(market_path(run_dir))
    html = build_report(
        run_dir, tmp_path / "r.html", chosen_portfolio=5, market_data=market
    ).read_text()
    doc = _doc_json(html)
    assert re.search(r"\"chosen( / [a-z0-9 ]+)? · #5 · ", doc)  # first option
    assert "close prices of the market data" in doc


def test_choices_best_median_worst_and_top(run_dir: Path) -> None:
    ds = _load.open_results(run_dir)
    run = _load.load_run(run_dir, ds)
    name, score = context.score(run, ds)
    assert name == "sharpe"
    choices = context.choices(run, score, name, None, top=3)
    best, median, worst = agg.pick_best_median_worst(score)
    assert [c.pid for c in choices[:3]] == [best, median, worst]
    top = agg.top_n(score, 3)
    assert [c.pid for c in choices[3:]] == [p for p in top[1:] if p not in (median, worst)]
    with_chosen = context.choices(run, score, name, best, top=1)
    assert with_chosen[0].label.startswith("chosen / best")  # same portfolio: merged
    assert len({c.pid for c in with_chosen}) == len(with_chosen)


def test_grid_params_and_metrics_loaded(run_dir: Path) -> None:
    ds = _load.open_results(run_dir)
    run = _load.load_run(run_dir, ds)
    assert [p.name for p in run.params] == ["strategy", "stop_loss"]
    sl = run.params[1]
    assert sl.levels == ["none", "0.02", "0.05", "0.1"]  # NaN is the level 'none', grid order
    assert sl.numeric and run.params[0].levels == ["trend", "momentum", "trend+ml"]
    assert list(run.metrics)[:3] == ["sharpe", "total_return", "annual_return"]
    assert run.n_portfolios == 12 and len(run.time) == 504


def test_heatmap_aggregation_matches_pandas(run_dir: Path) -> None:
    ds = _load.open_results(run_dir)
    run = _load.load_run(run_dir, ds)
    px, py = run.params
    cells = pd.DataFrame(heatmap_data(run.metrics["total_return"], px, py))
    df = pd.DataFrame(
        {
            "strategy": ds["strategy"].values.astype(str),
            "stop_loss": pd.Series(ds["stop_loss"].values).map(_load.fmt_value),
            "v": ds["total_return"].values,
        }
    )
    ref = df.groupby(["strategy", "stop_loss"])["v"].mean()
    for _, row in cells.iterrows():
        assert row["value"] == pytest.approx(ref[(row["x"], row["y"])])


def test_notebook_figures(run_dir: Path) -> None:
    ds = _load.open_results(run_dir)
    for src in (run_dir, str(run_dir), ds):
        assert isinstance(equity_band_figure(src), figure)
        assert isinstance(heatmap_figure(src, "sharpe", "stop_loss", "strategy"), figure)
    dd = drawdown_figure(run_dir, [0, 5, 7])
    assert [item.label.value for item in dd.legend[0].items] == ["#0", "#5", "#7"]
    assert len(drawdown_figure(ds).renderers) == 3  # best, median, worst
    f = equity_band_figure(ds["equity"])  # the curves alone: ranked by total return
    assert "total_return" in f.title.text
    frame = pd.DataFrame(
        {"a": [1, 1, 2, 2], "b": ["x", "y", "x", "y"], "sharpe": [1.0, 2.0, 3.0, np.nan]}
    )
    hf = heatmap_figure(frame, "sharpe")
    data = hf.renderers[0].data_source.data
    assert list(data["x"]) == ["1", "2", "1", "2"] and list(data["y"]) == ["x", "x", "y", "y"]
    np.testing.assert_allclose(data["value"], [1.0, 3.0, 2.0, np.nan])  # row-major over (y, x)
    with pytest.raises(KeyError, match="no grid parameter"):
        heatmap_figure(frame, "sharpe", "nope")


def test_one_and_zero_varying_parameters(tmp_path: Path) -> None:
    one = make_run(tmp_path / "one", grid={"stop_loss": [None, 0.05, 0.1]}, ml=False, n_bars=60)
    doc = _doc_json(build_report(one, tmp_path / "one.html").read_text())
    assert "Mean sharpe by stop_loss × all" in doc
    zero = make_run(
        tmp_path / "zero", grid={"strategy": ["trend"]}, ml=False, orders=False, n_bars=60
    )
    doc = _doc_json(build_report(zero, tmp_path / "zero.html").read_text())
    assert "nothing to compare" in doc


@pytest.mark.slow
def test_ten_thousand_portfolios_stay_light(tmp_path: Path) -> None:
    """10,000 portfolios × 2,520 bars: under 5 MB, equity never loaded whole (the build time is
    measured by benchmarks/load_and_report.py)."""
    grid = {
        "strategy": [f"s{i}" for i in range(10)],
        "stop_loss": [None] + [0.01 * i for i in range(1, 10)],
        "max_position": [0.05 * i for i in range(1, 11)],
        "rebalance_band": [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4],
    }
    run = make_run(
        tmp_path / "big",
        grid=grid,
        n_bars=2520,
        n_symbols=20,
        orders_per_portfolio=40,
        chunks=(504, 500),  # the pipeline's layout: time chunk × batch
        cash=False,
        signals=False,
        ml=False,
        compress=False,
    )
    size = build_report(run).stat().st_size
    assert size < 5_000_000, f"10,000 portfolios: {size / 1e6:.2f} MB"

    full = 2520 * 10_000 * 8
    ds = xr.open_zarr(run / "results.zarr", chunks=None)
    tracemalloc.start()
    _load.equity_band(ds["equity"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < full / 2, f"band peak {peak / 1e6:.0f} MB vs {full / 1e6:.0f} MB of equity"
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["data"]["bars"] == 2520


def test_max_drawdown_card_names_whose_drawdown_it_is(run_dir: Path, tmp_path: Path) -> None:
    html = build_report(run_dir, tmp_path / "r.html").read_text()
    doc = _doc_json(html)
    assert "max DD of best sharpe" in doc and "best max DD" not in doc
    ds = _load.open_results(run_dir)
    run = _load.load_run(run_dir, ds)
    name, score = context.score(run, ds)
    lines = highlighted_lines(ds["equity"], score, run.params, name)
    text = overview.header(run, name, score, lines, 0).text
    best = agg.pick_best_median_worst(score)[0]
    shown = f"{run.metrics['max_drawdown'][best]:.1%}"  # the best-Sharpe portfolio's drawdown
    assert f'max DD of best sharpe</div><div class="v ">{shown}</div>' in text


def test_best_and_worst_lists_show_one_of_each_duplicate(tmp_path: Path) -> None:
    # sizing fixed (the default): target_vol has no effect, so ids 2k and 2k+1 (k = target_vol
    # index) duplicate ids 0 and 1 (stop_loss none / 0.05); the fixture's equity differs anyway
    grid = {"target_vol": [0.1, 0.2, 0.3], "stop_loss": [None, 0.05]}
    run_path = make_run(tmp_path / "dup", grid=grid, ml=False, n_bars=60, seed=3)
    ds = _load.open_results(run_path)
    run = _load.load_run(run_path, ds)
    name, score = context.score(run, ds)
    pick = _load.distinct_score(run, ds, score)
    assert np.isfinite(pick[:2]).all() and np.isnan(pick[2:]).all()
    choices = context.choices(run, score, name, None, top=5, pick=pick)
    assert {c.pid for c in choices} == {0, 1}
    lines = highlighted_lines(ds["equity"], pick, run.params, name)
    assert {ln.portfolio for ln in lines} <= {0, 1}
    doc = _doc_json(build_report(run_path).read_text())
    assert re.search(r"best #[01] ", doc) and not re.search(r"(best|median|worst) #[2-5] ", doc)


def _div_texts(html_text: str) -> list[str]:
    """The HTML of every Div as the browser gets it (Bokeh escapes the embedded JSON once)."""
    doc = json.loads(html.unescape(_doc_json(html_text)))
    out: list[str] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            if x.get("type") == "object" and x.get("name") == "Div":
                out.append(x["attributes"].get("text", ""))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    return out


def test_run_values_reach_the_html_as_text(tmp_path: Path) -> None:
    """A run name, grid value, warning or worker name holding HTML is shown, never run."""
    evil = "<script>alert(1)</script>"
    grid = {"strategy": ["<b>x</b>", "a&b"], "stop_loss": [None, 0.05]}
    run = make_run(tmp_path / "x", name=evil, grid=grid, ml=False, n_bars=60)
    manifest = json.loads((run / "run.json").read_text())
    manifest["warnings"] = [f"symbol {evil} has gaps"]
    manifest["cluster"] = {"workers": [{"name": "<i>w0</i>", "address": "tcp://127.0.0.1:1"}]}
    (run / "run.json").write_text(json.dumps(manifest))
    page = build_report(run, tmp_path / "r.html").read_text()
    texts = _div_texts(page)
    joined = "\n".join(texts)
    assert "<script" not in joined and "<i>" not in joined and "<b>x</b>" not in joined
    esc = "&lt;script&gt;alert(1)&lt;/script&gt;"
    header = next(t for t in texts if "<h1>" in t)
    assert f"<h1>{esc}</h1>" in header and f"symbol {esc} has gaps" in header
    assert joined.count(f"symbol {esc} has gaps") == 2  # the Overview's warning and the Run tab's
    assert "&lt;b&gt;x&lt;/b&gt;" in joined and "a&amp;b" in joined  # grid values (Run tab)
    assert "<td>&lt;i&gt;w0&lt;/i&gt;</td>" in joined  # the cluster's worker table
    # the portfolio info lines are not Divs yet (the page's JS shows them): escaped there too
    doc = html.unescape(_doc_json(page))
    assert "= <b>&lt;b&gt;x&lt;/b&gt;</b>" in doc or "= <b>a&amp;b</b>" in doc
