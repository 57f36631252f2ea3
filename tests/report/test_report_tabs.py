"""The tab registry, the templates and the formatting helpers of the report (no browser)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np
from bokeh.models import TabPanel

from admf_dask.report import _load, render
from admf_dask.report import format as fmt
from admf_dask.report import tabs as tabs_pkg
from admf_dask.report.context import build_context
from admf_dask.report.tabs import TABS


def _tab_modules() -> list:
    """The modules of admf_dask.report.tabs that define a tab (TITLE and build)."""
    mods = [
        importlib.import_module(f"{tabs_pkg.__name__}.{m.name}")
        for m in pkgutil.iter_modules(tabs_pkg.__path__)
    ]
    return [m for m in mods if hasattr(m, "TITLE") and hasattr(m, "build")]


def test_every_tab_module_is_registered_once_in_page_order() -> None:
    modules = {m.build: m for m in _tab_modules()}
    assert set(TABS) == set(modules), "a tab module is missing from TABS (or TABS has a stray)"
    assert len(TABS) == len(set(TABS))
    titles = [modules[b].TITLE for b in TABS]
    assert titles == ["Overview", "Metrics", "Grid", "Portfolio", "Trades", "Research", "ML", "Run"]


def test_each_tab_builds_from_the_context(run_dir: Path, bare_run_dir: Path) -> None:
    modules = {m.build: m for m in _tab_modules()}
    # neither fixture has research.json (tests/report/test_report_research.py has the tab)
    for folder, absent in ((run_dir, {"Research"}), (bare_run_dir, {"ML", "Research"})):
        if not (folder / "trades.parquet").exists():  # tests/report/test_report_trades.py has it
            absent = absent | {"Trades"}
        ds = _load.open_results(folder)
        ctx = build_context(folder, ds, None, None, top=5)
        for build in TABS:
            panel = build(ctx)
            title = modules[build].TITLE
            if title in absent:
                assert panel is None, title
            else:
                assert isinstance(panel, TabPanel) and panel.title == title
        assert len(ctx.on_ready) == 1  # the Portfolio tab's first fill
        ds.close()


def test_templates_escape_values_and_pass_nested_html() -> None:
    note = render.render("note.html", text="<img src=x onerror=alert(1)> & co")
    assert note == '<p class="note">&lt;img src=x onerror=alert(1)&gt; &amp; co</p>'
    inner = render.render("heading.html", title="a<b")
    outer = render.render("note.html", text=inner, tag="span")
    assert outer == '<span class="note"><h2>a&lt;b</h2></span>'  # Markup is not escaped twice
    assert render.render("note.html", text="t", title="<T>").startswith("<h2>&lt;T&gt;</h2>")


def test_static_files_ship_with_the_package() -> None:
    for name in ("report.css", "tabs.css", "heatmap.js", "metrics_filter.js", "portfolio.js"):
        assert len(render.static_text(name)) > 100, name
    css = render.stylesheet("report.css").css
    assert "--good: #1a9850" in css and "var(--good)" in css  # the palette of figures.COLORS


def test_format_helpers() -> None:
    assert fmt.seconds(0.4239) == "0.42 s" and fmt.seconds(150) == "2.5 min"
    assert fmt.seconds("n/a") == "n/a"
    assert fmt.number(0.1234, "total_return") == "12.3%"
    assert fmt.number(1.234, "sharpe") == "1.23" and fmt.number(12345.0, "n_orders") == "12,345"
    assert fmt.number(float("nan"), "sharpe") == fmt.MISSING
    assert fmt.nbytes(2 * 2**30) == "2.0 GiB" and fmt.nbytes(512) == "512.0 B"
    assert fmt.nbytes(None) == fmt.MISSING and fmt.nbytes(0) == fmt.MISSING
    texts, colors = fmt.cell_text(np.array([0.01234, np.nan, 1.0]), "total_return", True)
    assert texts == ["1.23%", "", "100%"] and colors == ["#ffffff", "#ffffff", "#222222"]
    assert fmt.cell_text(np.array([1.0, 2.0]), "sharpe", False)[0] == ["", ""]
