"""Assemble ``report.html``: one standalone Bokeh document (inline JS/CSS, no network).

Every panel embeds aggregates only: quantile bands instead of 10,000 curves, one metrics row per
portfolio, and orders/prices for the handful of portfolios the Portfolio tab can show.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    BooleanFilter,
    CDSView,
    ColumnDataSource,
    CustomJS,
    DataTable,
    DateFormatter,
    Div,
    FactorRange,
    HoverTool,
    InlineStyleSheet,
    Legend,
    NumberFormatter,
    NumeralTickFormatter,
    Select,
    Span,
    StringFormatter,
    TableColumn,
    TabPanel,
    Tabs,
    TextInput,
)
from bokeh.plotting import figure
from bokeh.resources import INLINE
from bokeh.transform import dodge

from admf_dask.errors import InputError
from admf_dask.report import _aggregate as agg
from admf_dask.report import _load
from admf_dask.report.figures import (
    COLORS,
    FONT,
    PERCENT_METRICS,
    WIDTH,
    Line,
    _band_plot,
    _drawdown_plot,
    _heatmap_plot,
    axis_format,
    band_source,
    constant_param,
    heatmap_title,
    highlighted_lines,
    metric_format,
    portfolio_label,
    style,
    style_legend,
)

#: Portfolio tab: how many top portfolios (by the score) besides best/median/worst
TOP_N = 5
#: embedded order rows across all selectable portfolios (the rest are counted, not drawn)
MAX_ORDER_ROWS = 20_000
#: symbols whose close prices are embedded (most traded by the selectable portfolios first)
MAX_PRICE_SYMBOLS = 30
#: heatmap cells above which the per-cell numbers are hidden (they would overlap)
MAX_CELL_LABELS = 400

CSS = f"""
:host {{ font-family: {FONT}; color: #222; }}
h1 {{ font-size: 22px; margin: 0 0 2px 0; font-weight: 650; }}
h2 {{ font-size: 15px; margin: 14px 0 6px 0; font-weight: 650; }}
.sub {{ color: #666; font-size: 12.5px; }}
.sub code, td code {{ font-size: 12px; background: #eef1f5; padding: 0 4px; border-radius: 3px; }}
.cards {{ display: flex; gap: 10px; margin: 12px 0 4px 0; flex-wrap: wrap; }}
.card {{ background: #fff; border: 1px solid #e3e6ea; border-radius: 8px; padding: 8px 14px;
  min-width: 118px; }}
.card .k {{ color: #777; font-size: 11px; text-transform: uppercase; letter-spacing: .04em; }}
.card .v {{ font-size: 19px; font-weight: 650; margin-top: 2px; }}
.card .v.good {{ color: {COLORS["best"]}; }} .card .v.bad {{ color: {COLORS["worst"]}; }}
.card .v.mid {{ color: {COLORS["median"]}; }}
.warn {{ background: #fff4e5; border: 1px solid #f5c07a; color: #7a4a00; border-radius: 6px;
  padding: 6px 10px; margin-top: 8px; font-size: 12.5px; }}
.note {{ color: #666; font-size: 12px; margin: 4px 0; }}
table.kv {{ border-collapse: collapse; font-size: 12.5px; }}
table.kv td, table.kv th {{ padding: 3px 10px 3px 0; text-align: left; vertical-align: top;
  border-bottom: 1px solid #eee; }}
table.kv th {{ color: #666; font-weight: 500; white-space: nowrap; }}
.pill {{ display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 11.5px; }}
.hit {{ background: #e3f4e8; color: #1a7f3c; }} .miss {{ background: #fdecea; color: #a3261b; }}
pre {{ background: #f6f8fa; border: 1px solid #e3e6ea; border-radius: 6px; padding: 8px;
  font-size: 11.5px; max-height: 360px; overflow: auto; }}
ul {{ margin: 4px 0; padding-left: 18px; font-size: 12.5px; }}
"""

TABS_CSS = f"""
.bk-header {{ font-family: {FONT}; font-size: 13.5px; border-bottom: 1px solid #d9dde3; }}
.bk-tab {{ padding: 7px 18px; color: #555; }}
.bk-tab.bk-active {{ color: #111; font-weight: 600; border-color: #d9dde3;
  border-bottom-color: #f5f6f8; background: #ffffff; }}
"""

PAGE_TEMPLATE = """{% block postamble %}
<style>
  body { background: #f5f6f8; padding: 14px 18px !important; box-sizing: border-box; }
</style>
{% endblock %}
"""


def div(text: str, width: int = WIDTH, **kw: Any) -> Div:
    """An HTML block (the text must already be escaped); `build_report` gives it the CSS."""
    return Div(text=text, width=width, **kw)


def esc(v: Any) -> str:
    return html.escape(str(v))


@dataclass
class Choice:
    """A portfolio selectable on the Portfolio tab."""

    role: str
    pid: int
    label: str


# -- helpers ---------------------------------------------------------------------------------------
def _score(run: _load.RunData, ds: xr.Dataset) -> tuple[str, np.ndarray]:
    """The ranking metric: sharpe, else total return (from the metrics or from the curves)."""
    for name in ("sharpe", "total_return"):
        v = run.metrics.get(name)
        if v is not None and np.isfinite(v).any():
            return name, v
    first, last = (np.asarray(ds["equity"].isel(time=i).values, np.float64) for i in (0, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return "total_return", last / first - 1.0


def _choices(
    run: _load.RunData,
    score: np.ndarray,
    score_name: str,
    chosen: int | None,
    top: int,
    pick: np.ndarray | None = None,
) -> list[Choice]:
    """Best, median, worst and top portfolios by ``pick`` (default ``score``; NaN: not picked)."""
    pick = score if pick is None else pick
    best, median, worst = agg.pick_best_median_worst(pick)
    roles: list[tuple[str, int]] = []
    if chosen is not None:
        roles.append(("chosen", chosen))
    roles += [("best", best), ("median", median), ("worst", worst)]
    roles += [(f"top {k + 1}", int(p)) for k, p in enumerate(agg.top_n(pick, top)) if k > 0]
    merged: dict[int, list[str]] = {}
    for role, pid in roles:
        merged.setdefault(pid, []).append(role)
    out = []
    for pid, rs in merged.items():
        grid = portfolio_label(run.params, pid, max_len=60)
        s = score[pid]
        label = f"{' / '.join(rs)} · #{pid}" + (f" · {grid}" if grid else "")
        if np.isfinite(s):
            label += f" · {score_name} {s:.2f}"
        out.append(Choice(rs[0], pid, label))
    return out


def _fmt_seconds(s: Any) -> str:
    try:
        v = float(s)
    except (TypeError, ValueError):
        return esc(s)
    return f"{v:.2f} s" if v < 60 else f"{v / 60:.1f} min"


def _fmt_num(v: float, metric: str) -> str:
    if not np.isfinite(v):
        return "–"
    if metric in PERCENT_METRICS:
        return f"{v:.1%}"
    return f"{v:,.0f}" if metric == "n_orders" else f"{v:.2f}"


def _period(run: _load.RunData) -> str:
    if len(run.time) == 0:
        return "–"
    return f"{run.time[0]:%Y-%m-%d} → {run.time[-1]:%Y-%m-%d}"


# -- Overview --------------------------------------------------------------------------------------
def _header(
    run: _load.RunData, score_name: str, score: np.ndarray, lines: Sequence[Line], n_orders: int
) -> Div:
    m = run.manifest
    data = m.get("data") or {}
    name = m.get("name") or (m.get("config") or {}).get("name") or run.run_dir.name
    sub = [
        f"run <code>{esc(m.get('run_id', '–'))}</code>",
        f"data <b>{esc(data.get('source', '–'))}</b>",
        esc(_period(run)),
        f"config <code>{esc(str(m.get('config_hash', '–'))[:12])}</code>",
    ]
    total = (m.get("timings") or {}).get("total")
    cards = [
        ("Portfolios", f"{run.n_portfolios:,}", ""),
        ("Symbols", f"{len(run.symbols):,}", ""),
        ("Bars", f"{len(run.time):,}", ""),
    ]
    for ln, cls in zip(lines, ("good", "mid", "bad"), strict=False):
        cards.append(
            (f"{ln.role} {score_name}", _fmt_num(float(score[ln.portfolio]), score_name), cls)
        )
    if "max_drawdown" in run.metrics and lines:
        cards.append(
            (
                f"max DD of {lines[0].role} {score_name}",  # that portfolio's, not the best DD
                _fmt_num(float(run.metrics["max_drawdown"][lines[0].portfolio]), "max_drawdown"),
                "",
            )
        )
    cards.append(("Orders", f"{n_orders:,}" if n_orders else "–", ""))
    if total is not None:
        cards.append(("Run time", _fmt_seconds(total), ""))
    card_html = "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v {c}">{esc(v)}</div></div>'
        for k, v, c in cards
    )
    warns = m.get("warnings") or []
    warn_html = ""
    if warns:
        first = "; ".join(esc(w) for w in warns[:2])
        more = f" (+{len(warns) - 2} more on the Run tab)" if len(warns) > 2 else ""
        warn_html = f'<div class="warn">⚠ {len(warns)} warning(s): {first}{more}</div>'
    text = (
        f"<h1>{esc(name)}</h1><div class='sub'>{' · '.join(sub)}</div>"
        f"<div class='cards'>{card_html}</div>{warn_html}"
    )
    return div(text)


def _histogram(values: np.ndarray, name: str, lines: Sequence[Line], width: int) -> figure:
    v = values[np.isfinite(values)]
    fig = figure(
        title=f"Distribution of {name} ({v.size:,} portfolios)",
        width=width,
        height=260,
        tools="save",
        toolbar_location=None,
        x_axis_label=name,
        y_axis_label="portfolios",
    )
    style(fig)
    if v.size:
        counts, edges = np.histogram(v, bins=min(40, max(5, int(np.sqrt(v.size)))))
        fig.quad(
            top=counts,
            bottom=0,
            left=edges[:-1],
            right=edges[1:],
            fill_color=COLORS["band"],
            fill_alpha=0.55,
            line_color="#ffffff",
        )
        for ln in lines:
            x = values[ln.portfolio]
            if np.isfinite(x):
                fig.add_layout(
                    Span(
                        location=float(x),
                        dimension="height",
                        line_color=COLORS.get(ln.role, "#333"),
                        line_width=2,
                    )
                )
        fig.xaxis.formatter = NumeralTickFormatter(format=axis_format(name))
    fig.y_range.start = 0
    return fig


def _overview(
    run: _load.RunData,
    band: _load.Band,
    lines: list[Line],
    score_name: str,
    score: np.ndarray,
    n_orders: int,
) -> Any:
    src = band_source(run.time.values, band, lines)
    eq = _band_plot(
        src,
        band,
        lines,
        title=f"Equity: best, median and worst of {run.n_portfolios:,} portfolios by {score_name}"
        ", over the distribution of all",
        width=WIDTH,
        height=420,
    )
    dd = _drawdown_plot(src, lines, x_range=eq.x_range, width=WIDTH - 470, height=260)
    hist = _histogram(score, score_name, lines, width=460)
    return column(_header(run, score_name, score, lines, n_orders), eq, row(dd, hist))


# -- Metrics table ---------------------------------------------------------------------------------
def _metrics_source(run: _load.RunData, score: np.ndarray) -> ColumnDataSource:
    """One row per portfolio, best score first: id, grid values, level codes (for the JS filters
    and the heatmap), metrics.

    float32 and small integer codes: at 10,000 portfolios this source is most of the data.
    """
    n = run.n_portfolios
    order = np.concatenate([agg.top_n(score, n), np.flatnonzero(~np.isfinite(score))])
    data: dict[str, Any] = {"portfolio": order.astype(np.int32)}
    for p in run.params:
        data[p.name] = (
            np.asarray(p.values, np.float32)[order]
            if p.numeric
            else [p.levels[c] for c in p.codes[order]]  # labels: 'none' for missing
        )
        data[f"_c_{p.name}"] = _small_codes(p.codes[order], len(p.levels))
    for k, v in run.metrics.items():
        data[k] = np.asarray(v, np.float32)[order]
    return ColumnDataSource(data, name="metrics_source")


def _small_codes(codes: np.ndarray, n_levels: int) -> np.ndarray:
    return codes.astype(np.int8 if n_levels < 128 else np.int16 if n_levels < 32768 else np.int32)


def _metrics_tab(run: _load.RunData, src: ColumnDataSource) -> Any:
    columns = [TableColumn(field="portfolio", title="#", width=60)]
    for p in run.params:
        fmt = (
            NumberFormatter(format="0[.][0000]", nan_format="none", text_align="right")
            if p.numeric
            else StringFormatter()
        )
        columns.append(TableColumn(field=p.name, title=p.name, formatter=fmt, width=110))
    for k in run.metrics:
        columns.append(
            TableColumn(
                field=k,
                title=k,
                width=95,
                formatter=NumberFormatter(format=metric_format(k), text_align="right"),
            )
        )
    filt = BooleanFilter(name="metrics_filter")
    table = DataTable(
        source=src,
        view=CDSView(filter=filt),
        columns=columns,
        width=WIDTH,
        height=620,
        sortable=True,
        reorderable=False,
        index_position=None,
        row_height=24,
        name="metrics_table",
    )
    selects = [
        Select(
            title=p.name,
            value="(all)",
            options=["(all)", *p.levels],
            width=140,
            name=f"filter_{p.name}",
        )
        for p in run.params
        if p.varies
    ]
    metric_names = list(run.metrics) or ["portfolio"]
    msel = Select(
        title="metric",
        value=metric_names[0],
        options=metric_names,
        width=150,
        name="filter_metric",
    )
    lo = TextInput(title="≥", placeholder="e.g. 0.5", width=110, name="filter_min")
    hi = TextInput(title="≤", placeholder="e.g. 2", width=110, name="filter_max")
    info = div(
        f"{run.n_portfolios:,} of {run.n_portfolios:,} portfolios", width=300, name="metrics_info"
    )
    cb = CustomJS(
        args={
            "src": src,
            "filt": filt,
            "selects": selects,
            "names": [p.name for p in run.params if p.varies],
            "levels": {p.name: p.levels for p in run.params},
            "msel": msel,
            "lo": lo,
            "hi": hi,
            "info": info,
        },
        code="""
const d = src.data, n = d['portfolio'].length, keep = new Array(n).fill(true);
selects.forEach((s, j) => {
  if (s.value === '(all)') return;
  const code = levels[names[j]].indexOf(s.value), c = d['_c_' + names[j]];
  for (let i = 0; i < n; i++) if (c[i] !== code) keep[i] = false;
});
const m = d[msel.value], a = parseFloat(lo.value), b = parseFloat(hi.value);
for (let i = 0; i < n; i++) {
  if (!isNaN(a) && !(m[i] >= a)) keep[i] = false;
  if (!isNaN(b) && !(m[i] <= b)) keep[i] = false;
}
filt.booleans = keep;
const k = keep.reduce((s, x) => s + (x ? 1 : 0), 0);
info.text = `${k.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} portfolios`;
""",
    )
    for w in (*selects, msel):
        w.js_on_change("value", cb)
    for w in (lo, hi):
        w.js_on_change("value", cb)
        w.js_on_change("value_input", cb)
    note = div(
        "<span class='note'>Click a header to sort; filter by grid parameter and by a metric "
        "range (returns and drawdowns are fractions: 0.1 = 10 %).</span>"
    )
    return column(row(*selects, msel, lo, hi, info), note, table)


# -- Grid heatmap ----------------------------------------------------------------------------------
HEAT_JS = """
const m = metric.value; let px = xs.value, py = ys.value;
if (px === py) {
  const other = names.find(n => n !== px);
  if (other !== undefined && cb_obj !== ys) { ys.value = other; return; }
  if (other !== undefined) { xs.value = names.find(n => n !== py); return; }
}
const d = src.data, v = d[m], cx = d['_c_' + px], cy = d['_c_' + py];
const lx = levels[px], ly = levels[py], nx = lx.length, ny = ly.length;
const sum = new Float64Array(nx * ny), cnt = new Int32Array(nx * ny);
for (let i = 0; i < v.length; i++) {
  const x = v[i];
  if (Number.isFinite(x)) { const c = cy[i] * nx + cx[i]; sum[c] += x; cnt[c] += 1; }
}
const X = [], Y = [], V = [], C = [];
let lo = Infinity, hi = -Infinity;
for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
  const c = j * nx + i, val = cnt[c] ? sum[c] / cnt[c] : NaN;
  X.push(lx[i]); Y.push(ly[j]); V.push(val); C.push(cnt[c]);
  if (Number.isFinite(val)) { lo = Math.min(lo, val); hi = Math.max(hi, val); }
}
if (!Number.isFinite(lo)) { lo = 0; hi = 1; } else if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
const pct = percent.includes(m), show = nx * ny <= max_labels;
const T = V.map(val => (!show || !Number.isFinite(val)) ? '' :
  (pct ? Number((val * 100).toPrecision(3)) + '%' : String(Number(val.toPrecision(3)))));
const TC = V.map(val => Number.isFinite(val) && (val - lo) / (hi - lo) > 0.62 ? '#222222' : '#ffffff');
fig.x_range.factors = lx; fig.y_range.factors = ly;
mapper.low = lo; mapper.high = hi;
bar.formatter.format = axis_formats[m];
heat.data = {x: X, y: Y, value: V, count: C, text: T, text_color: TC};
fig.title.text = `Mean ${m} by ${px} × ${py} (averaged over the other parameters)`;
fig.below[0].axis_label = px; fig.left[0].axis_label = py;
[[px, lx, nx], [py, ly, ny]].forEach(([name, lv, n], k) => {  // the two marginal means
  const [mf, ms] = margins[k], s2 = new Float64Array(n), c2 = new Int32Array(n);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const c = j * nx + i, at = k === 0 ? i : j;
    s2[at] += sum[c]; c2[at] += cnt[c];
  }
  mf.x_range.factors = lv;
  ms.data = {x: lv, value: Array.from(s2, (v, i) => c2[i] ? v / c2[i] : NaN), count: Array.from(c2)};
  mf.title.text = `Mean ${m} by ${name}`;
  mf.left[0].formatter.format = axis_formats[m];
});
hover.tooltips = [[px, '@x'], [py, '@y'], ['mean ' + m, '@value{' + formats[m] + '}'],
                  ['portfolios', '@count']];
"""


def _cell_text(values: np.ndarray, metric: str, show: bool) -> tuple[list[str], list[str]]:
    lo, hi = (np.nanmin(values), np.nanmax(values)) if np.isfinite(values).any() else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    texts, colors = [], []
    for v in values:
        if not np.isfinite(v) or not show:
            texts.append("")
        elif metric in PERCENT_METRICS:
            texts.append(f"{float(f'{v * 100:.3g}'):g}%")
        else:
            texts.append(f"{float(f'{v:.3g}'):g}")
        colors.append("#222222" if np.isfinite(v) and (v - lo) / span > 0.62 else "#ffffff")
    return texts, colors


def _grid_tab(run: _load.RunData, src: ColumnDataSource) -> Any:
    varying = [p for p in run.params if p.varies]
    if not run.metrics:
        return div("<h2>Grid</h2><p class='note'>No metrics in results.zarr.</p>")
    if not varying:
        return div(
            "<h2>Grid</h2><p class='note'>The grid has no parameter with more than one value: "
            "nothing to compare.</p>"
        )
    axes = list(varying)
    if len(axes) == 1:  # one varying parameter: a one-row heatmap against a constant axis
        const = constant_param(run.n_portfolios)
        axes.append(const)
        src.data["_c_all"] = _small_codes(const.codes, 1)
    metric = "sharpe" if "sharpe" in run.metrics else next(iter(run.metrics))
    px, py = axes[0], axes[1]
    values = run.metrics[metric]
    h = int(min(640, max(480, 70 + 46 * len(py.levels))))  # at least the two margins' height
    fig, heat, mapper = _heatmap_plot(values, px, py, metric, width=1000, height=h)
    show = len(px.levels) * len(py.levels) <= MAX_CELL_LABELS
    heat.data["text"], heat.data["text_color"] = _cell_text(heat.data["value"], metric, show)
    text_r = fig.select_one({"name": "cell_text"})
    text_r.glyph.text_color = {"field": "text_color"}
    names = [p.name for p in axes]
    msel = Select(
        title="metric", value=metric, options=list(run.metrics), width=180, name="heat_metric"
    )
    xs = Select(title="x parameter", value=px.name, options=names, width=180, name="heat_x")
    ys = Select(title="y parameter", value=py.name, options=names, width=180, name="heat_y")
    heat.name = "heat_source"
    cb = CustomJS(
        args={
            "src": src,
            "heat": heat,
            "fig": fig,
            "mapper": mapper,
            "bar": fig.right[0],
            "hover": fig.select_one(HoverTool),
            "metric": msel,
            "xs": xs,
            "ys": ys,
            "names": names,
            "levels": {p.name: p.levels for p in axes},
            "formats": {k: metric_format(k) for k in run.metrics},
            "axis_formats": {k: axis_format(k) for k in run.metrics},
            "percent": [k for k in run.metrics if k in PERCENT_METRICS],
            "max_labels": MAX_CELL_LABELS,
        },
        code=HEAT_JS,
    )
    for w in (msel, xs, ys):
        w.js_on_change("value", cb)
    fig.title.text = heatmap_title(metric, px.name, py.name)
    margins = [_marginal_plot(values, p, metric, f"marg_{k}") for k, p in enumerate((px, py))]
    cb.args["margins"] = [(f, f.renderers[0].data_source) for f in margins]
    note = div(
        f"<p class='note'>Each cell is the mean over the portfolios sharing that pair of values "
        f"({run.n_portfolios:,} portfolios, {len(run.params)} grid parameter(s)); grey cells have "
        "no finite value. Hover for the count.</p>",
        width=1000,
    )
    return column(row(msel, xs, ys), note, row(fig, column(*margins)))


def _marginal_plot(values: np.ndarray, p: _load.Param, metric: str, name: str) -> figure:
    """Mean of the metric per value of one parameter (everything else averaged out)."""
    mean, count = agg.group_mean(values, p.codes, np.zeros_like(p.codes), len(p.levels), 1)
    src = ColumnDataSource({"x": list(p.levels), "value": mean[0], "count": count[0]})
    f = figure(
        title=f"Mean {metric} by {p.name}",
        x_range=FactorRange(factors=list(p.levels)),
        width=350,
        height=240,
        tools="save",
        toolbar_location=None,
        name=name,
    )
    style(f)
    f.min_border_left = 60
    f.xgrid.grid_line_color = None
    f.vbar(x="x", top="value", width=0.7, source=src, color=COLORS["bar1"], fill_alpha=0.85)
    f.add_layout(Span(location=0, dimension="width", line_color="#888888", line_width=1))
    f.title.text_font_size = "13px"
    f.yaxis.formatter = NumeralTickFormatter(format=axis_format(metric))
    f.add_tools(HoverTool(tooltips=[(p.name, "@x"), ("mean", "@value{0.000}"), ("n", "@count")]))
    return f


# -- Portfolio tab ---------------------------------------------------------------------------------
PORTFOLIO_JS = """
const k = Number(choice.value);
const syms = symbols_by_choice[k] || [];
const opts = syms.length ? syms : ['(no orders)'];
if (JSON.stringify(sym.options) !== JSON.stringify(opts)) sym.options = opts;
if (!opts.includes(sym.value)) { sym.value = opts[0]; return; }  // re-runs this callback
const s = sym.value, P = pdata.data, zero = new Float32Array(P.time.length);
cur.data = {time: P.time, equity: P['eq_' + k], dd: P['dd_' + k],
            gross: P['gross_' + k] || zero, net: P['net_' + k] || zero};
info.text = infos[k];
const O = orders.data, n = O.choice ? O.choice.length : 0;
const T = {time: [], symbol: [], qty: [], price: [], value: [], commission: [], reason: []};
const M = {buy: {time: [], price: [], qty: [], reason: []}, sell: {time: [], price: [], qty: [], reason: []},
           stop: {time: [], price: [], qty: [], reason: []}};
for (let i = 0; i < n; i++) {
  if (O.choice[i] !== k) continue;
  const symbol = symbol_names[O.sym[i]], reason = reason_names[O.reason[i]];
  T.time.push(O.time[i]); T.symbol.push(symbol); T.qty.push(O.qty[i]); T.price.push(O.price[i]);
  T.value.push(O.qty[i] * O.price[i]); T.commission.push(O.commission[i]); T.reason.push(reason);
  if (symbol !== s) continue;
  const kind = reason !== 'signal' ? 'stop' : (O.qty[i] > 0 ? 'buy' : 'sell');
  M[kind].time.push(O.time[i]); M[kind].price.push(O.price[i]);
  M[kind].qty.push(O.qty[i]); M[kind].reason.push(reason);
}
table.data = T; buy.data = M.buy; sell.data = M.sell; stop.data = M.stop;
if (s in prices.data) {
  price_view.data = {time: prices.data.time, price: prices.data[s]};
  price_fig.title.text = `${s}: close price with the fills of the selected portfolio`;
} else {
  const F = T.time.map((t, i) => [t, T.price[i], T.symbol[i]]).filter(r => r[2] === s);
  price_view.data = {time: F.map(r => r[0]), price: F.map(r => r[1])};
  price_fig.title.text = `${s}: fill prices of the selected portfolio (close prices not available)`;
}
"""


def _choice_info(run: _load.RunData, c: Choice, n_orders: int, shown: int) -> str:
    rows = [f"<b>#{c.pid}</b> ({esc(c.role)})"]
    rows += [f"{esc(p.name)} = <b>{esc(p.levels[p.codes[c.pid]])}</b>" for p in run.params]
    rows += [
        f"{esc(k)} <b>{_fmt_num(float(v[c.pid]), k)}</b>"
        for k, v in run.metrics.items()
        if k in ("sharpe", "total_return", "max_drawdown", "n_orders", "turnover")
    ]
    orders = (
        f"{shown:,} of {n_orders:,} orders shown" if shown < n_orders else f"{n_orders:,} orders"
    )
    return f"<div class='sub'>{' · '.join(rows)} · {orders}</div>"


@dataclass
class _PortfolioData:
    """What the Portfolio tab embeds for its few selectable portfolios."""

    series: dict[str, Any]  # time, eq_k, dd_k, gross_k, net_k (k: choice index)
    orders: dict[str, Any]  # columns choice, sym, time, qty, price, commission, reason (codes)
    prices: dict[str, Any]  # time and one close column per embedded symbol
    symbols: list[str]  # symbol names (orders.sym codes)
    reasons: list[str]  # reason names (orders.reason codes)
    symbols_by_choice: list[list[str]]  # symbols with embedded orders, most traded first
    infos: list[str]  # one HTML line per choice
    has_close: bool  # exposure marked at close prices (else at fill prices)


def _portfolio_data(
    run: _load.RunData,
    ds: xr.Dataset,
    choices: list[Choice],
    orders: pd.DataFrame | None,
    prices: pd.DataFrame | None,
) -> _PortfolioData:
    """Equity, drawdown and exposure of each choice; its orders (capped) and close prices."""
    ids = [c.pid for c in choices]
    eq = _load.equity_columns(ds["equity"], ids)
    times = run.time.values
    n_t = len(times)
    pdata: dict[str, Any] = {"time": times}
    symbols = list(run.symbols)
    if orders is not None:
        symbols += sorted(set(orders["symbol"]) - set(symbols))
    sym_pos = {s: i for i, s in enumerate(symbols)}
    price_mat = None
    if prices is not None:
        price_mat = prices.reindex(index=pd.DatetimeIndex(times), columns=symbols).to_numpy(
            np.float64
        )
    reasons = ["signal", "stop", "halt"]
    if orders is not None:
        reasons += sorted(set(orders["reason"]) - set(reasons))
    per_choice_cap = max(500, MAX_ORDER_ROWS // max(len(choices), 1))
    kept_frames, symbols_by_choice, infos = [], [], []
    traded_count: dict[str, int] = {}
    for k, c in enumerate(choices):
        pdata[f"eq_{k}"] = eq[:, k].astype(np.float32)
        pdata[f"dd_{k}"] = agg.drawdown(eq[:, k]).astype(np.float32)
        sub = orders[orders["portfolio"] == c.pid] if orders is not None else None
        n_sub = 0 if sub is None else len(sub)
        if sub is not None and n_sub:
            when = sub["time"].values.astype("datetime64[ns]")
            t_idx = np.clip(np.searchsorted(times, when, side="right") - 1, 0, n_t - 1)
            s_idx = sub["symbol"].map(sym_pos).to_numpy()
            shares = agg.positions_from_orders(t_idx, s_idx, sub["qty"].values, n_t, len(symbols))
            # mark at the close; a symbol without close prices at its last fill price
            marks = np.full((n_t, len(symbols)), np.nan)
            marks[t_idx, s_idx] = sub["price"].values
            if price_mat is not None:
                has_close = np.isfinite(price_mat).any(axis=0)
                marks[:, has_close] = price_mat[:, has_close]
            gross, net = agg.exposure(shares, marks, eq[:, k])
            pdata[f"gross_{k}"] = gross.astype(np.float32)
            pdata[f"net_{k}"] = net.astype(np.float32)
            counts = sub["symbol"].value_counts(sort=True)
            keep_syms, total = [], 0
            for s, cnt in counts.items():  # whole symbols, most traded first, up to the cap
                if keep_syms and total + cnt > per_choice_cap:
                    continue
                keep_syms.append(str(s))
                total += int(cnt)
            kept = sub[sub["symbol"].isin(keep_syms)].head(per_choice_cap).assign(choice=k)
            kept_frames.append(kept)
            symbols_by_choice.append(keep_syms)
            for s, cnt in counts.items():
                traded_count[str(s)] = traded_count.get(str(s), 0) + int(cnt)
            infos.append(_choice_info(run, c, n_sub, len(kept)))
        else:
            symbols_by_choice.append([])
            infos.append(_choice_info(run, c, 0, 0))
    allo = pd.concat(kept_frames, ignore_index=True) if kept_frames else None
    odata: dict[str, Any] = {
        k: [] for k in ("choice", "sym", "time", "qty", "price", "commission", "reason")
    }
    if allo is not None:
        odata = {
            "choice": allo["choice"].to_numpy(np.int32),
            "sym": allo["symbol"].map(sym_pos).to_numpy(np.int32),
            "time": allo["time"].values,
            "qty": allo["qty"].to_numpy(np.float64),
            "price": allo["price"].to_numpy(np.float64),
            "commission": (
                allo["commission"].to_numpy(np.float64)
                if "commission" in allo
                else np.zeros(len(allo))
            ),
            "reason": allo["reason"].map({r: i for i, r in enumerate(reasons)}).to_numpy(np.int32),
        }
    # close prices of the most traded symbols only: 100 symbols × 2,520 bars would dominate the file
    price_cols: dict[str, Any] = {"time": times}
    if prices is not None:
        ranked = sorted(traded_count, key=lambda s: -traded_count[s]) or list(prices.columns)
        for s in ranked[:MAX_PRICE_SYMBOLS]:
            col = price_mat[:, sym_pos[s]]  # type: ignore[index]
            if np.isfinite(col).any():
                price_cols[s] = col.astype(np.float32)

    return _PortfolioData(
        series=pdata,
        orders=odata,
        prices=price_cols,
        symbols=symbols,
        reasons=reasons,
        symbols_by_choice=symbols_by_choice,
        infos=infos,
        has_close=price_mat is not None,
    )


def _portfolio_tab(
    run: _load.RunData,
    ds: xr.Dataset,
    choices: list[Choice],
    orders: pd.DataFrame | None,
    prices: pd.DataFrame | None,
    price_note: str,
) -> tuple[Any, CustomJS]:
    """The Portfolio tab and its update callback (also run once at document_ready)."""
    d = _portfolio_data(run, ds, choices, orders, prices)
    pdata, symbols_by_choice, price_cols = d.series, d.symbols_by_choice, d.prices
    times = run.time.values
    n_t = len(times)
    has_orders = any(symbols_by_choice)
    pdata_src = ColumnDataSource(pdata)
    # the shown portfolio's series; starts as the first choice (document_ready refills it)
    cur = ColumnDataSource(
        {
            "time": times,
            "equity": pdata["eq_0"],
            "dd": pdata["dd_0"],
            "gross": pdata.get("gross_0", np.zeros(n_t, np.float32)),
            "net": pdata.get("net_0", np.zeros(n_t, np.float32)),
        },
        name="current_portfolio",
    )
    orders_src = ColumnDataSource(d.orders)
    prices_src = ColumnDataSource(price_cols)
    first = symbols_by_choice[0][0] if symbols_by_choice and symbols_by_choice[0] else None
    price_view = ColumnDataSource(
        {"time": times, "price": price_cols[first]}
        if first in price_cols
        else {"time": [], "price": []},
        name="price_shown",
    )
    empty = {"time": [], "price": [], "qty": [], "reason": []}
    buy, sell, stop = (ColumnDataSource(dict(empty), name=n) for n in ("buy", "sell", "stop"))
    table_src = ColumnDataSource(
        {k: [] for k in ("time", "symbol", "qty", "price", "value", "commission", "reason")},
        name="orders_shown",
    )

    choice_sel = Select(
        title="portfolio",
        value="0",
        options=[(str(k), c.label) for k, c in enumerate(choices)],
        width=620,
        name="portfolio_select",
    )
    sym_sel = Select(
        title="symbol",
        value="",
        options=[""],
        width=160,
        name="symbol_select",
        visible=has_orders,
    )
    info = div("", width=WIDTH)

    tools = "xpan,xwheel_zoom,box_zoom,reset,save"
    eqf = figure(
        title="Equity of the selected portfolio",
        x_axis_type="datetime",
        width=WIDTH // 2 - 10,
        height=250,
        tools=tools,
        active_scroll=None,
        y_axis_label="equity",
    )
    style(eqf, datetime_x=True)
    eqf.yaxis.formatter = NumeralTickFormatter(format="0,0")
    eqf.line("time", "equity", source=cur, color=COLORS["chosen"], line_width=1.8)
    eqf.add_tools(
        HoverTool(
            tooltips=[("date", "@time{%F}"), ("equity", "@equity{0,0}"), ("drawdown", "@dd{0.0%}")],
            formatters={"@time": "datetime"},
            mode="vline",
        )
    )
    side = figure(
        title=(
            "Exposure (fraction of equity)"
            + ("" if d.has_close else ", marked at last fill prices")
            if has_orders
            else "Drawdown of the selected portfolio"
        ),
        x_axis_type="datetime",
        width=WIDTH // 2 - 10,
        height=250,
        x_range=eqf.x_range,
        tools=tools,
        active_scroll=None,
    )
    style(side, datetime_x=True)
    side.yaxis.formatter = NumeralTickFormatter(format="0%")
    if has_orders:
        side.line(
            "time", "gross", source=cur, color=COLORS["gross"], line_width=1.6, legend_label="gross"
        )
        side.line(
            "time", "net", source=cur, color=COLORS["net"], line_width=1.2, legend_label="net"
        )
        side.legend.location = "top_left"
        side.legend.orientation = "horizontal"
        side.legend.background_fill_alpha = 0.6
        style_legend(side.legend[0])
        tips = [("date", "@time{%F}"), ("gross", "@gross{0.0%}"), ("net", "@net{0.0%}")]
    else:  # no orders: nothing to mark, so show how deep the selected portfolio fell
        side.varea("time", 0, "dd", source=cur, fill_color=COLORS["worst"], fill_alpha=0.35)
        side.line("time", "dd", source=cur, color=COLORS["worst"], line_width=1.2)
        tips = [("date", "@time{%F}"), ("drawdown", "@dd{0.0%}")]
    side.add_tools(HoverTool(tooltips=tips, formatters={"@time": "datetime"}, mode="vline"))
    pf = figure(
        title="Price",
        x_axis_type="datetime",
        width=WIDTH,
        height=320,
        x_range=eqf.x_range,
        tools=tools,
        active_scroll=None,
        y_axis_label="price",
    )
    style(pf, datetime_x=True)
    pf.line("time", "price", source=price_view, color="#555555", line_width=1.2)
    marker_tips = HoverTool(
        tooltips=[
            ("date", "@time{%F}"),
            ("qty", "@qty{0,0.[00]}"),
            ("price", "@price{0,0.00}"),
            ("reason", "@reason"),
        ],
        formatters={"@time": "datetime"},
    )
    rs = [
        pf.scatter("time", "price", source=buy, marker="triangle", size=9, color=COLORS["buy"]),
        pf.scatter(
            "time", "price", source=sell, marker="inverted_triangle", size=9, color=COLORS["sell"]
        ),
        pf.scatter(
            "time", "price", source=stop, marker="x", size=10, color=COLORS["stop"], line_width=2
        ),
    ]
    marker_tips.renderers = rs
    pf.add_tools(marker_tips)
    legend = Legend(
        items=[("buy", [rs[0]]), ("sell", [rs[1]]), ("stop / halt", [rs[2]])],
        location="top_left",
        orientation="horizontal",
    )
    style_legend(legend)
    pf.add_layout(legend)
    table = DataTable(
        source=table_src,
        columns=[
            TableColumn(field="time", title="time", formatter=DateFormatter(format="%Y-%m-%d")),
            TableColumn(field="symbol", title="symbol"),
            *(
                TableColumn(
                    field=f, title=f, formatter=NumberFormatter(format=fmt, text_align="right")
                )
                for f, fmt in (
                    ("qty", "0,0.[00]"),
                    ("price", "0,0.00"),
                    ("value", "0,0"),
                    ("commission", "0,0.00"),
                )
            ),
            TableColumn(field="reason", title="reason"),
        ],
        width=WIDTH,
        height=260,
        sortable=True,
        reorderable=False,
        index_position=None,
        row_height=24,
    )
    cb = CustomJS(
        args={
            "choice": choice_sel,
            "sym": sym_sel,
            "pdata": pdata_src,
            "cur": cur,
            "info": info,
            "infos": d.infos,
            "orders": orders_src,
            "symbols_by_choice": symbols_by_choice,
            "symbol_names": d.symbols,
            "reason_names": d.reasons,
            "table": table_src,
            "buy": buy,
            "sell": sell,
            "stop": stop,
            "prices": prices_src,
            "price_view": price_view,
            "price_fig": pf,
        },
        code=PORTFOLIO_JS,
    )
    choice_sel.js_on_change("value", cb)
    sym_sel.js_on_change("value", cb)
    notes = [f"Selectable: the {TOP_N} best by the score and the median and worst portfolio."]
    if orders is None:
        notes.append("This run wrote no orders (output.orders: false or none traded).")
    elif not d.has_close:
        notes.append(f"Close prices: {esc(price_note)}; positions are marked at fill prices.")
    parts: list[Any] = [
        row(choice_sel, sym_sel),
        info,
        row(eqf, side),
    ]
    if has_orders:
        parts += [pf, table]
    parts.append(div(f"<p class='note'>{' '.join(notes)}</p>"))
    return column(*parts), cb


# -- ML --------------------------------------------------------------------------------------------
def _has_ml(m: dict[str, Any]) -> bool:
    kinds = {"xgboost", "lstm", "mlp"}
    strategies = (m.get("config") or {}).get("strategies") or {}
    in_config = any(isinstance(s, dict) and s.get("kind") in kinds for s in strategies.values())
    return bool(m.get("ml")) or bool(m.get("trace")) or in_config


def _to_seconds(values: Sequence[Any]) -> np.ndarray:
    """Trace times as epoch seconds: numbers pass through, strings are parsed as timestamps."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = float(v)
        elif v is not None:
            try:
                out[i] = pd.Timestamp(v).timestamp()
            except (ValueError, TypeError):
                pass
    return out


def _ml_tab(m: dict[str, Any]) -> Any:
    parts: list[Any] = []
    rows = [
        {"strategy": str(name), **rec}
        for name, recs in (m.get("ml") or {}).items()
        for rec in (recs or [])
        if isinstance(rec, dict)
    ]
    if rows:
        df = pd.DataFrame(rows)
        df["fold"] = df.get("fold", pd.Series(range(len(df)))).astype(str)
        cols = [
            c
            for c in (
                "strategy",
                "fold",
                "train_start",
                "train_end",
                "predict_start",
                "predict_end",
                "n_train",
                "n_eval",
                "status",
                "ic",
                "rank_ic",
                "accuracy",
                "auc",
            )
            if c in df
        ]
        tdf = df[cols].copy()
        for c in ("train_start", "train_end", "predict_start", "predict_end"):
            if c in tdf:
                tdf[c] = pd.to_datetime(tdf[c], errors="coerce").dt.strftime("%Y-%m-%d")
        numfmt = {
            "n_train": "0,0",
            "n_eval": "0,0",
            "ic": "0.0000",
            "rank_ic": "0.0000",
            "accuracy": "0.00%",
            "auc": "0.000",
        }
        table = DataTable(
            source=ColumnDataSource(tdf),
            columns=[
                TableColumn(
                    field=c,
                    title=c,
                    formatter=NumberFormatter(format=numfmt[c], text_align="right")
                    if c in numfmt
                    else StringFormatter(),
                )
                for c in cols
            ],
            width=WIDTH,
            height=min(320, 30 + 25 * len(tdf)),
            index_position=None,
            sortable=True,
            reorderable=False,
            row_height=24,
        )
        parts += [div("<h2>Walk-forward folds: out-of-sample quality</h2>"), table]
        df["x"] = list(zip(df["strategy"], df["fold"], strict=True))
        factors = list(dict.fromkeys(df["x"]))
        src = ColumnDataSource(
            {
                "x": df["x"].tolist(),
                **{
                    c: pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
                    for c in ("ic", "rank_ic", "accuracy", "auc")
                    if c in df
                },
            }
        )
        figs = []
        for title, pair, ref in (
            ("IC and rank IC per fold", ("ic", "rank_ic"), 0.0),
            ("Accuracy and AUC per fold", ("accuracy", "auc"), 0.5),
        ):
            have = [c for c in pair if c in df]
            if not have:
                continue
            f = figure(
                title=title,
                x_range=FactorRange(*factors),
                width=WIDTH // 2 - 10,
                height=300,
                tools="save",
                toolbar_location=None,
            )
            style(f)
            f.xgrid.grid_line_color = None
            items = []
            for j, (c, color) in enumerate(
                zip(have, (COLORS["bar1"], COLORS["bar2"]), strict=False)
            ):
                off = (j - (len(have) - 1) / 2) * 0.36
                r = f.vbar(
                    x=dodge("x", off, range=f.x_range),
                    top=c,
                    width=0.34,
                    source=src,
                    color=color,
                )
                items.append((c, [r]))
            f.add_layout(
                Span(location=ref, dimension="width", line_color="#888", line_dash="dashed")
            )
            f.add_tools(
                HoverTool(tooltips=[("fold", "@x")] + [(c, f"@{c}{{0.000}}") for c in have])
            )
            lg = Legend(items=items, orientation="horizontal")
            style_legend(lg)
            f.add_layout(lg, "above")
            f.xaxis.major_label_orientation = 0.0
            figs.append(f)
        if figs:
            parts.append(row(*figs))
    trace = [t for t in (m.get("trace") or []) if isinstance(t, dict)]
    if trace:
        tr = pd.DataFrame(trace)
        start = _to_seconds(tr.get("start", pd.Series([None] * len(tr))).tolist())
        stop = _to_seconds(tr.get("stop", pd.Series([None] * len(tr))).tolist())
        t0 = np.nanmin(start) if np.isfinite(start).any() else 0.0
        tr["left"], tr["right"] = start - t0, stop - t0
        tr["duration"] = stop - start
        tr["worker"] = tr.get("worker", pd.Series(["?"] * len(tr))).astype(str)
        if "worker_name" in tr:  # 'ml-0 · tcp://…' reads better than the address alone
            named = tr["worker_name"].fillna("").astype(str)
            tr["worker"] = np.where(named != "", named + " · " + tr["worker"], tr["worker"])
        tr["stage"] = tr.get("stage", pd.Series(["task"] * len(tr))).astype(str)
        tr["color"] = [COLORS.get(s, "#888888") for s in tr["stage"]]
        for c in ("key", "model_id", "fold", "strategy"):
            tr[c] = tr[c].astype(str) if c in tr else ""
        tr = tr[np.isfinite(tr["left"]) & np.isfinite(tr["right"])]
        workers = sorted(tr["worker"].unique())
        f = figure(
            title="Where and how long models ran (one bar per ML task)",
            y_range=FactorRange(*workers),
            width=WIDTH,
            height=int(min(420, 110 + 44 * len(workers))),
            tools="xpan,xwheel_zoom,box_zoom,reset,save",
            active_scroll=None,
            x_axis_label="seconds since the first ML task started",
        )
        style(f)
        f.ygrid.grid_line_color = None
        items = []
        for stage in sorted(tr["stage"].unique()):
            sub = tr[tr["stage"] == stage]
            r = f.hbar(
                y="worker",
                left="left",
                right="right",
                height=0.6,
                color="color",
                fill_alpha=0.8,
                line_color="#ffffff",
                source=ColumnDataSource(
                    sub[
                        [
                            "worker",
                            "left",
                            "right",
                            "duration",
                            "stage",
                            "strategy",
                            "key",
                            "model_id",
                            "fold",
                            "color",
                        ]
                    ]
                ),
            )
            items.append((stage, [r]))
        f.add_tools(
            HoverTool(
                tooltips=[
                    ("stage", "@stage"),
                    ("strategy", "@strategy"),
                    ("worker", "@worker"),
                    ("model", "@model_id"),
                    ("fold", "@fold"),
                    ("key", "@key"),
                    ("duration", "@duration{0.000} s"),
                ]
            )
        )
        lg = Legend(items=items, orientation="horizontal")
        style_legend(lg)
        f.add_layout(lg, "above")
        busy = tr.groupby("worker")["duration"].sum()
        summary = ", ".join(f"{esc(w)}: {v:.2f} s" for w, v in busy.items())
        parts += [
            div(
                "<h2>ML tasks per worker</h2>"
                f"<p class='note'>{len(tr):,} tasks; busy time per worker: {summary}</p>"
            ),
            f,
        ]
    if not parts:
        parts.append(
            div(
                "<p class='note'>ML strategies are configured but the run recorded no "
                "fold quality or trace.</p>"
            )
        )
    return column(*parts)


# -- Run details -----------------------------------------------------------------------------------
def _kv(rows: Sequence[tuple[str, str]]) -> str:
    return (
        "<table class='kv'>"
        + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _run_tab(run: _load.RunData, n_orders: int, price_note: str) -> Any:
    m = run.manifest
    data = m.get("data") or {}
    syms = run.symbols
    sym_text = ", ".join(syms[:20]) + (f" … (+{len(syms) - 20})" if len(syms) > 20 else "")
    grid = (
        "<br>".join(
            f"{esc(p.name)}: {esc(', '.join(p.levels[:12]))}{' …' if len(p.levels) > 12 else ''}"
            for p in run.params
        )
        or "–"
    )
    cache = m.get("cache") or {}
    cache_html = (
        " ".join(f"{esc(k)} <span class='pill {esc(v)}'>{esc(v)}</span>" for k, v in cache.items())
        or "–"
    )
    left = _kv(
        [
            ("name", esc(m.get("name", "–"))),
            ("run id", f"<code>{esc(m.get('run_id', '–'))}</code>"),
            ("config hash", f"<code>{esc(m.get('config_hash', '–'))}</code>"),
            ("data source", esc(data.get("source", "–"))),
            ("fingerprint", f"<code>{esc(str(data.get('fingerprint', '–'))[:24])}</code>"),
            ("period", esc(_period(run)) + f" ({len(run.time):,} bars)"),
            ("symbols", f"{len(syms)}: {esc(sym_text)}"),
            ("portfolios", f"{run.n_portfolios:,}"),
            ("grid", grid),
            ("orders", f"{n_orders:,}" if n_orders else "none written"),
            ("cache", cache_html),
            ("prices", esc(price_note)),
            ("folder", f"<code>{esc(run.run_dir)}</code>"),
        ]
    )
    parts: list[Any] = []
    timings = {
        str(k): float(v)
        for k, v in (m.get("timings") or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    stages = [k for k in timings if k != "total"]
    tf = None
    if stages:
        src = ColumnDataSource({"stage": stages, "seconds": [timings[k] for k in stages]})
        total = timings.get("total")
        tf = figure(
            title="Time per stage" + (f" (total {_fmt_seconds(total)})" if total else ""),
            y_range=FactorRange(*reversed(stages)),
            width=560,
            height=50 + 34 * len(stages),
            tools="save",
            toolbar_location=None,
            x_axis_label="seconds",
        )
        style(tf)
        tf.ygrid.grid_line_color = None
        tf.hbar(y="stage", right="seconds", height=0.65, source=src, color=COLORS["bar1"])
        tf.add_tools(HoverTool(tooltips=[("stage", "@stage"), ("seconds", "@seconds{0.000}")]))
        tf.x_range.start = 0
    cluster = m.get("cluster") or {}
    workers = cluster.get("workers") or []
    wrows = "".join(
        "<tr>"
        + "".join(
            f"<td>{esc(x)}</td>"
            for x in (
                w.get("name", ""),
                w.get("address", ""),
                w.get("nthreads", ""),
                _fmt_bytes(w.get("memory_limit")),
                ", ".join(f"{k}={v}" for k, v in (w.get("resources") or {}).items()) or "–",
            )
        )
        + "</tr>"
        for w in workers
        if isinstance(w, dict)
    )
    cluster_html = (
        "<h2>Cluster</h2>"
        + _kv(
            [
                ("scheduler", f"<code>{esc(cluster.get('scheduler', '–'))}</code>"),
                ("dashboard", f"<code>{esc(cluster.get('dashboard', '–'))}</code>"),
                ("workers", str(len(workers))),
            ]
        )
        + (
            "<table class='kv' style='margin-top:6px'><tr><th>name</th><th>address</th>"
            f"<th>threads</th><th>memory</th><th>resources</th></tr>{wrows}</table>"
            if wrows
            else ""
        )
    )
    versions = m.get("versions") or {}
    ver_html = (
        "<h2>Versions</h2>" + ", ".join(f"{esc(k)} {esc(v)}" for k, v in versions.items())
        if versions
        else ""
    )
    right = [tf] if tf is not None else []
    right.append(div(cluster_html + f"<div class='note'>{ver_html}</div>", width=WIDTH - 700))
    parts.append(row(div("<h2>Run</h2>" + left, width=680), column(*right)))
    warns = m.get("warnings") or []
    if warns:
        items = "".join(f"<li>{esc(w)}</li>" for w in warns)
        parts.append(div(f"<h2>Warnings ({len(warns)})</h2><ul>{items}</ul>"))
    cfg = m.get("config")
    if cfg:
        parts.append(
            div(
                "<details><summary><b>Resolved configuration</b></summary><pre>"
                + esc(json.dumps(cfg, indent=2, default=str))
                + "</pre></details>"
            )
        )
    return column(*parts)


def _fmt_bytes(v: Any) -> str:
    try:
        b = float(v)
    except (TypeError, ValueError):
        return str(v or "–")
    if not math.isfinite(b) or b <= 0:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if b < 1024:
            return f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} PiB"


# -- entry point -----------------------------------------------------------------------------------
def build_report(
    run_dir: str | Path,
    out: Path | None = None,
    *,
    chosen_portfolio: int | None = None,
    market_data: xr.Dataset | None = None,
    top: int = TOP_N,
) -> Path:
    """Write the standalone HTML report of a run folder.

    Parameters
    ----------
    run_dir : str or Path
        A run folder (``run.json``, ``results.zarr``, optional ``orders.parquet/``).
    out : Path, optional
        Where to write; default ``run_dir / "report.html"``.
    chosen_portfolio : int, optional
        Portfolio id shown first on the Portfolio tab (default: the best by sharpe).
    market_data : xarray.Dataset, optional
        The run's market data (``close`` (time, symbol)) for price lines and exposure; when
        omitted it is reloaded from the run's data config if possible, else fill prices are used.
    top : int
        How many of the best portfolios are selectable on the Portfolio tab.

    Returns
    -------
    Path
        The written file. It opens offline: Bokeh's JS and CSS are inlined.

    Raises
    ------
    InputError
        The folder is not a run folder, or ``chosen_portfolio`` is out of range.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(str(run_dir), "no such run folder", "pass the folder a run wrote (--out)")
    ds = _load.open_results(run_dir)
    try:
        page = _render(run_dir, ds, chosen_portfolio, market_data, top)
    finally:
        ds.close()
    out = Path(out) if out is not None else run_dir / "report.html"
    tmp = out.with_name(out.name + ".tmp")  # never leave a half-written report behind
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def _render(
    run_dir: Path,
    ds: xr.Dataset,
    chosen_portfolio: int | None,
    market_data: xr.Dataset | None,
    top: int,
) -> str:
    """The report's HTML text."""
    run = _load.load_run(run_dir, ds)
    if chosen_portfolio is not None and not 0 <= chosen_portfolio < run.n_portfolios:
        raise InputError(
            "chosen_portfolio",
            f"portfolio {chosen_portfolio} is out of range",
            f"pick an id in 0…{run.n_portfolios - 1}",
        )
    score_name, score = _score(run, ds)
    band = _load.equity_band(ds["equity"])
    pick = _load.distinct_score(run, ds, score)  # best/worst lists: one portfolio per duplicate
    lines = highlighted_lines(ds["equity"], pick, run.params, score_name)
    choices = _choices(run, score, score_name, chosen_portfolio, top, pick)
    orders, n_orders = _load.read_orders(run_dir, [c.pid for c in choices])
    prices, price_note = (None, "the run wrote no orders")
    if orders is not None:
        traded = sorted(set(orders["symbol"]))
        prices, price_note = _load.load_prices(run.manifest, traded, market_data)

    metrics_src = _metrics_source(run, score)
    portfolio_panel, portfolio_cb = _portfolio_tab(run, ds, choices, orders, prices, price_note)
    tabs = [
        TabPanel(child=_overview(run, band, lines, score_name, score, n_orders), title="Overview"),
        TabPanel(child=_metrics_tab(run, metrics_src), title="Metrics"),
        TabPanel(child=_grid_tab(run, metrics_src), title="Grid"),
        TabPanel(child=portfolio_panel, title="Portfolio"),
    ]
    if _has_ml(run.manifest):
        tabs.append(TabPanel(child=_ml_tab(run.manifest), title="ML"))
    tabs.append(TabPanel(child=_run_tab(run, n_orders, price_note), title="Run"))
    root = Tabs(tabs=tabs, name="report_tabs", stylesheets=[InlineStyleSheet(css=TABS_CSS)])
    sheet = InlineStyleSheet(css=CSS)  # one model shared by every Div: the CSS is embedded once
    for d in root.select({"type": Div}):
        d.stylesheets = [sheet]
    doc = Document()
    doc.add_root(root)
    doc.js_on_event("document_ready", portfolio_cb)  # fills the Portfolio tab's first selection
    name = run.manifest.get("name") or run_dir.name
    doc.title = f"{name} · admf-dask report"
    return file_html(doc, resources=INLINE, title=doc.title, template=PAGE_TEMPLATE)
