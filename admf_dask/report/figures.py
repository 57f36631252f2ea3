"""Bokeh figures of the report, usable on their own in notebooks (``bokeh.io.show(fig)``), and
the report's palette and styling.

The public helpers take a run folder or a results `xarray.Dataset` and return plain Bokeh
figures; `build_report` draws the same figures from data it has already aggregated. The grid
heatmap lives in `admf_dask.report.heatmap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from bokeh.models import (
    ColumnDataSource,
    DatetimeTickFormatter,
    HoverTool,
    Legend,
    NumeralTickFormatter,
    Range1d,
    Title,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from admf_dask.report import _aggregate as agg
from admf_dask.report import _load

__all__ = ["drawdown_figure", "equity_band_figure"]

#: one palette everywhere: best / median / worst, the band, buys / sells / stops
COLORS = {
    "best": "#1a9850",
    "median": "#3b6fb6",
    "worst": "#d73027",
    "chosen": "#7b3294",
    "band": "#5b7fa6",
    "all_median": "#4d4d4d",
    "buy": "#1a9850",
    "sell": "#d73027",
    "stop": "#f28e2b",
    "gross": "#3b6fb6",
    "net": "#f28e2b",
    "train": "#7b3294",
    "inference": "#f28e2b",
    "bar1": "#3b6fb6",
    "bar2": "#9ecae1",
    "grid": "#e5e5e5",
    "benchmark": "#969696",
}
HEAT_PALETTE = Viridis256
WIDTH = 1360  # content width for a 1400-px screen
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
PERCENT_METRICS = {
    "total_return",
    "annual_return",
    "annual_volatility",
    "max_drawdown",
    "exposure",
}


def date_format() -> DatetimeTickFormatter:
    """Datetime ticks: '%b %Y' over months, years alone over decades (a new model per axis)."""
    return DatetimeTickFormatter(
        days="%d %b %Y", months="%b %Y", years="%Y", hours="%H:%M", minutes="%H:%M"
    )


def style(fig: figure, *, datetime_x: bool = False) -> figure:
    """The report's look: light grid, no outline, readable titles and ticks."""
    fig.title.text_font = FONT
    fig.title.text_font_size = "14px"
    fig.title.text_color = "#222222"
    fig.title.text_font_style = "bold"
    fig.outline_line_color = None
    fig.background_fill_color = "#ffffff"
    fig.border_fill_color = "#ffffff"
    fig.min_border_left = 70
    fig.min_border_right = 20
    fig.toolbar.logo = None
    fig.toolbar.autohide = True
    for ax in (*fig.xaxis, *fig.yaxis):
        ax.axis_line_color = "#bbbbbb"
        ax.major_tick_line_color = "#bbbbbb"
        ax.minor_tick_line_color = None
        ax.major_label_text_font = FONT
        ax.major_label_text_font_size = "11px"
        ax.major_label_text_color = "#444444"
        ax.axis_label_text_font = FONT
        ax.axis_label_text_font_size = "12px"
        ax.axis_label_text_font_style = "normal"
        ax.axis_label_text_color = "#444444"
    fig.xgrid.grid_line_color = COLORS["grid"]
    fig.ygrid.grid_line_color = COLORS["grid"]
    if datetime_x:
        fig.xaxis.formatter = date_format()
    return fig


TIME_TOOLS = "xpan,xwheel_zoom,box_zoom,reset,save"


def time_figure(
    title: str,
    width: int,
    height: int,
    *,
    y_label: str | None = None,
    y_format: str | None = None,
    x_range: Range1d | None = None,
) -> figure:
    """A styled figure over time: x pan/zoom tools, no scroll zoom, ``y_format`` a numeral
    format (e.g. ``"0,0"``, ``"0%"``); share ``x_range`` to pan with another figure."""
    kw = {"x_range": x_range} if x_range is not None else {}
    if y_label is not None:
        kw["y_axis_label"] = y_label
    fig = figure(
        title=title,
        x_axis_type="datetime",
        width=width,
        height=height,
        tools=TIME_TOOLS,
        active_scroll=None,
        **kw,
    )
    style(fig, datetime_x=True)
    if y_format is not None:
        fig.yaxis.formatter = NumeralTickFormatter(format=y_format)
    return fig


def style_legend(legend: Legend) -> None:
    legend.label_text_font = FONT
    legend.label_text_font_size = "11px"
    legend.background_fill_alpha = 0.85
    legend.border_line_color = None
    legend.click_policy = "hide"
    legend.spacing = 1
    legend.padding = 6


def axis_format(metric: str) -> str:
    """Numeral.js format of a metric on an axis or colour bar (coarser than in tables)."""
    if metric in PERCENT_METRICS:
        return "0[.][0]%"
    return "0,0" if metric == "n_orders" else "0[.][00]"


def metric_format(metric: str) -> str:
    """Numeral.js format of a metric (percent for returns and drawdowns)."""
    if metric in PERCENT_METRICS:
        return "0.00%"
    if metric == "n_orders":
        return "0,0"
    return "0.000"


# -- equity band -----------------------------------------------------------------------------------
@dataclass
class Line:
    """One highlighted portfolio: its role (best/median/worst/…), id, legend label and curve."""

    role: str
    portfolio: int
    label: str
    equity: np.ndarray


def portfolio_label(params: Sequence[_load.Param], i: int, max_len: int = 70) -> str:
    """``strategy=trend, stop_loss=0.05`` for portfolio ``i`` (varying parameters only)."""
    parts = [f"{p.name}={p.levels[p.codes[i]]}" for p in params if p.varies]
    text = ", ".join(parts)
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


def band_source(
    time: np.ndarray,
    band: _load.Band,
    lines: Sequence[Line],
    points: int = _load.DISPLAY_POINTS,
    *,
    benchmark: np.ndarray | None = None,
) -> ColumnDataSource:
    """One source for the band, the highlighted curves and their drawdowns (shared time axis),
    and the ``benchmark`` equity line when given (column ``benchmark``).

    More bars than ``points``: every column is the min/max of the same buckets of bars (the
    band's, when `equity_band` already reduced it; drawdowns from the full curves) and the source
    is tagged ``bars_per_point=k`` (`display_note` reads it).
    """
    time = np.asarray(time)
    bands = {f"q{round(q * 100):02d}": v for q, v in zip(band.quantiles, band.values, strict=True)}
    curves: dict[str, np.ndarray] = {}
    for ln in lines:
        curves[ln.role] = ln.equity
        curves[f"dd_{ln.role}"] = agg.drawdown(ln.equity)
    if benchmark is not None:
        curves["benchmark"] = np.asarray(benchmark, np.float64)
    edges = band.edges if band.edges is not None else agg.display_edges(len(time), points)
    if edges is None:
        return ColumnDataSource({"time": time, **bands, **curves})
    if band.edges is None:  # the band holds every bar: reduce it with the curves
        curves = {**bands, **curves}
        bands = {}
    reduced = _load.display_columns({"time": time, **curves}, edges=edges)
    data = {"time": reduced.pop("time"), **bands, **reduced}
    return ColumnDataSource(data, tags=[f"bars_per_point={int(np.diff(edges).max())}"])


def bars_per_point(source: ColumnDataSource) -> int | None:
    """Bars behind each point of a `band_source` (None: every bar is drawn)."""
    for t in source.tags:
        if isinstance(t, str) and t.startswith("bars_per_point="):
            return int(t.split("=", 1)[1])
    return None


def display_note(fig: figure, source: ColumnDataSource) -> None:
    """Say under the title of ``fig`` that its lines are downsampled, when they are."""
    k = bars_per_point(source)
    if k is not None:
        fig.add_layout(
            Title(
                text=downsample_text(k),
                text_font=FONT,
                text_font_size="11px",
                text_font_style="normal",
                text_color="#666666",
            ),
            "above",
        )


def downsample_text(k: int) -> str:
    """The line that says how a long series is drawn and where its full data is."""
    return (
        f"Downsampled for display: each point is the min/max of up to {k:,} bars (extremes "
        "exact). Full data: ad.open_run(run_dir).equity in a notebook."
    )


def _band_plot(
    source: ColumnDataSource,
    band: _load.Band,
    lines: Sequence[Line],
    *,
    title: str,
    width: int,
    height: int,
    benchmark: str | None = None,
) -> figure:
    """The equity band, the highlighted ``lines`` and, with its symbol as ``benchmark``, the
    source's ``benchmark`` column."""
    cols = set(source.data)
    fig = time_figure(title, width, height, y_label="equity", y_format="0,0")
    items = []
    if {"q05", "q95"} <= cols:
        r = fig.varea(
            "time", "q05", "q95", source=source, fill_color=COLORS["band"], fill_alpha=0.16
        )
        items.append(("all portfolios, 5–95 %", [r]))
    if {"q25", "q75"} <= cols:
        r = fig.varea(
            "time", "q25", "q75", source=source, fill_color=COLORS["band"], fill_alpha=0.32
        )
        items.append(("all portfolios, 25–75 %", [r]))
    if "q50" in cols:
        r = fig.line(
            "time",
            "q50",
            source=source,
            color=COLORS["all_median"],
            line_dash="dashed",
            line_width=1.2,
        )
        items.append(("median of all (per bar)", [r]))
    hover_r = None
    for ln in lines:
        r = fig.line(
            "time", ln.role, source=source, color=COLORS.get(ln.role, "#333333"), line_width=2
        )
        items.append((ln.label, [r]))
        hover_r = hover_r or r
    bench = benchmark is not None and "benchmark" in cols
    if bench:
        r = fig.line("time", "benchmark", source=source, color=COLORS["benchmark"], line_width=1.6)
        items.append((f"benchmark {benchmark}", [r]))
    if hover_r is not None or "q50" in cols:
        tips = [("date", "@time{%F}")]
        tips += [(ln.role, f"@{{{ln.role}}}{{0,0}}") for ln in lines]
        tips += [("benchmark", "@benchmark{0,0}")] if bench else []
        tips += [
            (f"p{c[1:]}", f"@{{{c}}}{{0,0}}")
            for c in ("q95", "q75", "q50", "q25", "q05")
            if c in cols
        ]
        fig.add_tools(
            HoverTool(
                renderers=[hover_r or fig.renderers[-1]],
                tooltips=tips,
                formatters={"@time": "datetime"},
                mode="vline",
            )
        )
    legend = Legend(items=items, location="top_left")
    style_legend(legend)
    fig.add_layout(legend)
    if not band.exact:
        fig.title.text += "  (band merged from portfolio-block sketches)"
    display_note(fig, source)
    return fig


def _drawdown_plot(
    source: ColumnDataSource,
    lines: Sequence[Line],
    *,
    x_range: Range1d | None = None,
    title: str = "Drawdown",
    width: int = WIDTH,
    height: int = 230,
) -> figure:
    """Drawdown of the highlighted portfolios from a `band_source` (``dd_<role>`` columns);
    share ``x_range`` with the equity figure so both pan together."""
    fig = time_figure(title, width, height, y_label="drawdown", x_range=x_range)
    fig.yaxis.formatter = NumeralTickFormatter(format="0%")
    rs = [
        fig.line(
            "time",
            f"dd_{ln.role}",
            source=source,
            color=COLORS.get(ln.role, "#333333"),
            line_width=1.6,
        )
        for ln in lines
    ]
    if rs:
        fig.add_tools(
            HoverTool(
                renderers=[rs[0]],
                tooltips=[("date", "@time{%F}")]
                + [(ln.role, f"@{{dd_{ln.role}}}{{0.0%}}") for ln in lines],
                formatters={"@time": "datetime"},
                mode="vline",
            )
        )
        legend = Legend(
            items=[(ln.label.split(" · ")[0], [r]) for ln, r in zip(lines, rs, strict=True)]
        )
        style_legend(legend)
        fig.add_layout(legend, "right")  # outside: drawdowns fill the whole plot area
    display_note(fig, source)
    return fig


def highlighted_lines(
    equity: xr.DataArray, score: np.ndarray, params: Sequence[_load.Param], score_name: str
) -> list[Line]:
    """Best, median and worst portfolios by ``score``, with their equity curves."""
    ids = list(agg.pick_best_median_worst(score))
    cols = _load.equity_columns(equity, ids)
    lines = []
    for k, (role, pid) in enumerate(zip(("best", "median", "worst"), ids, strict=True)):
        s = score[pid]
        grid = portfolio_label(params, pid)
        label = f"{role} #{pid}" + (f" · {grid}" if grid else "")
        if np.isfinite(s):
            label += f" · {score_name} {s:.2f}"
        lines.append(Line(role, pid, label, cols[:, k]))
    return lines


def _results_from(source: str | Path | xr.Dataset | xr.DataArray) -> xr.Dataset:
    if isinstance(source, str | Path):
        return _load.open_results(Path(source))
    if isinstance(source, xr.DataArray):
        return source.to_dataset(name="equity")
    return source


def equity_band_figure(
    source: str | Path | xr.Dataset | xr.DataArray,
    *,
    score: str | np.ndarray = "sharpe",
    quantiles: tuple[float, ...] = _load.BAND_QUANTILES,
    title: str | None = None,
    width: int = WIDTH,
    height: int = 420,
) -> figure:
    """Equity of the best, median and worst portfolios over the band of all portfolios.

    Parameters
    ----------
    source : path, Dataset or DataArray
        A run folder, an opened ``results.zarr`` Dataset (``equity`` (time, portfolio), metrics
        and grid coordinates), or the equity DataArray alone.
    score : str or ndarray
        Metric that ranks portfolios (a variable of ``source``), or one value per portfolio.
        When the variable is missing the total return of each curve is used.
    quantiles : tuple of float
        Quantiles drawn as bands: the outer pair, the inner pair and the median.
    title : str, optional
    width, height : int
        Pixels.

    Returns
    -------
    bokeh.plotting.figure
        The equity is read in blocks (`equity_band`), never all curves at once. A run longer
        than ``_load.DISPLAY_POINTS`` bars is drawn as the min/max of buckets of bars (the
        figure says so); plot ``ad.open_run(dir).equity`` for every bar.
    """
    ds = _results_from(source)
    eq = ds["equity"]
    params = _load.grid_params(ds, {}) if "portfolio" in ds.dims else []
    values, score_name = _score_values(ds, score)
    band = _load.equity_band(eq, quantiles)
    lines = highlighted_lines(eq, values, params, score_name)
    src = band_source(ds["time"].values, band, lines)
    n = eq.sizes["portfolio"]
    title = title or f"Equity: best, median and worst of {n:,} portfolios by {score_name}"
    return _band_plot(src, band, lines, title=title, width=width, height=height)


def drawdown_figure(
    source: str | Path | xr.Dataset | xr.DataArray,
    portfolios: Sequence[int] | None = None,
    *,
    score: str | np.ndarray = "sharpe",
    title: str | None = None,
    width: int = WIDTH,
    height: int = 260,
) -> figure:
    """Drawdown (fraction below the running peak) of a few portfolios.

    Parameters
    ----------
    source : path, Dataset or DataArray
        A run folder, an opened ``results.zarr`` Dataset, or the equity DataArray alone.
    portfolios : sequence of int, optional
        Portfolio ids to draw; default the best, median and worst by ``score``.
    score : str or ndarray
        Ranking for the default selection (see `equity_band_figure`).
    title : str, optional
    width, height : int

    Returns
    -------
    bokeh.plotting.figure
        Long runs drawn as the min/max of buckets of bars, as `equity_band_figure`.
    """
    ds = _results_from(source)
    eq = ds["equity"]
    params = _load.grid_params(ds, {})
    if portfolios is None:
        values, score_name = _score_values(ds, score)
        lines = highlighted_lines(eq, values, params, score_name)
    else:
        ids = [int(p) for p in portfolios]
        cols = _load.equity_columns(eq, ids)
        lines = [Line(f"p{p}", p, f"#{p}", cols[:, k]) for k, p in enumerate(ids)]
    src = band_source(
        ds["time"].values, _load.Band((), np.empty((0, eq.sizes["time"])), True), lines
    )
    fig = _drawdown_plot(src, lines, title=title or "Drawdown", width=width, height=height)
    if portfolios is not None:  # colours beyond best/median/worst: a categorical palette
        from bokeh.palettes import Category10_10

        for k, r in enumerate(fig.renderers):
            r.glyph.line_color = Category10_10[k % 10]
    return fig


def _score_values(ds: xr.Dataset, score: str | np.ndarray) -> tuple[np.ndarray, str]:
    """Ranking values: a metric variable, given values, or each curve's total return."""
    if isinstance(score, str) and score in ds:
        return np.asarray(ds[score].values, np.float64), score
    if isinstance(score, str):
        eq = ds["equity"]
        first, last = (np.asarray(eq.isel(time=i).values, np.float64) for i in (0, -1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return last / first - 1.0, "total_return"
    return np.asarray(score, np.float64), "score"
