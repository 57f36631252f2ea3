"""The grid heatmap: a metric's mean over two grid parameters, the others averaged out (the
report's Grid tab and `heatmap_figure` for notebooks, which also takes a `pandas.DataFrame` of
parameters and metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from bokeh.core.properties import value
from bokeh.models import (
    BasicTicker,
    ColorBar,
    ColumnDataSource,
    FactorRange,
    HoverTool,
    LinearColorMapper,
    NumeralTickFormatter,
)
from bokeh.plotting import figure

from admf_dask.report import _aggregate as agg
from admf_dask.report import _load
from admf_dask.report.figures import (
    FONT,
    HEAT_PALETTE,
    _results_from,
    axis_format,
    metric_format,
    style,
)

__all__ = ["heatmap_data", "heatmap_figure"]


def heatmap_data(
    values: np.ndarray, px: _load.Param, py: _load.Param
) -> dict[str, list | np.ndarray]:
    """Cells of the heatmap: mean of ``values`` per (x level, y level) over the other params."""
    mean, count = agg.group_mean(values, px.codes, py.codes, len(px.levels), len(py.levels))
    ys, xs = np.indices(mean.shape)
    flat = mean.ravel()
    return {
        "x": [px.levels[i] for i in xs.ravel()],
        "y": [py.levels[i] for i in ys.ravel()],
        "value": flat,
        "count": count.ravel(),
        "text": ["" if not np.isfinite(v) else f"{v:.3g}" for v in flat],
    }


def _finite_range(v: np.ndarray) -> tuple[float, float]:
    f = np.asarray(v, np.float64)
    f = f[np.isfinite(f)]
    if f.size == 0:
        return 0.0, 1.0
    lo, hi = float(f.min()), float(f.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def heatmap_plot(
    values: np.ndarray,
    px: _load.Param,
    py: _load.Param,
    metric: str,
    *,
    width: int,
    height: int,
) -> tuple[figure, ColumnDataSource, LinearColorMapper]:
    """The heatmap figure, its cell source (``cell_text`` renderer: the labels) and colour map."""
    data = heatmap_data(values, px, py)
    src = ColumnDataSource(data)
    lo, hi = _finite_range(data["value"])  # type: ignore[arg-type]
    mapper = LinearColorMapper(palette=HEAT_PALETTE, low=lo, high=hi, nan_color="#eeeeee")
    fig = figure(
        title=heatmap_title(metric, px.name, py.name),
        x_range=FactorRange(factors=list(px.levels)),
        y_range=FactorRange(factors=list(py.levels)),
        width=width,
        height=height,
        tools="save,reset",
        toolbar_location="right",
        x_axis_label=px.name,
        y_axis_label=py.name,
    )
    style(fig)
    fig.xgrid.grid_line_color = None
    fig.ygrid.grid_line_color = None
    fig.rect(
        "x",
        "y",
        0.96,
        0.94,
        source=src,
        fill_color={"field": "value", "transform": mapper},
        line_color=None,
    )
    fig.text(
        "x",
        "y",
        text="text",
        source=src,
        text_align="center",
        text_baseline="middle",
        text_font_size="11px",
        text_color="#ffffff",
        text_font=value(FONT),
        name="cell_text",
    )
    fig.add_tools(
        HoverTool(
            tooltips=[
                (px.name, "@x"),
                (py.name, "@y"),
                (f"mean {metric}", f"@value{{{metric_format(metric)}}}"),
                ("portfolios", "@count"),
            ]
        )
    )
    bar = ColorBar(
        color_mapper=mapper,
        ticker=BasicTicker(desired_num_ticks=8),
        formatter=NumeralTickFormatter(format=axis_format(metric)),
        label_standoff=8,
        width=14,
        major_label_text_font=FONT,
        major_label_text_font_size="11px",
        border_line_color=None,
    )
    fig.add_layout(bar, "right")
    return fig, src, mapper


def constant_param(n: int) -> _load.Param:
    """A one-level stand-in axis ("all") when fewer than two parameters vary."""
    return _load.Param("all", np.zeros(n, np.int8), ["all"], np.zeros(n, np.int32), False)


def heatmap_title(metric: str, x: str, y: str) -> str:
    """The heatmap's title (the Grid tab's JavaScript writes the same after a switch)."""
    return f"Mean {metric} by {x} × {y} (averaged over the other parameters)"


def _params_metrics_from(
    source: str | Path | xr.Dataset | pd.DataFrame, metric: str
) -> tuple[list[_load.Param], np.ndarray]:
    if isinstance(source, pd.DataFrame):
        if metric not in source:
            raise KeyError(f"no column {metric!r}; columns: {list(source.columns)}")
        skip = {metric, "portfolio", *_load.METRICS}
        cols = [c for c in source.columns if c not in skip]
        params = [_load.make_param(str(c), source[c].to_numpy()) for c in cols]
        return params, source[metric].to_numpy(np.float64)
    ds = _results_from(source) if not isinstance(source, xr.Dataset) else source
    if metric not in ds:
        raise KeyError(f"no metric {metric!r} in the results")
    return _load.grid_params(ds, {}), np.asarray(ds[metric].values, np.float64)


def heatmap_figure(
    source: str | Path | xr.Dataset | pd.DataFrame,
    metric: str = "sharpe",
    x: str | None = None,
    y: str | None = None,
    *,
    width: int = 900,
    height: int = 480,
) -> figure:
    """Heatmap of a metric's mean over two grid parameters (the others averaged out).

    Parameters
    ----------
    source : path, Dataset or DataFrame
        A run folder, an opened ``results.zarr`` Dataset (metrics as variables, grid parameters as
        ``portfolio`` coordinates), or a DataFrame with one column per parameter and the metric.
    metric : str
    x, y : str, optional
        Parameters on the axes; default: the first two that take more than one value (a single
        varying parameter gives one row).
    width, height : int

    Returns
    -------
    bokeh.plotting.figure
    """
    params, values = _params_metrics_from(source, metric)
    by_name = {p.name: p for p in params}
    varying = [p.name for p in params if p.varies]
    x = x or (varying[0] if varying else None)
    y = y or next((n for n in varying if n != x), None)
    for name in (x, y):
        if name is not None and name not in by_name:
            raise KeyError(f"no grid parameter {name!r}; parameters: {list(by_name)}")
    n = len(values)
    px = by_name[x] if x else constant_param(n)
    py = by_name[y] if y else constant_param(n)
    fig, _, _ = heatmap_plot(values, px, py, metric, width=width, height=height)
    return fig
