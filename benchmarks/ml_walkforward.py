"""Walk-forward ML benchmark: XGBoost, MLP and LSTM train + infer, yearly retraining.

100 symbols x 2,520 bars (10 years), train_window 504, retrain_every 252 -> 8 folds per model,
each trained on ~50,000 pooled rows. Prints per-fold train / inference seconds (from the trace
records, i.e. measured inside the tasks on the ML worker) and the share of the machine's CPU
used over each model's run: system-wide (``psutil.cpu_percent``) and by this run's own
processes (client + workers: CPU seconds / (wall x cores)). On a shared machine the wall times
follow the load; ``fit cpu s`` (CPU seconds of the worker process while fitting) does not.

    .venv/bin/python benchmarks/ml_walkforward.py [--symbols 100] [--bars 2520] [--local]

Default cluster: one single-thread ML worker per core (ML tasks only run on ML workers, so an
untagged worker would sit idle here; and torch with 2 intra-op threads on small models stalls
at every OpenMP barrier when the machine is oversubscribed: ``--layout one`` shows it). Models are kept modest so the whole run takes a few
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import psutil
import xarray as xr

MODELS = {
    "xgboost": {"params": {"n_estimators": 100, "max_depth": 4, "learning_rate": 0.1}},
    "mlp": {"params": {"hidden": 32, "layers": 2, "epochs": 5, "batch_size": 512}},
    "lstm": {"params": {"hidden": 16, "layers": 1, "epochs": 2, "batch_size": 512}, "lookback": 20},
}
FEATURES = ["ret_1", "ret_5", "ret_20", "vol_20", "z_20"]


def synthetic(n_sym: int, n_bars: int, chunk: int, seed: int = 7) -> tuple[xr.Dataset, xr.Dataset]:
    """Random walks with slowly switching drift (something to learn) + 5 causal features."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, n_sym)
    drift = 0.002 * np.sign(np.sin(np.arange(n_bars)[:, None] / 20.0 + phase))
    ret = drift + 0.015 * rng.standard_normal((n_bars, n_sym))
    close = 100 * np.exp(np.cumsum(ret, axis=0))
    time_ix = pd.bdate_range("2010-01-04", periods=n_bars)
    symbols = [f"S{i:03d}" for i in range(n_sym)]
    coords = {"time": time_ix, "symbol": symbols}
    data = xr.Dataset({"close": (("time", "symbol"), close)}, coords=coords)
    data.attrs["fingerprint"] = f"bench-{n_sym}x{n_bars}-{seed}"
    lc = pd.DataFrame(np.log(close))
    r1 = lc.diff()
    feats = {
        "ret_1": r1,
        "ret_5": lc.diff(5),
        "ret_20": lc.diff(20),
        "vol_20": r1.rolling(20).std(),
        "z_20": (lc - lc.rolling(20).mean()) / lc.rolling(20).std(),
    }
    fs = xr.Dataset(
        {k: (("time", "symbol"), v.to_numpy()) for k, v in feats.items()}, coords=coords
    )
    return data.chunk({"time": chunk, "symbol": -1}), fs.chunk({"time": chunk, "symbol": -1})


def _own_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _warm(client) -> None:
    def warm():
        import torch
        import xgboost  # noqa: F401

        torch.zeros(1) + 1
        return os.getpid()

    return client.run(warm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--chunk", type=int, default=504, help="bars per data time chunk")
    ap.add_argument("--kinds", default="xgboost,mlp,lstm")
    ap.add_argument("--local", action="store_true", help="no cluster: local threaded scheduler")
    ap.add_argument(
        "--layout",
        choices=("per-core", "one"),
        default="per-core",
        help="per-core: one 1-thread ML worker per core; one: a single ML worker with all cores",
    )
    args = ap.parse_args()

    from admf_dask.cluster import detect_machine
    from admf_dask.ml import run_ml_strategy

    cores = detect_machine()["cores"]
    data, feats = synthetic(args.symbols, args.bars, args.chunk)
    client = cluster = None
    pids = [os.getpid()]
    if not args.local:
        from distributed import Client

        from admf_dask.cluster import make_local_cluster
        from admf_dask.config.models import ClusterConfig

        if args.layout == "per-core":  # one single-thread ML worker per core
            cfg = ClusterConfig(
                n_workers=cores, threads_per_worker=1, ml_workers=cores, dashboard_address=None
            )
        else:  # one ML worker holding every core
            cfg = ClusterConfig(
                n_workers=1, threads_per_worker=cores, ml_workers=1, dashboard_address=None
            )
        cluster = make_local_cluster(cfg)
        client = Client(cluster, set_as_default=False)
        pids += list(_warm(client).values())
        # as in a pipeline run: data and features already live on the cluster
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph")
            data, feats = client.persist(data), client.persist(feats)
    else:
        import torch
        import xgboost  # noqa: F401

        torch.zeros(1)
    if args.local:
        where = "local threads"
    elif args.layout == "per-core":
        where = f"{cores} ML workers x 1 thread"
    else:
        where = f"1 ML worker x {cores} threads"
    print(
        f"ML walk-forward: {args.symbols} symbols x {args.bars} bars, train_window 504, "
        f"retrain_every 252, {FEATURES.__len__()} features, {where}, {cores} cores"
    )
    load0 = os.getloadavg()[0]
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            spec = {
                "kind": kind,
                "features": FEATURES,
                "horizon": 5,
                "train_window": 504,
                "retrain_every": 252,
                **MODELS[kind],
            }
            ctx = SimpleNamespace(
                client=client,
                run_id=f"bench-{kind}",
                base_dir=None,
                run_dir=f"{tmp}/{kind}",
                trace=[],
                warnings=[],
                strict=False,
                quality={},
            )
            psutil.cpu_percent(None)
            cpu0, t0 = _own_cpu(pids), time.perf_counter()
            sig = run_ml_strategy(data, feats, spec, ctx, name=kind)
            values = client.compute(sig.data).result() if client else sig.values
            wall = time.perf_counter() - t0
            sys_share = psutil.cpu_percent(None) / 100.0
            own_share = (_own_cpu(pids) - cpu0) / (wall * cores)
            trains = [r for r in ctx.trace if r["stage"] == "train"]
            tr = {r["fold"]: r["fit_s"] or 0.0 for r in trains}
            task = {r["fold"]: r["stop"] - r["start"] for r in trains}
            cpu = {r["fold"]: r["fit_cpu_s"] or 0.0 for r in trains}
            inf: dict[int, float] = {}
            for r in ctx.trace:
                if r["stage"] == "inference":
                    inf[r["fold"]] = inf.get(r["fold"], 0.0) + r["stop"] - r["start"]
            q = ctx.quality[kind]
            print(f"\n{kind}: {len(q)} folds, signal |mean| {np.abs(values[504:]).mean():.3f}")
            print(
                "  fold  train bars        n_train    fit s  fit cpu s   task s  infer s     IC   AUC"
            )
            for row in q:
                f = row["fold"]
                b = row["bars"]
                print(
                    f"  {f:>4}  [{b['train_start']:>4},{b['train_end']:>4})  {row['n_train']:>10}"
                    f"  {tr[f]:7.2f}  {cpu[f]:9.2f}  {task[f]:7.2f}  {inf.get(f, 0):7.3f}  {row['ic'] or 0:+.3f}  "
                    f"{row['auc'] or 0:.3f}"
                )
            summary.append(
                (
                    kind,
                    len(q),
                    statistics.mean(tr.values()),
                    statistics.mean(cpu.values()),
                    statistics.mean(task.values()),
                    statistics.mean(inf.values()),
                    wall,
                    sys_share,
                    own_share,
                    statistics.mean([r["ic"] or 0 for r in q]),
                )
            )
            if ctx.warnings:
                print("  warnings:", *ctx.warnings, sep="\n    ")
    print(
        "\n| model | folds | fit s/fold | fit CPU s/fold | train task s/fold | infer s/fold | wall s "
        "| CPU share (system) "
        "| CPU share (this run) | mean IC |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, n, t_tr, t_cpu, t_task, t_inf, wall, s_sys, s_own, ic in summary:
        print(
            f"| {kind} | {n} | {t_tr:.2f} | {t_cpu:.2f} | {t_task:.2f} | {t_inf:.3f} | {wall:.1f} | {s_sys:.0%} | {s_own:.0%} "
            f"| {ic:+.3f} |"
        )
    print(
        f"\nload average (1 min) at start / end: {load0:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {cores} cores (other processes share this machine)"
    )
    if client is not None:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
