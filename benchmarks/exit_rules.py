"""Cost of each exit rule of docs/ACCOUNTING.md, exits in the kernel alone (no dask, no storage).

The data and grids of `portfolio_scaling.py` (100 symbols × 2,520 bars, time chunks of 504 bars,
batches of 500 portfolios, order records on); each row adds one rule (a scalar on every grid
point) and is timed as the best of ``--repeat`` runs of `admf_dask.portfolio.batch.step` over
every chunk and batch, single-threaded.

    python benchmarks/exit_rules.py                     # 1,000 portfolios
    python benchmarks/exit_rules.py --portfolios 10000  # the full grid of the scaling benchmark

Target (with `portfolio_scaling.py --exits both`): every rule on ≤ 1.5 × every rule off.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "admf-numba")
)

from portfolio_scaling import (  # noqa: E402
    BARS,
    CAPITAL,
    EXITS,
    SYMBOLS,
    TIME_CHUNK,
    grid_for,
    make_high_low,
    make_market,
    make_signals,
)

BATCH = 500

#: one rule at a time, then all of them (the scaling benchmark's EXITS)
RULES: dict[str, dict] = {
    "off": {},
    "intrabar (grid stop_loss)": {"exit_on": "intrabar"},
    "take_profit": {"take_profit": EXITS["take_profit"]},
    "trailing_stop": {"trailing_stop": EXITS["trailing_stop"]},
    "max_positions": {"max_positions": EXITS["max_positions"]},
    "all but max_positions": {k: v for k, v in EXITS.items() if k != "max_positions"},
    "all": EXITS,
}


def book_arrays(n: int, extra: dict):
    from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
    from admf_dask.portfolio import expand_grid

    cfg = PortfoliosConfig(capital=CAPITAL, batch_size=BATCH, grid=grid_for(n), **extra)
    book = expand_grid(cfg, ExecutionConfig(), ["trend", "slow"], SYMBOLS)
    return book.mixes, book.fparams(), book.iparams()


def run_once(market, mixes, fp, ip) -> tuple[float, int]:
    from admf_dask.portfolio.batch import BatchState, chunk_bounds, step

    open_, high, low, close, sig = market
    P = fp.shape[0]
    n_orders = 0
    elapsed = 0.0
    for b in range(0, P, BATCH):
        st = BatchState.new(min(BATCH, P - b), SYMBOLS, CAPITAL)
        for a, z in chunk_bounds(BARS, TIME_CHUNK):
            tic = time.perf_counter()
            st, _, _, orders = step(
                st,
                open_[a:z],
                close[a:z],
                sig[a:z],
                None,
                mixes,
                fp[b : b + BATCH],
                ip[b : b + BATCH],
                copy=False,
                high=high[a:z],
                low=low[a:z],
            )
            elapsed += time.perf_counter() - tic
            n_orders += len(orders)
    return elapsed, n_orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=1000, help="10, 100, 1000 or 10000")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per rule")
    parser.add_argument("--rules", nargs="+", default=list(RULES), help="rows to run (names)")
    args = parser.parse_args()

    open_, close = make_market()
    high, low = make_high_low(open_, close)
    market = (open_, high, low, close, make_signals(close))
    # compile (or load from the numba cache) before timing
    run_once(tuple(x[:64] for x in market), *book_arrays(10, EXITS))

    rows = []
    for name in args.rules:
        arrays = book_arrays(args.portfolios, RULES[name])
        best, n_orders = min(run_once(market, *arrays) for _ in range(args.repeat))
        rows.append((name, best, n_orders))
        print(f"  {name}: {best:.3f} s", flush=True)

    off = dict((r[0], r[1]) for r in rows).get("off")
    print(
        f"\nkernel time, {args.portfolios:,} portfolios × {SYMBOLS} symbols × {BARS:,} bars "
        f"(best of {args.repeat}; load {open('/proc/loadavg').read().split()[0]})\n"
    )
    print("| rule | kernel s | × off | orders |")
    print("|---|---:|---:|---:|")
    for name, s, n_orders in rows:
        ratio = f"{s / off:.2f}" if off else "-"
        print(f"| {name} | {s:.3f} | {ratio} | {n_orders:,} |")


if __name__ == "__main__":
    main()
