"""Scaling of the portfolio stage: 10 … 10,000 portfolios × 100 symbols × 2,520 bars, 1 and 2 workers.

Drives the portfolio engineer's ``portfolio_scaling.py`` (its market, trend signals, grids and
roofline) with two LocalClusters alive side by side (1 and 2 single-thread worker processes,
data and signals persisted on each), so both worker counts run interleaved in one session:
for each size, the roofline is measured first (a plain numba loop on one core,
best of 3, on the same data), then ``--repeats`` rounds of (1 worker, 2 workers).

Per run: wall time of ``run_portfolios`` and its phases (prepare, compute, finalize; summed task
seconds of kernel, zarr writes, parquet writes, metrics), steps per second, engine /
(roofline × workers), peak RSS of the process tree that does the work (this process + that
cluster's nanny and worker processes), and the CPU busy share of the portfolio stage: CPU
seconds of the workers' processes / (wall × workers) — and, for contrast, the whole machine's
busy share (other people's processes included).

    .venv/bin/python benchmarks/scaling.py                      # all sizes, orders written
    .venv/bin/python benchmarks/scaling.py --quick              # 10 and 100
    .venv/bin/python benchmarks/scaling.py --sizes 1000 --orders no

Targets: CPU busy share ≥ 90% during the portfolio stage.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from _common import (
    CpuShare,
    LoadTracker,
    ProcSampler,
    command_line,
    log,
    md_table,
    median,
    sci,
)
from portfolio_scaling import (
    BARS,
    CAPITAL,
    SYMBOLS,
    TIME_CHUNK,
    grid_for,
    make_market,
    make_signals,
    roofline_rate,
)


def start_cluster(n_workers: int, data, signals):
    import dask
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        memory_limit="6GiB",
        silence_logs=40,
    )
    client = Client(cluster, set_as_default=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph")
        data, signals = client.persist([data, signals])
    dask.compute(data["close"].sum(), signals.sum(), scheduler=client.get)
    pids = list(client.run(os.getpid).values())
    import psutil

    nannies = [psutil.Process(p).parent().pid for p in pids]
    return cluster, client, data, signals, nannies


def run_one(n, workers, env, out_root: Path, write_orders: bool) -> dict:
    from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
    from admf_dask.portfolio import expand_grid, run_portfolios

    cluster, client, data, signals, nannies = env
    cfg = PortfoliosConfig(capital=CAPITAL, batch_size=500, grid=grid_for(n))
    book = expand_grid(cfg, ExecutionConfig(), ["trend", "slow"], SYMBOLS)
    out = out_root / f"n{n}-w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    sampler = ProcSampler(roots=nannies, alone=[os.getpid()])
    base = sum(p.memory_info().rss for p in sampler._procs())
    on_workers = ProcSampler(roots=nannies)  # CPU of the worker (and nanny) processes only
    with sampler:
        with CpuShare(sampler, workers) as share, CpuShare(on_workers, workers) as wshare:
            tic = time.perf_counter()
            res = run_portfolios(
                data,
                signals,
                None,
                book,
                out,
                client=client,
                run_id=f"scaling{n}w{workers}",
                write_orders=write_orders,
            )
            wall = time.perf_counter() - tic
    out_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
    shutil.rmtree(out, ignore_errors=True)
    return {
        "wall_s": wall,
        "timings": dict(res.timings),
        "peak_gb": sampler.peak / 1e9,
        "base_gb": base / 1e9,
        "busy": wshare.own,
        "busy_tree": share.own,
        "system": share.system,
        "n_orders": res.n_orders,
        "out_mb": out_mb,
        "load": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="rounds per size up to 1,000")
    ap.add_argument("--repeats-large", type=int, default=2, help="rounds at 10,000")
    ap.add_argument("--orders", choices=("yes", "no"), default="yes")
    ap.add_argument("--quick", action="store_true", help="sizes 10 and 100, one round")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [10, 100], 1

    import distributed  # noqa: F401  (configures its loggers on import: quiet them after)
    import pandas as pd
    import xarray as xr

    from admf_dask.portfolio import warm_kernels

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR)

    load = LoadTracker()
    open_, close = make_market()
    sig = make_signals(close)
    warm_kernels()
    times = pd.date_range("2010-01-04", periods=BARS, freq="B")
    syms = [f"S{i:03d}" for i in range(SYMBOLS)]
    data = xr.Dataset(
        {"open": (("time", "symbol"), open_), "close": (("time", "symbol"), close)},
        coords={"time": times, "symbol": syms},
    ).chunk({"time": TIME_CHUNK, "symbol": -1})
    signals = xr.DataArray(
        sig,
        dims=("time", "symbol", "strategy"),
        coords={"time": times, "symbol": syms, "strategy": ["trend", "slow"]},
    ).chunk({"time": TIME_CHUNK, "symbol": -1, "strategy": -1})
    envs = {w: start_cluster(w, data, signals) for w in args.workers}
    out_root = Path(tempfile.mkdtemp(prefix="admf-scaling-"))
    write_orders = args.orders == "yes"
    results: dict[tuple[int, int], list[dict]] = {}
    roofs: dict[int, float] = {}
    try:
        # warm-up: kernels compiled/loaded on every worker, zarr and pyarrow imported
        for w in args.workers:
            run_one(10, w, envs[w], out_root, write_orders)
        for n in args.sizes:
            roofs[n] = roofline_rate(open_, close, sig)
            log(f"{n} portfolios: roofline {roofs[n]:.3g} steps/s (1 core), load {load}")
            reps = args.repeats if n <= 1000 else args.repeats_large
            for r in range(reps):
                for w in args.workers:
                    row = run_one(n, w, envs[w], out_root, write_orders)
                    results.setdefault((n, w), []).append(row)
                    t = row["timings"]
                    log(
                        f"  rep {r} {n} portfolios, {w} workers: {row['wall_s']:.2f} s, "
                        f"peak {row['peak_gb']:.2f} GB, busy {row['busy']:.0%}, "
                        f"kernel {t.get('task_kernel', 0):.2f}, parquet "
                        f"{t.get('task_orders', 0):.2f}, load {row['load']:.1f}"
                    )
        roofs["end"] = roofline_rate(open_, close, sig)
    finally:
        for cluster, client, *_ in envs.values():
            client.close()
            cluster.close()
        shutil.rmtree(out_root, ignore_errors=True)

    # the roofline is timed before each size and at the end (best of 3 each); the machine is
    # shared, so the best of all is the least disturbed: the engine is compared with that
    roof = max(roofs.values())
    rows, stage_rows = [], []
    for (n, w), runs in results.items():
        wall = median(r["wall_s"] for r in runs)
        rate = n * SYMBOLS * BARS / wall
        busy = median(r["busy"] for r in runs)
        tm = {
            k: median(r["timings"].get(k, float("nan")) for r in runs) for k in runs[0]["timings"]
        }
        rows.append(
            [
                f"{n:,}",
                w,
                f"{wall:.2f}"
                + (
                    f" ({min(r['wall_s'] for r in runs):.2f}–{max(r['wall_s'] for r in runs):.2f})"
                    if len(runs) > 1
                    else ""
                ),
                sci(rate),
                sci(roofs[n]),
                f"{rate / (roof * w):.0%}",
                f"{median(r['peak_gb'] for r in runs):.2f} ({median(r['base_gb'] for r in runs):.2f})",
                f"{busy:.0%} {'✓' if busy >= 0.9 else '✗'}",
                f"{median(r['busy_tree'] for r in runs):.0%}",
                f"{median(r['system'] for r in runs):.0%}",
                f"{runs[0]['n_orders']:,}",
                f"{median(r['load'] for r in runs):.1f}",
            ]
        )
        task_wall = sum(tm.get(k, 0.0) for k in ("task_kernel", "task_zarr", "task_orders"))
        cpu_share = tm.get("task_cpu", float("nan")) / task_wall if task_wall else float("nan")
        stage_rows.append(
            [
                f"{n:,}",
                w,
                f"{tm.get('prepare', float('nan')):.2f}",
                f"{tm.get('warm', float('nan')):.2f}",
                f"{tm.get('compute', float('nan')):.2f}",
                f"{tm.get('finalize', float('nan')):.2f}",
                f"{tm.get('task_kernel', float('nan')):.2f}",
                f"{tm.get('task_zarr', float('nan')):.2f}",
                f"{tm.get('task_orders', float('nan')):.2f}",
                f"{tm.get('task_metrics', float('nan')):.2f}",
                "—" if cpu_share != cpu_share else f"{cpu_share:.0%}",
                f"{median(r['out_mb'] for r in runs):,.0f}",
            ]
        )
    table = md_table(
        [
            "portfolios",
            "workers",
            "wall s, median (min–max)",
            "steps/s",
            "roofline steps/s (1 core), timed before this size",
            f"vs best roofline ({sci(roof)}) × workers",
            "peak GB (idle before the run)",
            "workers' CPU busy ≥ 90%",
            "whole tree CPU / (wall × workers)",
            "machine busy",
            "orders",
            "load (1 min)",
        ],
        rows,
        align="lrrrrrrrrrrr",
    )
    stages = md_table(
        [
            "portfolios",
            "workers",
            "prepare s",
            "warm s",
            "compute s",
            "finalize s",
            "task kernel s",
            "task zarr s",
            "task parquet s",
            "task metrics s",
            "task CPU / task wall",
            "output MB",
        ],
        stage_rows,
        align="lrrrrrrrrrrr",
    )
    orders = "written (orders.parquet)" if write_orders else "not written"
    text = (
        f"### Portfolio stage scaling — {SYMBOLS} symbols × {BARS:,} bars, 2 trend strategies\n\n"
        f"`{command_line()}`\n\n"
        f"Market, signals, grids and roofline (a plain numba loop, one core) from "
        f"`benchmarks/portfolio_scaling.py`; the roofline is timed before each size and at the "
        f"end, and the engine is compared with the best of those (the least disturbed); orders "
        f"{orders}; median of {args.repeats} interleaved round(s) up to 1,000 portfolios, "
        f"{args.repeats_large} at 10,000. Steps = portfolio·symbol·bar. Workers' CPU busy = CPU "
        f"seconds of the cluster's worker and nanny processes / (wall of `run_portfolios` × "
        f"workers); whole tree adds this process (client and scheduler, which can use the "
        f"other core when there is one worker); machine busy = all CPUs, everyone's "
        f"processes. Load average (1 min) over the run: {load} on "
        f"{os.cpu_count()} cores.\n\n{table}\n\n"
        "Time per phase of `run_portfolios` (wall) and summed task seconds per kind of work "
        "(medians); task CPU / task wall = CPU time the worker threads got while in tasks "
        "(below 100%: other processes took the core):\n\n"
        f"{stages}\n"
    )
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
