"""The whole pipeline at scale: 10,000 portfolios × 100 symbols × 2,520 bars, 8 strategies with ML.

One ``ad.run`` of a pipeline (`spec`) with 13 features, 8 strategies (6 rules + XGBoost + LSTM,
small models: 4 walk-forward folds each, train_window 504, retrain_every 504) and a
10,000-portfolio grid (strategy mix × stop_loss × max_drawdown × allow_short × rebalance_band),
orders and report written, on the LocalCluster ``ad.run`` starts for this machine (2
single-thread workers, both tagged ML). Prints run.json's timings per stage, the portfolio
engine's phases, the ML trace (train / inference seconds), the number of orders, the output
size and the peak RSS of the whole process tree (this process + cluster), sampled every 50 ms.

``--second-run`` then runs it again with other portfolio settings on the same session cluster:
run.json must say cache hit/hit.

    .venv/bin/python benchmarks/full_pipeline.py
    .venv/bin/python benchmarks/full_pipeline.py --quick                # 100 portfolios, 20 symbols
    .venv/bin/python benchmarks/full_pipeline.py --portfolios 1000 --no-orders
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import LoadTracker, ProcSampler, command_line, log, md_table, median

ML_FEATURES = ["rsi_14", "roc_20", "vol_20", "z_20", "macd_hist"]
FEATURES = {
    "sma_10": {"kind": "sma", "window": 10},
    "sma_50": {"kind": "sma", "window": 50},
    "ema_20": {"kind": "ema", "window": 20},
    "ema_100": {"kind": "ema", "window": 100},
    "rsi_14": {"kind": "rsi", "window": 14},
    "bb_20": {"kind": "bbands", "window": 20, "k": 2.0},
    "dc_20": {"kind": "donchian", "window": 20},
    "roc_20": {"kind": "roc", "window": 20},
    "macd": {"kind": "macd", "fast": 12, "slow": 26, "signal": 9},
    "vol_20": {"kind": "volatility", "window": 20},
    "z_20": {"kind": "zscore", "window": 20},
    "atr_14": {"kind": "atr", "window": 14},
    "ret_5": {"kind": "returns", "window": 5},
}
ML_COMMON = {"features": ML_FEATURES, "horizon": 5, "train_window": 504, "retrain_every": 504}
STRATEGIES = {
    "trend_sma": {"kind": "ma_crossover", "fast": "sma_10", "slow": "sma_50"},
    "trend_ema": {"kind": "ma_crossover", "fast": "ema_20", "slow": "ema_100"},
    "macd_cross": {"kind": "ma_crossover", "fast": "macd_macd", "slow": "macd_signal"},
    "rsi_revert": {"kind": "rsi_reversion", "rsi": "rsi_14", "low": 30, "high": 70},
    "bb_revert": {"kind": "bollinger_reversion", "bands": "bb_20"},
    "breakout": {"kind": "breakout", "channel": "dc_20"},
    "xgb": {
        "kind": "xgboost",
        **ML_COMMON,
        "params": {"n_estimators": 50, "max_depth": 3, "learning_rate": 0.1},
    },
    "lstm": {
        "kind": "lstm",
        **ML_COMMON,
        "lookback": 10,
        "params": {"hidden": 8, "layers": 1, "epochs": 1, "batch_size": 1024},
    },
}
NAMES = list(STRATEGIES)
MIXES = [
    *NAMES,
    {n: 0.125 for n in NAMES},
    {"xgb": 0.5, "lstm": 0.5},
]


def grid_for(n: int) -> dict:
    """10 strategy mixes × stop_loss × max_drawdown × allow_short × rebalance_band → n."""
    keys = [
        ("strategy", MIXES),
        ("stop_loss", [None, 0.05, 0.1, 0.15, 0.2]),
        ("allow_short", [False, True]),
        ("max_drawdown", [None, *[round(x, 2) for x in np.linspace(0.1, 0.5, 9)]]),
        ("rebalance_band", [round(x, 4) for x in np.linspace(0.0, 0.0045, 10)]),
    ]
    grid, size = {}, 1
    for key, values in keys:
        if size >= n:
            break
        grid[key] = values
        size *= len(values)
    if size != n:
        raise SystemExit(f"--portfolios must be one of 10, 50, 100, 1000, 10000 (got {n})")
    return grid


def spec(n: int, symbols: int, bars: int, out: Path, orders: bool, grid=None) -> dict:
    return {
        "name": "full-pipeline",
        "data": {
            "source": "synthetic",
            "symbols": symbols,
            "bars": bars,
            "seed": 7,
            "chunks": {"time": 504},
        },
        "features": FEATURES,
        "strategies": STRATEGIES,
        "portfolios": {
            "capital": 1_000_000,
            "batch_size": 500,
            "vol_feature": "vol_20",
            "grid": grid or grid_for(n),
        },
        "execution": {"commission": 0.0005, "commission_fixed": 0.0, "slippage_bps": 2},
        "cluster": {
            "n_workers": "auto",
            "threads_per_worker": "auto",
            "ml_workers": 2,
            "dashboard_address": None,
        },
        "output": {"path": str(out), "orders": orders, "report": True, "overwrite": True},
    }


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portfolios", type=int, default=10_000)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--no-orders", action="store_true")
    ap.add_argument("--second-run", action="store_true", help="run again, other portfolio grid")
    ap.add_argument("--out", default=None, help="run folder (default: temporary, removed)")
    ap.add_argument("--quick", action="store_true", help="100 portfolios × 20 symbols × 1,008")
    args = ap.parse_args(argv)
    if args.quick:
        args.portfolios, args.symbols, args.bars = 100, 20, 1008
    warnings.filterwarnings("ignore", message="Sending large graph")
    import distributed  # noqa: F401  (configures its loggers on import: quiet them after)

    import admf_dask as ad
    from admf_dask.cluster import close_session
    from admf_dask.pipeline.runner import LogReporter

    load = LoadTracker()
    tmp = Path(tempfile.mkdtemp(prefix="admf-full-"))
    out = Path(args.out) if args.out else tmp / "run"
    reporter = LogReporter(echo=lambda s: log("  " + s))
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    logging.getLogger("admf_dask").setLevel(logging.INFO)
    try:
        with ProcSampler() as sampler:
            tic = time.perf_counter()
            res = ad.run(
                spec(args.portfolios, args.symbols, args.bars, out, not args.no_orders),
                reporter=reporter,
            )
            wall = time.perf_counter() - tic
        man = res.manifest
        load.mark()
        size = {
            p.name: _size_mb(p) if p.is_dir() else p.stat().st_size / 1e6 for p in out.iterdir()
        }
        second = None
        if args.second_run:
            grid2 = dict(grid_for(args.portfolios))
            grid2["stop_loss"] = [0.03, 0.06, 0.09, 0.12, 0.25][: len(grid2.get("stop_loss", [0]))]
            with ProcSampler() as s2:
                tic = time.perf_counter()
                res2 = ad.run(
                    spec(
                        args.portfolios,
                        args.symbols,
                        args.bars,
                        tmp / "run2",
                        not args.no_orders,
                        grid=grid2,
                    ),
                    reporter=reporter,
                )
                second = (time.perf_counter() - tic, res2.manifest, s2.peak / 1e9)
    finally:
        close_session()
        if not args.out:
            shutil.rmtree(tmp, ignore_errors=True)

    n_pf = man["portfolios"]["n"]
    steps = n_pf * args.symbols * args.bars
    t = man["timings"]
    rows = [
        [st, f"{t.get(st, float('nan')):.2f}", f"{t.get(st, 0) / t['total']:.0%}"]
        for st in ("data", "features", "signals", "portfolio", "write", "total")
    ]
    stages = md_table(["stage (run.json timings)", "s", "share"], rows, "lrr")
    pt = man.get("stage_timings", {})
    engine = ", ".join(f"{k} {v:.2f}" for k, v in pt.items() if isinstance(v, int | float))
    trace = man.get("trace", [])
    ml_rows = []
    for name, recs in itertools.groupby(
        sorted(trace, key=lambda r: (r.get("strategy", r.get("model_id", "")), r["stage"])),
        key=lambda r: r.get("strategy", str(r.get("model_id", "")).split("-")[0]),
    ):
        recs = list(recs)
        tr = [r["stop"] - r["start"] for r in recs if r["stage"] == "train"]
        inf = [r["stop"] - r["start"] for r in recs if r["stage"] == "inference"]
        workers = sorted({str(r.get("worker", "")) for r in recs})
        ml_rows.append(
            [
                name,
                len(tr),
                f"{sum(tr):.1f}",
                f"{median(tr):.1f}" if tr else "—",
                len(inf),
                f"{sum(inf):.2f}",
                len(workers),
            ]
        )
    ml = md_table(
        [
            "ML strategy",
            "train tasks",
            "train s (sum)",
            "train s (median)",
            "inference tasks",
            "inference s (sum)",
            "workers used",
        ],
        ml_rows,
        "lrrrrrr",
    )
    workers = man["cluster"]["workers"]
    wdesc = ", ".join(
        f"{w['name']} ({w['nthreads']} thread, {w['memory_limit'] / 2**30:.1f} GiB"
        f"{', ' + '+'.join(w['resources']) if w['resources'] else ''})"
        for w in workers
    )
    text = (
        f"### Full pipeline — {n_pf:,} portfolios × {args.symbols} symbols × {args.bars:,} bars, "
        f"{len(STRATEGIES)} strategies (6 rules + XGBoost + LSTM)\n\n"
        f"`{command_line()}`\n\n"
        f"{len(FEATURES)} features; XGBoost 50 trees of depth 3 and an LSTM (hidden 8, "
        f"lookback 10, 1 epoch), 4 walk-forward folds each over 5 features; grid = "
        f"{' × '.join(f'{k} ({len(v)})' for k, v in grid_for(args.portfolios).items())}; "
        f"orders {'not written' if args.no_orders else 'written'}, report written. Cluster: "
        f"{wdesc}. Load average (1 min) during the run: {load} on {os.cpu_count()} cores.\n\n"
        f"{stages}\n\n"
        f"- wall time of `ad.run` (cluster start included): {wall:.1f} s; portfolio stage "
        f"{steps / t['portfolio']:.3g} steps/s ({steps:.3g} portfolio·symbol·bar steps)\n"
        f"- peak RSS of the process tree: **{sampler.peak / 1e9:.2f} GB**\n"
        f"- orders: {man['portfolios']['n_orders']:,}; output: "
        + ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(size.items()))
        + f"\n- portfolio engine phases (s): {engine}\n"
        f"- cache: {man['cache']}\n\n{ml}\n"
    )
    if second is not None:
        w2, m2, pk2 = second
        t2 = m2["timings"]
        text += (
            f"\nSecond run, other stop_loss values, same session: cache {m2['cache']}; "
            + ", ".join(
                f"{st} {t2[st]:.2f} s"
                for st in ("data", "features", "signals", "portfolio", "write", "total")
            )
            + f" ({t2['total'] / t['total']:.0%} of the first run's total); peak {pk2:.2f} GB.\n"
        )
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
