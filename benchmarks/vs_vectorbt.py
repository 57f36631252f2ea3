"""admf-dask's portfolio stage head to head with vectorbt 1.2 on identical work.

The case (`build_case`): ``admf_dask.load_market_data`` synthetic prices (50 symbols × 2,520
bars, no gaps), 10 signal strategies (``flips``: each bar every (symbol, strategy) sign flips
with probability ``--flip-prob``, 0.5 = a fresh coin every day; ``trend``: sign of a fast minus a
slow moving average of the log close, 10 window pairs), and a grid of long-only fixed-sizing
portfolios with fees and slippage (position_weight × strategy × slippage_bps × commission =
10 × 10 × 2 × 5 = 1,000; commission_fixed 1.0), no risk rules.

admf-dask: ``run_portfolios`` on a LocalCluster (``--workers``: 1 and 2 single-thread worker
processes) with the data and signals persisted on the workers, as in a pipeline run; it writes
equity/cash to ``results.zarr`` and (default) the order ledger to ``orders.parquet/``.
vectorbt: ``Portfolio.from_orders`` set up to follow docs/ACCOUNTING.md (target weights where they changed,
shifted one bar, ``size_type="targetpercent"``, ``price=open``, ``val_price`` = previous close,
fees, fixed fees, slippage, one cash-sharing group per portfolio, ``call_seq="auto"``), then
``pf.value()``; numba engine, one core (vectorbt has no parallel simulation).

Each side runs in its own subprocess (separate peak memory of the whole process tree, sampled
with psutil every 50 ms); both are warmed (numba compiled) before their timed call. Repeats are
interleaved (admf, vectorbt, admf, …) and medians reported. vectorbt needs ~18 GB at 1,000
portfolios, so by default it runs 100 and 300 portfolios and its time and memory are
extrapolated linearly to the admf size (a fit through the two points; said so in the table).
The equity of every portfolio vectorbt ran is compared with admf's (relative tolerance 1e-9).

    .venv/bin/python benchmarks/vs_vectorbt.py                    # the full case
    .venv/bin/python benchmarks/vs_vectorbt.py --quick            # 100 portfolios, vbt 10/30
    .venv/bin/python benchmarks/vs_vectorbt.py --signals trend --no-orders

Targets: admf ≥ 20× faster and ≥ 10× less memory than vectorbt at 1,000 × 50 × 2,520.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import (
    LoadTracker,
    ProcSampler,
    child_result,
    command_line,
    log,
    md_table,
    median,
    run_child,
    sci,
    spread,
)
from portfolio_scaling import _sma

CAPITAL = 1_000_000.0
COMMISSION_FIXED = 1.0
N_STRATEGIES = 10
TREND_WINDOWS = [(f, s) for s in (50, 100) for f in (5, 10, 15, 20, 25)]
# grid keys, slowest-varying first; sizes 10, 100, 1,000 drop keys from the front
GRID_KEYS = [
    ("position_weight", [float(x) for x in np.round(np.linspace(0.010, 0.019, 10), 4)]),
    ("strategy", [f"s{k}" for k in range(N_STRATEGIES)]),
    ("slippage_bps", [0.0, 5.0]),
    ("commission", [0.0, 0.0002, 0.0005, 0.001, 0.002]),
]
SCRIPT = Path(__file__).resolve()


# -- the case ------------------------------------------------------------------------------------


def grid_for(n: int) -> dict:
    """The grid of n = 10, 100 or 1,000 portfolios (keys dropped from the front)."""
    for i in range(len(GRID_KEYS)):
        keys = GRID_KEYS[i:]
        if int(np.prod([len(v) for _, v in keys])) == n:
            return dict(keys)
    raise SystemExit(f"--portfolios must be 10, 100 or 1000 (got {n})")


def make_signals(close: np.ndarray, kind: str, flip_prob: float, seed: int = 11) -> np.ndarray:
    """(T, S, K) signals in {-1, 0, 1}."""
    T, S = close.shape
    if kind == "flips":
        rng = np.random.default_rng(seed)
        start = rng.choice([-1.0, 1.0], size=(1, S, N_STRATEGIES))
        flips = rng.random((T, S, N_STRATEGIES)) < flip_prob
        flips[0] = False
        parity = np.cumsum(flips, axis=0, dtype=np.int32) & 1
        return start * (1.0 - 2.0 * parity)
    lc = np.log(close)
    out = np.empty((T, S, N_STRATEGIES))
    for k, (f, s) in enumerate(TREND_WINDOWS):
        out[:, :, k] = np.nan_to_num(np.sign(_sma(lc, f) - _sma(lc, s)))
    return out


def build_case(n: int, symbols: int, bars: int, signals: str, flip_prob: float, chunk: int = 504):
    """Data (xr.Dataset, dask-chunked), signals (xr.DataArray), open/close/signals ndarrays, book."""
    import xarray as xr

    import admf_dask as ad
    from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
    from admf_dask.portfolio import expand_grid

    data = ad.load_market_data(
        {
            "source": "synthetic",
            "symbols": symbols,
            "bars": bars,
            "seed": 7,
            "chunks": {"time": chunk},
        }
    )
    data = data[["open", "close"]].load()
    open_, close = data["open"].values, data["close"].values
    sig = make_signals(close, signals, flip_prob)
    names = [f"s{k}" for k in range(N_STRATEGIES)]
    sig_da = xr.DataArray(
        sig,
        dims=("time", "symbol", "strategy"),
        coords={"time": data["time"], "symbol": data["symbol"], "strategy": names},
    )
    # position_weight ≤ 0.019: at most 95% invested, so cash never runs short (vectorbt would
    # shrink the order where §2 lets cash go negative)
    cfg = PortfoliosConfig(
        capital=CAPITAL,
        batch_size=500,
        commission_fixed=COMMISSION_FIXED,
        position_weight=GRID_KEYS[0][1][-1],
        grid=grid_for(n),
    )
    book = expand_grid(cfg, ExecutionConfig(), names, symbols)
    return data, sig_da, open_, close, sig, book


def target_weights(sig: np.ndarray, book, p: int) -> np.ndarray:
    """§2 step 4 for one long-only, fixed-sizing portfolio without risk rules, in numpy."""
    u = np.clip(np.einsum("tsk,k->ts", sig, book.strategy_weights[p]), -1.0, 1.0)
    w = np.maximum(u, 0.0) * book.position_weight[p]
    mp, mg = book.max_position[p], book.max_gross[p]
    w = np.clip(w, -mp, mp)
    gross = np.abs(w).sum(axis=1, keepdims=True)
    return np.where(gross > mg, w * (mg / np.where(gross > 0, gross, 1.0)), w)


# -- children ------------------------------------------------------------------------------------


def admf_child(args) -> None:
    import dask
    from distributed import Client, LocalCluster

    from admf_dask.portfolio import run_portfolios

    t_proc = time.perf_counter()
    data, sig_da, _, _, _, book = build_case(
        args.n, args.symbols, args.bars, args.signals, args.flip_prob
    )
    data = data.chunk({"time": 504, "symbol": -1})
    sig_da = sig_da.chunk({"time": 504, "symbol": -1, "strategy": -1})
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=40,
    )
    client = Client(cluster)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph")
        data, sig_da = client.persist([data, sig_da])
    dask.compute(data["close"].sum(), sig_da.sum())
    out = Path(args.out) / f"admf-w{args.workers}"
    # warm-up: a 10-portfolio run compiles/loads every kernel and imports zarr/pyarrow on workers
    from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
    from admf_dask.portfolio import expand_grid

    small = expand_grid(
        PortfoliosConfig(
            capital=CAPITAL,
            commission_fixed=COMMISSION_FIXED,
            position_weight=0.019,
            grid=grid_for(10),
        ),
        ExecutionConfig(),
        list(book.strategy_names),
        args.symbols,
    )
    run_portfolios(
        data,
        sig_da,
        None,
        small,
        out,
        client=client,
        run_id="warm",
        write_orders=not args.no_orders,
        # equal work: vectorbt's from_orders records orders only (its trades are derived when
        # asked for); admf's trade ledger has its own row in portfolio_scaling.py
        write_trades=False,
    )
    shutil.rmtree(out, ignore_errors=True)

    tree = ProcSampler()  # this process (client + scheduler) and the cluster's processes
    base = sum(p.memory_info().rss for p in tree._procs())
    cpu0 = tree.cpu_seconds()
    tic = time.perf_counter()
    res = run_portfolios(
        data,
        sig_da,
        None,
        book,
        out,
        client=client,
        run_id="bench",
        write_orders=not args.no_orders,
        # equal work: vectorbt's from_orders records orders only (its trades are derived when
        # asked for); admf's trade ledger has its own row in portfolio_scaling.py
        write_trades=False,
    )
    wall = time.perf_counter() - tic
    cpu = tree.cpu_seconds() - cpu0
    if args.save_equity:
        np.save(Path(args.out) / "equity-admf.npy", res.equity[:, : args.save_equity].values)
    out_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
    client.close()
    cluster.close()
    shutil.rmtree(out, ignore_errors=True)
    child_result(
        {
            "wall_s": wall,
            "cpu_s": cpu,
            "base_gb": base / 1e9,
            "timings": res.timings,
            "n_orders": res.n_orders,
            "out_mb": out_mb,
            "process_s": time.perf_counter() - t_proc,
        }
    )


def _vbt_inputs(open_, close, sig, book, n):
    """vectorbt's arrays: every portfolio's columns side by side (portfolio-major)."""
    T, S = close.shape
    C = n * S
    size = np.empty((T, C))
    for p in range(n):
        w = target_weights(sig, book, p)
        prev = np.vstack([np.zeros((1, S)), w[:-1]])
        changed = np.where(w != prev, w, np.nan)
        size[0, p * S : (p + 1) * S] = np.nan
        size[1:, p * S : (p + 1) * S] = changed[:-1]  # set at t's close, ordered at t+1
    prev_close = np.vstack([np.full((1, S), np.nan), close[:-1]])
    cols = np.arange(n)
    row = lambda a: np.repeat(a[cols], S)[None, :]  # noqa: E731  (per-column parameter row)
    return {
        "close": np.tile(close, (1, n)),
        "size": size,
        "price": np.tile(open_, (1, n)),
        "val_price": np.tile(prev_close, (1, n)),
        "fees": row(book.commission),
        "fixed_fees": row(book.commission_fixed),
        "slippage": row(book.slippage_bps) / 1e4,
        "group_by": np.repeat(cols, S),
    }


def _vbt_run(vbt, index, x):
    import pandas as pd

    pf = vbt.Portfolio.from_orders(
        pd.DataFrame(x["close"], index=index),
        size=x["size"],
        size_type="targetpercent",
        price=x["price"],
        val_price=x["val_price"],
        fees=x["fees"],
        fixed_fees=x["fixed_fees"],
        slippage=x["slippage"],
        init_cash=CAPITAL,
        group_by=x["group_by"],
        cash_sharing=True,
        call_seq="auto",
        freq="1D",
    )
    return pf, pf.value().to_numpy()


def vbt_child(args) -> None:
    import pandas as pd
    import psutil
    import vectorbt as vbt
    from vectorbt._engine import is_rust_available

    t_proc = time.perf_counter()
    data, _, open_, close, sig, book = build_case(
        args.portfolios, args.symbols, args.bars, args.signals, args.flip_prob
    )
    index = pd.DatetimeIndex(data["time"].values)
    del data
    # warm-up: compile vectorbt's kernels on a small slice
    x = _vbt_inputs(open_[:40], close[:40], sig[:40], book, 2)
    _vbt_run(vbt, index[:40], x)
    del x
    n = args.n
    base = psutil.Process().memory_info().rss
    tic = time.perf_counter()
    x = _vbt_inputs(open_, close, sig, book, n)
    prep = time.perf_counter() - tic
    cpu0 = time.process_time()
    tic = time.perf_counter()
    pf, equity = _vbt_run(vbt, index, x)
    sim = time.perf_counter() - tic
    cpu = time.process_time() - cpu0
    n_orders = len(pf.order_records)
    if args.save_equity:
        np.save(Path(args.out) / f"equity-vbt-{n}.npy", equity[:, : args.save_equity])
    child_result(
        {
            "prep_s": prep,
            "wall_s": sim,
            "cpu_s": cpu,
            "base_gb": base / 1e9,
            "n_orders": n_orders,
            "engine": "rust" if is_rust_available() else "numba",
            "process_s": time.perf_counter() - t_proc,
        }
    )


# -- parent --------------------------------------------------------------------------------------


def _fit(xs, ys, x):
    """Linear through the points (least squares), evaluated at x."""
    if len(xs) == 1:
        return ys[0] * x / xs[0]
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return a + b * x


def case_args(args) -> list[str]:
    out = [
        "--symbols",
        args.symbols,
        "--bars",
        args.bars,
        "--signals",
        args.signals,
        "--flip-prob",
        args.flip_prob,
    ]
    return [str(a) for a in out]


def run_admf(args, workers: int, scratch: str, save_equity: int = 0):
    a = [
        "--child",
        "admf",
        "--n",
        args.portfolios,
        "--workers",
        workers,
        "--out",
        scratch,
        "--save-equity",
        save_equity,
        *case_args(args),
    ]
    if args.no_orders:
        a.append("--no-orders")
    return run_child(SCRIPT, a)


def run_vbt(args, n: int, scratch: str, save_equity: int = 0):
    a = [
        "--child",
        "vbt",
        "--n",
        n,
        "--portfolios",
        args.portfolios,
        "--out",
        scratch,
        "--save-equity",
        save_equity,
        *case_args(args),
    ]
    return run_child(SCRIPT, a)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portfolios", type=int, default=1000, help="admf portfolios (10/100/1000)")
    ap.add_argument("--vbt-portfolios", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--signals", choices=("flips", "trend"), default="flips")
    ap.add_argument("--flip-prob", type=float, default=0.5)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-orders", action="store_true", help="admf: skip orders.parquet")
    ap.add_argument("--quick", action="store_true", help="100 portfolios, vectorbt 10 and 30")
    ap.add_argument("--child", choices=("admf", "vbt"), help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--save-equity", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "admf":
        args.workers = args.workers[0]
        admf_child(args)
        return ""
    if args.child == "vbt":
        vbt_child(args)
        return ""
    if args.quick:
        args.portfolios, args.vbt_portfolios, args.repeats, args.workers = 100, [10, 30], 1, [2]
    grid_for(args.portfolios)
    vsizes = sorted(set(args.vbt_portfolios))
    n_check = max(vsizes)
    load = LoadTracker()
    scratch = tempfile.mkdtemp(prefix="admf-vs-vbt-")
    admf: dict[int, list] = {w: [] for w in args.workers}
    vb: dict[int, list] = {n: [] for n in vsizes}
    check = None
    try:
        for r in range(args.repeats):
            for w in args.workers:
                save = n_check if (r == 0 and w == args.workers[-1]) else 0
                run = run_admf(args, w, scratch, save)
                admf[w].append(run)
                log(
                    f"rep {r} admf {args.portfolios} portfolios, {w} workers: "
                    f"{run.result['wall_s']:.2f} s, peak {run.peak_gb:.2f} GB, load {load}"
                )
            for n in vsizes:
                save = n_check if (r == 0 and n == n_check) else 0
                run = run_vbt(args, n, scratch, save)
                vb[n].append(run)
                log(
                    f"rep {r} vectorbt {n} portfolios: {run.result['wall_s']:.2f} s "
                    f"(+ prep {run.result['prep_s']:.2f} s), peak {run.peak_gb:.2f} GB, "
                    f"load {load}"
                )
            if r == 0:
                ea = np.load(Path(scratch) / "equity-admf.npy")
                ev = np.load(Path(scratch) / f"equity-vbt-{n_check}.npy")
                check = float(np.max(np.abs(ea - ev) / np.abs(ev)))
                log(f"equity check over {n_check} portfolios: max relative difference {check:.2e}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    N, S, T = args.portfolios, args.symbols, args.bars
    steps = lambda n: n * S * T  # noqa: E731
    rows = []
    admf_med = {}
    for w, runs in admf.items():
        t = median(r.result["wall_s"] for r in runs)
        c = median(r.result["cpu_s"] for r in runs)
        pk = median(r.peak_gb for r in runs)
        admf_med[w] = (t, c, pk)
        tm = runs[0].result["timings"]
        rows.append(
            [
                f"admf-dask, {w} worker{'s' if w > 1 else ''}",
                f"{N:,}",
                spread([r.result["wall_s"] for r in runs]),
                f"{c:.1f}",
                f"{median(r.wall_s for r in runs):.0f}",
                f"{spread([r.peak_gb for r in runs])} ({median(r.result['base_gb'] for r in runs):.2f})",
                sci(steps(N) / t),
                f"{runs[0].result['n_orders']:,}",
                f"task s: kernel {tm.get('task_kernel', 0):.1f}, zarr {tm.get('task_zarr', 0):.1f}, "
                f"parquet {tm.get('task_orders', 0):.1f}",
            ]
        )
    vt, vc, vp = [], [], []
    engine = "numba"
    for n, runs in vb.items():
        t = median(r.result["wall_s"] for r in runs)
        c = median(r.result["cpu_s"] for r in runs)
        pk = median(r.peak_gb for r in runs)
        vt.append(t)
        vc.append(c)
        vp.append(pk)
        engine = runs[0].result["engine"]
        rows.append(
            [
                "vectorbt 1.2.0",
                f"{n:,}",
                spread([r.result["wall_s"] for r in runs]),
                f"{c:.1f}",
                f"{median(r.wall_s for r in runs):.0f}",
                f"{spread([r.peak_gb for r in runs])} ({median(r.result['base_gb'] for r in runs):.2f})",
                sci(steps(n) / t),
                f"{runs[0].result['n_orders']:,}",
                f"input prep {median(r.result['prep_s'] for r in runs):.1f} s (not counted)",
            ]
        )
    if N in vb:
        i = vsizes.index(N)
        v_t, v_c, v_pk, how = vt[i], vc[i], vp[i], "measured"
    else:
        v_t, v_c, v_pk = _fit(vsizes, vt, N), _fit(vsizes, vc, N), _fit(vsizes, vp, N)
        how = f"extrapolated from {' and '.join(map(str, vsizes))}"
        rows.append(
            [
                f"vectorbt 1.2.0 ({how})",
                f"{N:,}",
                f"{v_t:.1f}",
                f"{v_c:.1f}",
                "—",
                f"{v_pk:.1f}",
                sci(steps(N) / v_t),
                "—",
                "linear fit",
            ]
        )
    head = md_table(
        [
            "engine",
            "portfolios",
            "simulate s (wall), median (min–max)",
            "simulate CPU-s",
            "process s",
            "peak GB of the tree (idle before the call)",
            "steps/s (wall)",
            "orders",
            "notes",
        ],
        rows,
        align="llrrrrrrl",
    )
    ratio_rows = []
    for w, (t, c, pk) in sorted(admf_med.items()):
        speed, mem = v_t / t, v_pk / pk
        ratio_rows.append(
            [
                f"admf-dask {w} worker{'s' if w > 1 else ''} vs vectorbt ({how})",
                f"{speed:.1f}×",
                "✓" if speed >= 20 else "✗",
                f"{v_c / c:.1f}×",
                f"{mem:.1f}×",
                "✓" if mem >= 10 else "✗",
            ]
        )
    ratios = md_table(
        [f"at {N:,} × {S} × {T:,}", "speed (wall)", "≥ 20×", "CPU-s ratio", "memory", "≥ 10×"],
        ratio_rows,
        align="lrcrrc",
    )
    orders = "not written" if args.no_orders else "written to orders.parquet"
    sig_desc = (
        f"random daily flips (p = {args.flip_prob})"
        if args.signals == "flips"
        else "trend rule (sign of SMA fast − SMA slow, 10 window pairs)"
    )
    text = (
        f"### admf-dask vs vectorbt 1.2.0 — {N:,} portfolios × {S} symbols × {T:,} bars, "
        f"{sig_desc}\n\n"
        f"`{command_line()}`\n\n"
        f"Long-only target weights, commission 0–20 bps + {COMMISSION_FIXED:g} fixed per fill, "
        f"slippage 0/5 bps, no risk rules; admf orders {orders}; vectorbt engine: {engine}, "
        f"1 core. Simulate = the timed call (admf: `run_portfolios`, data and signals already "
        f"persisted on the workers; vectorbt: `from_orders` + `value()`); process = the whole "
        f"subprocess (imports, cluster start, inputs, warm-up); simulate CPU-s = CPU seconds "
        f"of the call (admf: every process of the tree; vectorbt: its process); peak = summed "
        f"RSS of the subprocess tree, sampled every 50 ms. {args.repeats} interleaved repeat(s); load average (1 min) during "
        f"the runs: {load} on {os.cpu_count()} cores.\n\n"
        f"{head}\n\n{ratios}\n\n"
        f"Equity agrees on the {n_check} portfolios vectorbt ran: max relative difference "
        f"{check:.1e} ({'✓' if check is not None and check <= 1e-9 else '✗'} ≤ 1e-9).\n"
    )
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
