"""Scaling of the portfolio engine: 10 … 10,000 portfolios × 100 symbols × 2,520 bars.

For each size: wall time per stage, portfolio·symbol·bar steps per second, peak memory of the
whole process tree (this process + the LocalCluster's workers, sampled), CPU busy share of the
machine. In the same run, a plain single-threaded numba loop of the contract without risk rules
and without order records (next-open fills, fees, slippage, mark; the roofline) is timed
on the same data, and the engine is reported as engine / (roofline × workers).

    python benchmarks/portfolio_scaling.py                  # all sizes, with and without orders
    python benchmarks/portfolio_scaling.py --sizes 10 1000  # some
    python benchmarks/portfolio_scaling.py --orders no      # skip the order ledger
    python benchmarks/portfolio_scaling.py --exits both     # also with the exit rules on
    python benchmarks/portfolio_scaling.py --sizes 10000 --orders yes --trades both  # + trades

``--exits on`` runs the same grids with every rule of docs/ACCOUNTING.md, exits on (`EXITS`: exit_on
intrabar, take-profit, trailing stop, max_positions; the grid's stop_loss is tested intrabar too).

Targets: engine ≥ 50% of roofline × cores; 10k peak ≤ 6 GB; 10k time ≤ 11 × 1k; at 10k, the
grid with exits on ≤ 1.5 × the same grid with exits off; with trades.parquet and the trade
metrics on (``--trades``, docs/TRADES.md), ≤ 1.25 × the time with the orders alone, peak ≤ 6 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from numba import njit

os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "admf-numba")
)

SYMBOLS = 100
BARS = 2520
TIME_CHUNK = 504
CAPITAL = 1_000_000.0

# grid keys added one by one: 10 = 2×5, 100 = ×10, 1,000 = ×10, 10,000 = ×10
GRID_STEPS = [
    ("allow_short", [False, True]),
    ("stop_loss", [None, 0.05, 0.1, 0.15, 0.2]),
    ("rebalance_band", [float(x) for x in np.round(np.linspace(0.0, 0.0045, 10), 5)]),
    ("strategy", [{"trend": round(a, 3), "slow": round(1 - a, 3)} for a in np.linspace(0, 1, 10)]),
    ("max_drawdown", [None, *[float(x) for x in np.round(np.linspace(0.1, 0.5, 9), 3)]]),
]


#: the exit rules of docs/ACCOUNTING.md, exits, all on (scalars added to every grid point)
EXITS = {"exit_on": "intrabar", "take_profit": 0.15, "trailing_stop": 0.08, "max_positions": 20}


def grid_for(n: int) -> dict:
    grid, size = {}, 1
    for key, values in GRID_STEPS:
        if size >= n:
            break
        grid[key] = values
        size *= len(values)
    if size != n:
        raise SystemExit(f"size {n} is not one of 10, 100, 1000, 10000")
    return grid


# -- market and signals (numpy; the data and strategy stages are not used here) -----------------


def make_market(seed: int = 7):
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0002, 0.015, (BARS, SYMBOLS))
    close = 50.0 * np.exp(np.cumsum(ret, axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.004, (BARS, SYMBOLS)))
    # late listings and a few missing bars
    for s in range(0, SYMBOLS, 10):
        start = int(rng.integers(0, BARS // 2))
        open_[:start, s] = close[:start, s] = np.nan
    gaps = rng.random((BARS, SYMBOLS)) < 0.002
    open_[gaps] = close[gaps] = np.nan
    return open_, close


def make_high_low(open_: np.ndarray, close: np.ndarray, seed: int = 8):
    """High and low around each bar's open and close (their own RNG: open/close stay as they are)."""
    rng = np.random.default_rng(seed)
    high = np.fmax(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, open_.shape)))
    low = np.fmin(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, open_.shape)))
    return high, low


def _sma(x: np.ndarray, w: int) -> np.ndarray:
    c = np.cumsum(np.nan_to_num(x), axis=0)
    out = np.full_like(x, np.nan)
    out[w - 1 :] = (c[w - 1 :] - np.vstack([np.zeros((1, x.shape[1])), c[:-w]])) / w
    return out


def make_signals(close: np.ndarray) -> np.ndarray:
    """(T, S, 2): sign(sma10 - sma50) and sign(sma20 - sma100) of the log close (ma_crossover)."""
    lc = np.log(close)
    out = np.empty((BARS, SYMBOLS, 2))
    for k, (f, s) in enumerate([(10, 50), (20, 100)]):
        out[:, :, k] = np.nan_to_num(np.sign(_sma(lc, f) - _sma(lc, s)))
    return out


# -- roofline: the contract without risk rules, one core ----------------------------------------


@njit(cache=True, nogil=True)
def roofline(open_, close, u, pw, comm, fixed, slip, capital):
    # u: (M, T, S) mixed signals; portfolio p uses u[p % M]; fixed sizing, long/short as given
    T, S = close.shape
    P = pw.shape[0]
    M = u.shape[0]
    lc = np.zeros(S)
    lcs = np.empty((T, S))
    for t in range(T):
        for s in range(S):
            c = close[t, s]
            if c == c:
                lc[s] = c
            lcs[t, s] = lc[s]
    out = np.empty((T, P))
    q = np.zeros(S)
    Q = np.zeros(S)
    w_set = np.zeros(S)
    for p in range(P):
        um = u[p % M]
        cash = capital
        q[:] = 0.0
        Q[:] = 0.0
        w_set[:] = 0.0
        for t in range(T):
            asset = 0.0
            for s in range(S):
                if Q[s] != q[s]:
                    o = open_[t, s]
                    if o == o:
                        qty = Q[s] - q[s]
                        px = o * (1.0 + (1.0 if qty > 0 else -1.0) * slip[p] / 1e4)
                        cash -= qty * px + comm[p] * abs(qty) * px + fixed[p]
                        q[s] = Q[s]
                asset += q[s] * lcs[t, s]
            eq = cash + asset
            out[t, p] = eq
            for s in range(S):
                w = um[t, s] * pw[p]
                if w != w_set[s]:
                    w_set[s] = w
                    Q[s] = w * eq / lcs[t, s] if lcs[t, s] > 0 else 0.0
    return out


def roofline_rate(open_, close, sig, n_portfolios: int = 200) -> float:
    """Steps per second of the plain loop on one core (after compilation)."""
    kern = roofline
    mixes = np.array([[a, 1 - a] for a in np.linspace(0, 1, 10)])
    u = np.clip(np.einsum("tsk,mk->mts", sig, mixes), -1, 1)
    u = np.ascontiguousarray(u)
    P = n_portfolios
    pw = np.full(P, 1.0 / SYMBOLS)
    comm, fixed, slip = np.full(P, 5e-4), np.zeros(P), np.full(P, 2.0)
    kern(open_[:10], close[:10], u[:, :10], pw[:2], comm, fixed, slip, CAPITAL)
    best = np.inf
    for _ in range(3):
        tic = time.perf_counter()
        kern(open_, close, u, pw, comm, fixed, slip, CAPITAL)
        best = min(best, time.perf_counter() - tic)
    return P * SYMBOLS * BARS / best


# -- process-tree sampling ------------------------------------------------------------------------


class TreeSampler:
    """Peak RSS (sum over this process and its descendants) and CPU seconds, sampled."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self.root = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tree: list = []
        self._tree_at = -1.0

    def _procs(self):
        # listing children scans /proc (~1 ms): refresh the list once a second only
        now = time.monotonic()
        if now - self._tree_at > 1.0:
            try:
                self._tree = [self.root, *self.root.children(recursive=True)]
            except Exception:
                self._tree = [self.root]
            self._tree_at = now
        return self._tree

    def _sample(self) -> None:
        total = 0
        for p in self._procs():
            try:
                total += p.memory_info().rss
                t = p.cpu_times()
                self._cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
            except Exception:
                continue
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def cpu_seconds(self) -> float:
        self._sample()
        return sum(self._cpu.values())

    def __enter__(self) -> TreeSampler:
        self._sample()
        self.peak = 0
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# -- one size ----------------------------------------------------------------------------------------


def run_size(
    n,
    client,
    data,
    signals,
    out_root: Path,
    write_orders: bool,
    n_cores: int,
    exits: bool = False,
    trades: bool = False,
) -> dict:
    from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
    from admf_dask.portfolio import expand_grid, run_portfolios

    tic = time.perf_counter()
    extra = EXITS if exits else {}
    cfg = PortfoliosConfig(capital=CAPITAL, batch_size=500, grid=grid_for(n), **extra)
    book = expand_grid(cfg, ExecutionConfig(), ["trend", "slow"], SYMBOLS)
    t_grid = time.perf_counter() - tic
    out = out_root / f"n{n}"
    shutil.rmtree(out, ignore_errors=True)
    with TreeSampler() as sampler:
        cpu0 = sampler.cpu_seconds()
        tic = time.perf_counter()
        res = run_portfolios(
            data,
            signals,
            None,
            book,
            out,
            client=client,
            run_id=f"bench{n}",
            write_orders=write_orders,
            write_trades=trades,
        )
        wall = time.perf_counter() - tic
        cpu = sampler.cpu_seconds() - cpu0
    steps = n * SYMBOLS * BARS
    size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
    orders_bytes = sum(f.stat().st_size for f in (out / "orders.parquet").rglob("*") if f.is_file())
    shutil.rmtree(out, ignore_errors=True)
    return {
        "n": n,
        "exits": exits,
        "orders": write_orders,
        "trades": trades,
        "grid_s": t_grid,
        "wall_s": wall,
        "compute_s": res.timings["compute"],
        "timings": res.timings,
        "steps_per_s": steps / wall,
        "peak_gb": sampler.peak / 1e9,
        "cpu_s": cpu,
        "cpu_busy": cpu / (wall * n_cores),
        "n_orders": res.n_orders,
        "out_mb": size_mb,
        "orders_b": orders_bytes / max(res.n_orders, 1) if write_orders else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument(
        "--orders",
        choices=["yes", "no", "both"],
        default="both",
        help="write orders.parquet (both: run each size twice)",
    )
    parser.add_argument(
        "--exits",
        choices=["off", "on", "both"],
        default="off",
        help="the exit rules of docs/ACCOUNTING.md, exits (EXITS) on the same grids (both: run each size twice)",
    )
    parser.add_argument(
        "--trades",
        choices=["off", "on", "both"],
        default="off",
        help="write trades.parquet and the trade metrics too (both: run each size twice)",
    )
    parser.add_argument("--out", default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args(argv)

    import dask
    import pandas as pd
    import xarray as xr
    from distributed import Client, LocalCluster

    from admf_dask.portfolio import warm_kernels

    n_cores = os.cpu_count() or 1
    tic = time.perf_counter()
    open_, close = make_market()
    high, low = make_high_low(open_, close)
    sig = make_signals(close)
    t_inputs = time.perf_counter() - tic

    warm_kernels()
    roof_before = roofline_rate(open_, close, sig)

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        memory_limit="3GiB",
    )
    client = Client(cluster)
    n_workers = sum(client.nthreads().values())
    times = pd.date_range("2010-01-04", periods=BARS, freq="B")
    syms = [f"S{i:03d}" for i in range(SYMBOLS)]
    tic = time.perf_counter()
    data = xr.Dataset(
        {
            "open": (("time", "symbol"), open_),
            "high": (("time", "symbol"), high),
            "low": (("time", "symbol"), low),
            "close": (("time", "symbol"), close),
        },
        coords={"time": times, "symbol": syms},
    ).chunk({"time": TIME_CHUNK, "symbol": -1})
    signals = xr.DataArray(
        sig,
        dims=("time", "symbol", "strategy"),
        coords={"time": times, "symbol": syms, "strategy": ["trend", "slow"]},
    ).chunk({"time": TIME_CHUNK, "symbol": -1, "strategy": -1})
    data, signals = client.persist([data, signals])
    dask.compute(data["close"].sum(), signals.sum())  # materialize on the workers
    t_persist = time.perf_counter() - tic

    out_root = Path(args.out or tempfile.mkdtemp(prefix="admf-bench-"))
    modes = {"yes": [True], "no": [False], "both": [True, False]}[args.orders]
    exit_modes = {"off": [False], "on": [True], "both": [False, True]}[args.exits]
    trade_modes = {"off": [False], "on": [True], "both": [False, True]}[args.trades]
    rows = []
    try:
        # warm-up: workers import zarr/pyarrow and load the numba cache before any timing
        run_size(10, client, data, signals, out_root, True, n_cores)
        for n in args.sizes:
            for write_orders in modes:
                for exits in exit_modes:
                    for trades in trade_modes:
                        row = run_size(
                            n, client, data, signals, out_root, write_orders, n_cores, exits, trades
                        )
                        rows.append(row)
                        print(
                            f"  {n:>6} portfolios, orders {write_orders}, exits {exits}, "
                            f"trades {trades}: {row['wall_s']:.2f} s, {row['timings']}",
                            flush=True,
                        )
    finally:
        client.close()
        cluster.close()
        if args.out is None:
            shutil.rmtree(out_root, ignore_errors=True)
    # the machine may be shared: take the roofline at its best, before or after
    roof = max(roof_before, roofline_rate(open_, close, sig))

    print()
    print(
        f"inputs (numpy market + signals): {t_inputs:.2f} s; persist to workers: "
        f"{t_persist:.2f} s; {n_workers} workers × 1 thread on {n_cores} cores"
    )
    print(f"roofline (plain numba loop, no risk, no records, 1 core): {roof:.3g} steps/s")
    print(
        "steps/s = portfolios × symbols × bars / wall; vs roofline×cores = steps/s / (roofline × "
        "workers); per CPU-s = steps per CPU-second of the whole process tree / roofline "
        "(the engine's efficiency whatever share of the machine it got); CPU busy = tree CPU "
        "/ (wall × cores); task columns: wall seconds summed over tasks (kernel: the step kernel; "
        "ledger: orders.parquet + trades.parquet; store: results.zarr regions and metrics), "
        "idle = workers × compute - their sum, workers busy = their sum / (workers × compute), "
        "task CPU = CPU of the task threads; orders B/order = bytes of orders.parquet per order"
    )
    hdr = (
        "| portfolios | exits | orders | trades | wall s | compute s | tasks: kernel s | ledger s | "
        "store s | idle s | workers busy | task CPU s | tree CPU s | steps/s | vs roofline×cores | "
        "per CPU-s | peak GB | CPU busy | n orders | orders B/order | output MB |"
    )
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for r in rows:
        t = r["timings"]
        kernel = t["task_kernel"]
        ledger = t["task_orders"] + t.get("task_trades", 0.0)
        store = t["task_zarr"] + t["task_metrics"]
        slots = t["compute"] * n_workers
        idle = max(0.0, slots - (kernel + ledger + store))
        print(
            f"| {r['n']:,} | {'on' if r['exits'] else 'off'} | {'yes' if r['orders'] else 'no'} | "
            f"{'yes' if r['trades'] else 'no'} | {r['wall_s']:.2f} | "
            f"{t['compute']:.2f} | {kernel:.2f} | {ledger:.2f} | {store:.2f} | {idle:.2f} | "
            f"{(kernel + ledger + store) / slots:.0%} | {t['task_cpu']:.2f} | "
            f"{r['cpu_s']:.2f} | {r['steps_per_s']:.3g} | "
            f"{r['steps_per_s'] / (roof * n_workers):.0%} | "
            f"{r['n'] * SYMBOLS * BARS / r['cpu_s'] / roof:.0%} | "
            f"{r['peak_gb']:.2f} | {r['cpu_busy']:.0%} | {r['n_orders']:,} | "
            f"{r['orders_b']:.2f} | {r['out_mb']:.0f} |"
        )
    for r in rows:  # trades on against the same run without them
        if r["trades"]:
            off = [
                o
                for o in rows
                if not o["trades"]
                and (o["n"], o["orders"], o["exits"]) == (r["n"], r["orders"], r["exits"])
            ]
            if off:
                o = off[0]
                print(
                    f"{r['n']:,} portfolios, trades on / off (orders {'yes' if r['orders'] else 'no'}, "
                    f"exits {'on' if r['exits'] else 'off'}): wall {r['wall_s'] / o['wall_s']:.2f}x, "
                    f"task CPU {r['timings']['task_cpu'] / o['timings']['task_cpu']:.2f}x, "
                    f"peak {r['peak_gb']:.2f} GB"
                )
    for mode in modes:
        by_n = {
            r["n"]: r for r in rows if r["orders"] == mode and not r["exits"] and not r["trades"]
        }
        if 1000 in by_n and 10000 in by_n:
            ratio = by_n[10000]["wall_s"] / by_n[1000]["wall_s"]
            print(f"10k / 1k wall time (orders {'yes' if mode else 'no'}): {ratio:.1f}x")
        on = {r["n"]: r for r in rows if r["orders"] == mode and r["exits"] and not r["trades"]}
        for n in sorted(set(on) & set(by_n)):
            ratio = on[n]["wall_s"] / by_n[n]["wall_s"]
            print(
                f"{n:,} portfolios, exits on / off wall time (orders {'yes' if mode else 'no'}): "
                f"{ratio:.2f}x"
            )


if __name__ == "__main__":
    main()
