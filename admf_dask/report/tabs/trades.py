"""Trades tab: the selected portfolio's trades (docs/TRADES.md): a table, the P&L histogram and the
MFE / MAE scatter coloured by win / loss; the portfolio switches in the page (static/trades.js).

Only the selectable portfolios' trades are read (their batches' files of ``trades.parquet``), and
at most `MAX_ROWS` per portfolio reach the page (the most recent by entry; the histogram counts
them all), so the page stays bounded whatever the run's size.
"""

from __future__ import annotations

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    DataTable,
    DateFormatter,
    NumberFormatter,
    Select,
    TableColumn,
    TabPanel,
)
from bokeh.plotting import figure

from admf_dask.report.context import ReportContext
from admf_dask.report.figures import COLORS, WIDTH, style
from admf_dask.report.render import div, render, script

TITLE = "Trades"
#: trades of one portfolio sent to the page (the table and the scatter)
MAX_ROWS = 2000
#: bins of the P&L histogram
BINS = 40
_COLS = ("symbol", "side", "entry_time", "exit_time", "n_fills", "entry_price", "exit_price")
_COLS += ("pnl", "return", "bars", "mfe", "mae")


def _per_portfolio(trades, pid: int) -> tuple[dict, dict]:
    """The page's table rows and histogram of one portfolio."""
    mine = trades[trades["portfolio"] == pid]
    pnl = mine["pnl"].to_numpy(np.float64)
    if pnl.size:
        counts, edges = np.histogram(pnl, bins=BINS)
    else:
        counts, edges = np.zeros(0, np.int64), np.zeros(1)
    hist = {
        "left": edges[:-1].tolist(),
        "right": edges[1:].tolist(),
        "count": counts.tolist(),
        "color": [COLORS["buy"] if e >= 0 else COLORS["sell"] for e in edges[:-1]],
    }
    shown = mine.sort_values("entry_time").tail(MAX_ROWS)
    rows = {c: shown[c].tolist() for c in _COLS if c not in ("entry_time", "exit_time")}
    rows["symbol"] = shown["symbol"].astype(str).tolist()
    for c in ("entry_time", "exit_time"):  # ms since the epoch (bokeh's datetime), None: open
        t = shown[c].to_numpy().astype("datetime64[ms]")
        rows[c] = [None if np.isnat(v) else int(v.astype(np.int64)) for v in t]
    rows["exit_price"] = [None if np.isnan(x) else x for x in rows["exit_price"]]
    rows["win"] = ["win" if x > 0 else "loss" for x in rows["pnl"]]
    rows["color"] = [COLORS["buy"] if x > 0 else COLORS["sell"] for x in rows["pnl"]]
    return rows, hist


def build(ctx: ReportContext) -> TabPanel | None:
    """The Trades tab; None when the run wrote no trades."""
    from admf_dask.portfolio.trades import read_trades

    path = ctx.run.run_dir / "trades.parquet"
    if not path.exists() or not ctx.choices:
        return None
    pids = sorted({c.pid for c in ctx.choices})
    trades = read_trades(path, portfolio=pids)
    rows, hists, infos = {}, {}, {}
    for c in ctx.choices:
        r, h = _per_portfolio(trades, c.pid)
        rows[str(c.pid)], hists[str(c.pid)] = r, h
        mine = trades[trades["portfolio"] == c.pid]
        closed = mine[mine["exit_time"].notna()]
        n = len(mine)
        wins = int((closed["pnl"] > 0).sum())
        infos[str(c.pid)] = render(
            "note.html",
            tag="span",
            text=f"{n:,} trades ({n - len(closed):,} open at the end)"
            + (f", {wins / len(closed):.0%} of the closed ones won" if len(closed) else "")
            + (f"; the table shows the last {MAX_ROWS:,}" if n > MAX_ROWS else ""),
        )
    first = str(ctx.choices[0].pid)
    table_src = ColumnDataSource(rows[first], name="trades_rows")
    hist_src = ColumnDataSource(hists[first], name="trades_hist")
    num = NumberFormatter(format="0,0.00", text_align="right")
    pct = NumberFormatter(format="0.00%", text_align="right")
    date = DateFormatter(format="%Y-%m-%d")
    fmt = {"entry_time": date, "exit_time": date, "return": pct, "mfe": pct, "mae": pct}
    fmt.update({c: num for c in ("entry_price", "exit_price", "pnl")})
    table = DataTable(
        source=table_src,
        columns=[TableColumn(field=c, title=c, formatter=fmt.get(c)) for c in _COLS if c in fmt]
        + [TableColumn(field=c, title=c, width=70) for c in _COLS if c not in fmt],
        width=WIDTH,
        height=320,
        sortable=True,
        index_position=None,
        name="trades_table",
    )
    hist = style(
        figure(width=WIDTH // 2 - 10, height=320, title="P&L per trade", name="trades_pnl_hist")
    )
    hist.quad(left="left", right="right", top="count", bottom=0, color="color", source=hist_src)
    hist.xaxis.axis_label = "pnl"
    hist.yaxis.axis_label = "trades"
    scatter = style(
        figure(
            width=WIDTH // 2 - 10,
            height=320,
            title="MFE / MAE per trade (green: won, red: lost)",
            name="trades_mfe_mae",
        )
    )
    scatter.scatter(x="mae", y="mfe", color="color", source=table_src, size=5, alpha=0.6)
    scatter.xaxis.axis_label = "mae (worst move against)"
    scatter.yaxis.axis_label = "mfe (best move for)"
    labels = {str(c.pid): f"{c.role}: {c.label}" for c in ctx.choices}
    choice = Select(
        title="portfolio",
        value=first,
        options=list(labels.items()),
        width=WIDTH // 2,
        name="trades_choice",
    )
    info = div(infos[first], name="trades_info")
    cb = CustomJS(
        args={
            "choice": choice,
            "rows": rows,
            "hists": hists,
            "infos": infos,
            "table": table_src,
            "hist": hist_src,
            "info": info,
        },
        code=script("trades.js"),
    )
    choice.js_on_change("value", cb)
    return TabPanel(child=column(row(choice), info, table, row(hist, scatter)), title=TITLE)
