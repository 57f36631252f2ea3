"""The report's size, build time and peak memory on a long run and on a wide run.

Targets: ``report.html`` ≤ 10 MB and the report process ≤ 2 GB of memory whatever the bars,
portfolios or orders (long series are drawn as min/max per bucket of bars, at most
``admf_dask.report._load.DISPLAY_POINTS`` points per line; orders are capped per portfolio).

Cases (``--cases``):

* ``long``: 400,000 minute bars × 20 portfolios × 10 symbols, 20,000 orders per portfolio;
* ``wide``: 2,520 daily bars × 10,000 portfolios × 20 symbols, 40 orders per portfolio.

The run folders are SYNTHETIC, written directly with xarray/pandas in the pipeline's layout
(``results.zarr`` chunked time × 500-portfolio batches, ``orders.parquet/`` one file per batch,
``run.json``): equity curves are random walks and orders random fills at random-walk closes, not
the output of a backtest (running the pipeline on 400,000 bars would take far longer than the
report it feeds). The closes are passed to the report as its market data, so price lines are
embedded as in a real run.

Each report is built in a fresh subprocess (``--build``) started by a small intermediate process
(``--measure``) that only waits for it and reads ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``:
the peak RSS of the report process alone, not of this script's data generation.

    .venv/bin/python benchmarks/report_size.py
    .venv/bin/python benchmarks/report_size.py --quick           # 100,000 bars; 1,000 portfolios
    .venv/bin/python benchmarks/report_size.py --cases long --symbols 75   # a 1.5 GB CSV's width
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from _common import PY, RESULT_TAG, child_result, command_line, log, machine_header, md_table

MAX_HTML_MB = 10.0
MAX_RSS_GB = 2.0
CAPITAL = 1_000_000.0


def grid_of(portfolios: int) -> dict[str, list[float]]:
    """A grid of ``portfolios`` combinations, at most 10 values per parameter (10,000: 10⁴)."""
    sizes, rest = [], portfolios
    while rest % 10 == 0 and rest > 10:
        sizes.append(10)
        rest //= 10
    sizes.append(rest)
    names = ("stop_loss", "target_vol", "max_position", "rebalance_band", "take_profit")
    return {
        names[j % len(names)] + ("" if j < len(names) else f"_{j}"): [
            round(0.01 * (i + 1) * (j + 1), 4) for i in range(n)
        ]
        for j, n in enumerate(sizes)
    }


def write_run(
    path: Path,
    *,
    bars: int,
    portfolios: int,
    symbols: int,
    orders_per_portfolio: int,
    freq: str,
    time_chunk: int,
    batch: int = 500,
    seed: int = 0,
) -> tuple[Path, Path, int]:
    """A synthetic run folder at ``path`` and its closes beside it; returns both and the orders."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    time_ax = pd.date_range("2020-01-01", periods=bars, freq=freq)
    names = [f"S{i:02d}" for i in range(symbols)]
    close = 100 * np.exp(np.cumsum(rng.normal(0, 2e-3, (bars, symbols)), axis=0))
    enc_chunks = (min(time_chunk, bars), min(batch, portfolios))
    grid = grid_of(portfolios)
    levels = np.unravel_index(np.arange(portfolios), [len(v) for v in grid.values()])
    drift = rng.normal(0, 2e-5, portfolios).astype(np.float32)
    store = path / "results.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr v3: fixed-width strings have no spec yet
        import dask.array as da

        lazy = da.zeros((bars, portfolios), chunks=enc_chunks)
        xr.Dataset(
            {"equity": (("time", "portfolio"), lazy), "cash": (("time", "portfolio"), lazy)},
            coords={
                "time": time_ax,
                "portfolio": np.arange(portfolios),
                "symbol": names,
                **{
                    k: ("portfolio", np.asarray(v, float)[codes])
                    for (k, v), codes in zip(grid.items(), levels, strict=True)
                },
            },
        ).to_zarr(store, mode="w", compute=False)
        # equity written one time block at a time (the generator stays small too)
        level = np.zeros(portfolios)
        peak = np.zeros(portfolios)
        mdd = np.zeros(portfolios)
        sum_r = np.zeros(portfolios)
        sum_r2 = np.zeros(portfolios)
        step = max(1, (32 * 2**20) // (8 * portfolios) // enc_chunks[0]) * enc_chunks[0]
        for a in range(0, bars, step):
            b = min(bars, a + step)
            eps = rng.standard_normal((b - a, portfolios), dtype=np.float32) * np.float32(1e-3)
            eps += drift
            sum_r += eps.sum(0, dtype=np.float64)
            sum_r2 += (eps.astype(np.float64) ** 2).sum(0)
            cum = level + np.cumsum(eps, axis=0, dtype=np.float64)
            level = cum[-1].copy()
            run_peak = np.maximum(np.maximum.accumulate(cum, axis=0), peak)
            mdd = np.minimum(mdd, (cum - run_peak).min(0))
            peak = run_peak[-1]
            eq = CAPITAL * np.exp(cum)
            xr.Dataset(
                {"equity": (("time", "portfolio"), eq), "cash": (("time", "portfolio"), eq * 0.2)}
            ).to_zarr(store, region={"time": slice(a, b), "portfolio": slice(0, portfolios)})
        mu, sd = sum_r / bars, np.sqrt(np.maximum(sum_r2 / bars - (sum_r / bars) ** 2, 1e-30))
        metrics = xr.Dataset(
            {
                "sharpe": ("portfolio", mu / sd * np.sqrt(252 * 390)),
                "total_return": ("portfolio", np.expm1(level)),
                "max_drawdown": ("portfolio", np.expm1(mdd)),
                "n_orders": ("portfolio", np.full(portfolios, orders_per_portfolio, float)),
            }
        )
        metrics.to_zarr(store, mode="a")
        market = path.parent / f"{path.name}-market.zarr"
        xr.Dataset(
            {"close": (("time", "symbol"), close)}, coords={"time": time_ax, "symbol": names}
        ).to_zarr(market, mode="w")
    (path / "orders.parquet").mkdir()
    k = orders_per_portfolio
    for b0 in range(0, portfolios, batch):
        ids = np.arange(b0, min(portfolios, b0 + batch))
        port = np.repeat(ids, k)
        t_idx = np.sort(rng.integers(1, bars, (len(ids), k)), axis=1).ravel()
        s_idx = rng.integers(0, symbols, port.size)
        qty = np.round(rng.normal(0, 300, port.size), 2)
        price = close[t_idx, s_idx]
        pd.DataFrame(
            {
                "portfolio": port.astype(np.int64),
                "time": time_ax.values[t_idx],
                "symbol": np.array(names)[s_idx],
                "qty": qty,
                "price": price,
                "commission": np.abs(qty * price) * 5e-4,
                "reason": np.where(rng.random(port.size) < 0.05, "stop", "signal"),
            }
        ).to_parquet(path / "orders.parquet" / f"batch-{b0 // batch:05d}-0.parquet")
    manifest: dict[str, Any] = {
        "run_id": f"synthetic-{bars}x{portfolios}",
        "name": f"synthetic {bars:,} bars × {portfolios:,} portfolios",
        "config": {"portfolios": {"capital": CAPITAL, "batch_size": batch, "grid": grid}},
        "data": {"source": "synthetic (benchmarks/report_size.py)", "symbols": names},
        "warnings": ["synthetic run folder: random-walk equity, not a backtest"],
    }
    (path / "run.json").write_text(json.dumps(manifest))
    return path, market, portfolios * orders_per_portfolio


def build(run: str, market: str) -> None:
    """``--build``: the report process itself."""
    from admf_dask.report import build_report

    t0 = time.perf_counter()
    out = build_report(run, market_data=xr.open_zarr(market))
    child_result({"seconds": time.perf_counter() - t0, "bytes": out.stat().st_size})


def measure(run: str, market: str) -> None:
    """``--measure``: start the report process, wait, report its peak RSS (RUSAGE_CHILDREN)."""
    proc = subprocess.run(
        [PY, __file__, "--build", run, market], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"report process failed (rc {proc.returncode})")
    line = next(s for s in proc.stdout.splitlines() if s.startswith(RESULT_TAG))
    result = json.loads(line[len(RESULT_TAG) :])
    result["maxrss_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    child_result(result)


CASES = {
    "long": {
        "bars": 400_000,
        "portfolios": 20,
        "symbols": 10,
        "orders_per_portfolio": 20_000,
        "freq": "min",
        "time_chunk": 20_000,
    },
    "wide": {
        "bars": 2_520,
        "portfolios": 10_000,
        "symbols": 20,
        "orders_per_portfolio": 40,
        "freq": "B",
        "time_chunk": 504,
    },
}
QUICK = {"long": {"bars": 100_000, "orders_per_portfolio": 5_000}, "wide": {"portfolios": 1_000}}


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="long,wide", help="comma-separated: long, wide")
    ap.add_argument("--quick", action="store_true", help="100,000 bars; 1,000 portfolios")
    ap.add_argument("--symbols", type=int, help="symbols of every case (default 10 / 20)")
    ap.add_argument("--orders", type=int, help="orders per portfolio (default 20,000 / 40)")
    ap.add_argument("--portfolios", type=int, help="portfolios of every case (default 20 / 10,000)")
    ap.add_argument("--build", nargs=2, metavar=("RUN", "MARKET"), help=argparse.SUPPRESS)
    ap.add_argument("--measure", nargs=2, metavar=("RUN", "MARKET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build:
        build(*args.build)
        return ""
    if args.measure:
        measure(*args.measure)
        return ""
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="admf-report-size-"))
    try:
        for name in args.cases.split(","):
            spec = dict(CASES[name], **(QUICK.get(name, {}) if args.quick else {}))
            if args.symbols:
                spec["symbols"] = args.symbols
            if args.portfolios:
                spec["portfolios"] = args.portfolios
            if args.orders:
                spec["orders_per_portfolio"] = args.orders
            log(f"{name}: writing a synthetic run folder {spec}")
            t0 = time.perf_counter()
            run, market, n_orders = write_run(tmp / name, **spec)
            log(f"  written in {time.perf_counter() - t0:.1f} s; building the report")
            proc = subprocess.run(
                [PY, __file__, "--measure", str(run), str(market)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"{name}: report failed")
            line = next(s for s in proc.stdout.splitlines() if s.startswith(RESULT_TAG))
            r = json.loads(line[len(RESULT_TAG) :])
            load = open("/proc/loadavg").read().split()[:3]  # noqa: SIM115
            mb, rss_gb = r["bytes"] / 1e6, r["maxrss_bytes"] / 1e9
            ok = mb <= MAX_HTML_MB and rss_gb <= MAX_RSS_GB
            rows.append(
                [
                    name,
                    f"{spec['bars']:,}",
                    f"{spec['portfolios']:,}",
                    f"{n_orders:,}",
                    f"{r['seconds']:.1f}",
                    f"{mb:.2f}",
                    f"{rss_gb * 1000:,.0f}",
                    "/".join(load),
                    "yes" if ok else "NO",
                ]
            )
            shutil.rmtree(tmp / name, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = (
        "### Report size and memory (synthetic run folders)\n\n"
        f"`{command_line()}`\n\n{machine_header()}\n\n"
        + md_table(
            [
                "case",
                "bars",
                "portfolios",
                "orders",
                "report s",
                "report.html MB",
                "peak RSS MB",
                "load 1/5/15",
                f"≤ {MAX_HTML_MB:g} MB and ≤ {MAX_RSS_GB:g} GB",
            ],
            rows,
        )
        + "\n"
    )
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
