"""Reading the bokeh stocks and building report.html of a 10,000-portfolio run: wall times.

These were timing assertions in the test suite (a wall-clock bound fails on a busy machine and
proves nothing on an idle one); here they are measured and printed instead:

* ``load_market_data({"source": "bokeh_stocks"})``: the five bundled stocks (AAPL, GOOG, IBM,
  MSFT, FB) read and aligned, repeated (the first read includes the gzip page cache warm-up);
* ``build_report`` of a real run folder: 10,000 portfolios (4 grid parameters × 10 values) ×
  20 symbols × 2,520 bars with the order ledger, the run made first by ``ad.run`` with
  ``output.report: false``; the report's size and the Python-heap peak while building it
  (``tracemalloc``) are printed with the times.

    .venv/bin/python benchmarks/load_and_report.py
    .venv/bin/python benchmarks/load_and_report.py --quick     # 256 portfolios × 10 symbols
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

from _common import (
    LoadTracker,
    command_line,
    linspace_grid,
    log,
    md_table,
    spread,
    synthetic_data,
    trend_pipeline,
)


def spec(n_side: int, symbols: int, bars: int, out: Path) -> dict:
    """A trend pipeline with an ``n_side``⁴ portfolio grid (notebooks/04_sweep_10k's layout)."""
    grid = {
        "target_vol": linspace_grid(0.05, 0.3, n_side, 3),
        "stop_loss": linspace_grid(0.02, 0.2, n_side, 3),
        "max_gross": linspace_grid(0.5, 2.0, n_side, 2),
        "rebalance_band": linspace_grid(0.0, 0.02, n_side, 4),
    }
    cfg = trend_pipeline("report-bench", synthetic_data(symbols, bars), grid)
    cfg["output"] = {"path": str(out), "report": False, "overwrite": True}
    return cfg


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, value = [], None
    for _ in range(repeats):
        tic = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - tic)
    return times, value


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=10, help="grid values per parameter (side⁴)")
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="4⁴ = 256 portfolios × 10 symbols")
    args = ap.parse_args(argv)
    if args.quick:
        args.side, args.symbols, args.bars = 4, 10, 1008
    warnings.filterwarnings("ignore", message="Sending large graph")
    import distributed  # noqa: F401  (configures its loggers on import: quiet them after)

    import admf_dask as ad
    from admf_dask.cluster import close_session
    from admf_dask.data import load_market_data
    from admf_dask.report import build_report

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR)
    load = LoadTracker()

    log("bokeh_stocks: loading", args.repeats + 1, "times")
    load_times, data = _timed(
        lambda: load_market_data({"source": "bokeh_stocks"}), 1 + args.repeats
    )
    bars = data.sizes["time"]

    tmp = Path(tempfile.mkdtemp(prefix="admf-report-bench-"))
    try:
        log(f"ad.run: {args.side**4:,} portfolios × {args.symbols} symbols × {args.bars:,} bars")
        res = ad.run(spec(args.side, args.symbols, args.bars, tmp / "run"))
        n_pf, n_orders = res.manifest["portfolios"]["n"], res.manifest["portfolios"]["n_orders"]
        close_session()
        log("build_report:", args.repeats, "times")
        report_times, out = _timed(lambda: build_report(tmp / "run"), args.repeats)
        size_mb = out.stat().st_size / 1e6
        tracemalloc.start()
        build_report(tmp / "run", tmp / "again.html")
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    finally:
        close_session()
        shutil.rmtree(tmp, ignore_errors=True)

    equity_mb = n_pf * args.bars * 8 / 1e6
    rows = [
        ["bokeh_stocks load, first", f"{load_times[0]:.2f}", f"5 symbols × {bars:,} bars"],
        [
            f"bokeh_stocks load, next {args.repeats}",
            spread(load_times[1:]),
            "median (min–max)",
        ],
        [
            f"build_report, {n_pf:,} portfolios",
            spread(report_times),
            f"{size_mb:.2f} MB report; Python-heap peak {peak_mb:,.0f} MB "
            f"(equity {equity_mb:,.0f} MB as float64); {n_orders:,} orders",
        ],
    ]
    text = (
        f"### Loading real data and building the report\n\n`{command_line()}`\n\n"
        f"Load average (1 min): {load} on {os.cpu_count()} cores.\n\n"
        + md_table(["step", "wall s", "notes"], rows, "lrl")
        + "\n"
    )
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
