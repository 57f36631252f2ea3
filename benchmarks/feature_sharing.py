"""Features once: 8 strategies over one persisted feature set, and a second run that reuses it.

Part A — on a 2-worker LocalCluster with the market data already persisted, the signals of 8
traditional strategies computed three ways (each way on its own copy of the market, a different
seed, so no dask key is shared between ways or rounds; rounds interleaved, medians reported):

* **shared** (admf-dask): ``feature_stage`` computes and persists the feature set once (the 8
  distinct features the strategies reference, 11 times between them); ``compute_signals`` of
  all 8 strategies reads it;
* **own set per strategy**: each strategy materializes the feature set itself
  (``compute_features(...).persist()``, then its signals), as a per-strategy backtest script
  would;
* **own features, only those it uses**: each strategy builds ``compute_features`` of the
  features it references and computes its signals (dask culls the rest) — the fairest
  no-sharing baseline.

Kernel executions are counted on the workers (``admf_dask.features.KERNEL_CALLS``).

Part B — ``ad.run`` twice on one client, the second with other portfolio settings (stop-loss /
drawdown grid instead of stop-loss / sizing), for two pipelines: the 8 rules above, and
``full_pipeline.py``'s 6 rules + XGBoost + LSTM. run.json must say ``cache: {features: hit,
signals: hit}``; target: the second run takes ≤ 10% of the first's time. Warm-up runs (another
seed) compile the kernels and import torch/xgboost first; each round uses a fresh seed so its
first run is cold.

Part C (``--cli``, alone) — two consecutive ``admf-dask run`` processes of the ML pipeline with
a fresh disk cache (``ADMF_DASK_CACHE`` = a new temporary folder), the second with the other
portfolio grid: nothing is shared between them but the disk cache, as in a batch script. The
second must report ``cache: {features: hit, signals: hit}`` and take ≤ 30% of the first's wall
time (process start, imports and cluster start included). A first round warms the machine up
(kernels compiled, page and ``.pyc`` caches filled) and is not counted (``--cli-warmup``).

    .venv/bin/python benchmarks/feature_sharing.py
    .venv/bin/python benchmarks/feature_sharing.py --quick
    .venv/bin/python benchmarks/feature_sharing.py --cli
    .venv/bin/python benchmarks/feature_sharing.py --cli --cli-rounds 3
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

from _common import LoadTracker, command_line, log, md_table, median

# 8 rules over 8 distinct features; they reference 11 (several share sma_10, ema_100, rsi_14)
STRATEGIES = {
    "trend_sma": {"kind": "ma_crossover", "fast": "sma_10", "slow": "sma_50"},
    "trend_ema": {"kind": "ma_crossover", "fast": "ema_20", "slow": "ema_100"},
    "trend_mix": {"kind": "ma_crossover", "fast": "sma_10", "slow": "ema_100"},
    "macd_cross": {"kind": "ma_crossover", "fast": "macd_macd", "slow": "macd_signal"},
    "rsi_revert": {"kind": "rsi_reversion", "rsi": "rsi_14", "low": 30, "high": 70},
    "rsi_wide": {"kind": "rsi_reversion", "rsi": "rsi_14", "low": 20, "high": 80},
    "bb_revert": {"kind": "bollinger_reversion", "bands": "bb_20"},
    "breakout": {"kind": "breakout", "channel": "dc_20"},
}
# the features each strategy references
USES = {
    "trend_sma": ["sma_10", "sma_50"],
    "trend_ema": ["ema_20", "ema_100"],
    "trend_mix": ["sma_10", "ema_100"],
    "macd_cross": ["macd"],
    "rsi_revert": ["rsi_14"],
    "rsi_wide": ["rsi_14"],
    "bb_revert": ["bb_20"],
    "breakout": ["dc_20"],
}
ALL_FEATURES = {
    "sma_10": {"kind": "sma", "window": 10},
    "sma_50": {"kind": "sma", "window": 50},
    "ema_20": {"kind": "ema", "window": 20},
    "ema_100": {"kind": "ema", "window": 100},
    "rsi_14": {"kind": "rsi", "window": 14},
    "bb_20": {"kind": "bbands", "window": 20, "k": 2.0},
    "dc_20": {"kind": "donchian", "window": 20},
    "macd": {"kind": "macd", "fast": 12, "slow": 26, "signal": 9},
    "vol_20": {"kind": "volatility", "window": 20},
}
#: part A: exactly the features the strategies use (the union)
FEATURES = {k: v for k, v in ALL_FEATURES.items() if any(k in u for u in USES.values())}
#: part B pipelines also carry the volatility feature of vol_target sizing
RUN_FEATURES = ALL_FEATURES


def _kernel_calls() -> int:
    from admf_dask.features import KERNEL_CALLS

    return int(sum(KERNEL_CALLS.values()))


def _keys(ds) -> set:
    from dask.core import flatten

    return {k for v in ds.data_vars.values() for k in flatten(v.data.__dask_keys__())}


def _wait_released(client, keys: set, timeout: float = 30.0) -> None:
    """Until the scheduler has forgotten every key (released when the last reference died)."""

    def held(dask_scheduler, keys=keys):
        return sum(k in dask_scheduler.tasks for k in keys)

    end = time.monotonic() + timeout
    while client.run_on_scheduler(held) and time.monotonic() < end:
        time.sleep(0.02)


def _calls(client) -> int:
    return sum(client.run(_kernel_calls).values())


def _load(symbols: int, bars: int, seed: int, client):
    import admf_dask as ad

    data = ad.load_market_data(
        {
            "source": "synthetic",
            "symbols": symbols,
            "bars": bars,
            "seed": seed,
            "chunks": {"time": 504},
        }
    )
    from distributed import wait

    data = client.persist(data)
    wait(data)
    return data


def part_a(client, symbols: int, bars: int, rounds: int, seed0: int) -> str:
    from distributed import wait

    from admf_dask.features import FEATURE_CACHE, compute_features, feature_stage
    from admf_dask.strategies import SIGNAL_CACHE, StrategyContext, compute_signals

    def shared(data):
        feats, status = feature_stage(data, FEATURES, client=client)
        wait(feats)
        sig = compute_signals(data, feats, STRATEGIES, StrategyContext(client=client))
        client.compute(sig.data).result()
        return feats

    def own_set(data):
        for name, spec in STRATEGIES.items():
            feats = client.persist(compute_features(data, FEATURES))
            wait(feats)
            sig = compute_signals(data, feats, {name: spec}, StrategyContext(client=client))
            client.compute(sig.data).result()
            keys = _keys(feats)
            del feats, sig
            _wait_released(client, keys)  # so the next strategy's identical keys recompute

    def own_used(data):
        for name, spec in STRATEGIES.items():
            feats = compute_features(data, {f: FEATURES[f] for f in USES[name]})
            sig = compute_signals(data, feats, {name: spec}, StrategyContext(client=client))
            client.compute(sig.data).result()

    ways = {
        "shared: one persisted feature set (admf-dask feature_stage)": shared,
        "own feature set per strategy (compute_features + persist, 8×)": own_set,
        "own features per strategy, only those it uses (8×, lazily culled)": own_used,
    }
    res: dict[str, list[tuple[float, int]]] = {k: [] for k in ways}
    seed = seed0
    for r in range(rounds):
        for label, fn in ways.items():
            seed += 1
            data = _load(symbols, bars, seed, client)
            FEATURE_CACHE.clear()
            SIGNAL_CACHE.clear()
            c0 = _calls(client)
            tic = time.perf_counter()
            keep = fn(data)
            wall = time.perf_counter() - tic
            calls = _calls(client) - c0
            res[label].append((wall, calls))
            log(f"  part A round {r}: {label.split(':')[0]}: {wall:.2f} s, {calls} kernel calls")
            del keep, data
            FEATURE_CACHE.clear()
            time.sleep(0.5)  # let the scheduler release the persisted keys
    base = median(w for w, _ in res[next(iter(ways))])
    rows = []
    for label, runs in res.items():
        t = median(w for w, _ in runs)
        rows.append(
            [
                label,
                f"{t:.2f} ({min(w for w, _ in runs):.2f}–{max(w for w, _ in runs):.2f})",
                f"{runs[0][1]:,}",
                f"{t / base:.1f}×",
            ]
        )
    return md_table(
        [
            "8 strategies' signals, features computed…",
            "wall s, median (min–max)",
            "indicator kernel calls",
            "time vs shared",
        ],
        rows,
        align="lrrr",
    )


def pipeline(symbols: int, bars: int, seed: int, feats, strats, grid: dict, out: Path) -> dict:
    return {
        "name": "feature-sharing",
        "data": {
            "source": "synthetic",
            "symbols": symbols,
            "bars": bars,
            "seed": seed,
            "chunks": {"time": 504},
        },
        "features": feats,
        "strategies": strats,
        "portfolios": {"capital": 1_000_000, "vol_feature": "vol_20", "grid": grid},
        "output": {"path": str(out), "report": False, "overwrite": True},
    }


def grids(names: list[str]) -> tuple[dict, dict]:
    """First run: strategy × stop_loss × sizing; second: strategy × stop_loss × max_drawdown."""
    first = {"strategy": names, "stop_loss": [None, 0.05], "sizing": ["fixed", "vol_target"]}
    second = {"strategy": names, "stop_loss": [0.02, 0.1], "max_drawdown": [0.2, 0.3]}
    return first, second


STAGES = ("data", "features", "signals", "portfolio", "write", "total")
NO_DISK = {"cache": {"enabled": False}}


def part_b(client, feats, strats, symbols, bars, rounds, seed0, scratch: Path, label: str):
    """Rounds of (cold run, run with other portfolio settings); per-stage medians."""
    import admf_dask as ad
    from admf_dask.pipeline.runner import LogReporter

    rep = LogReporter(echo=lambda s: None)
    g1, g2 = grids(list(strats))
    firsts, seconds, walls, caches = [], [], [], []
    for r in range(rounds):
        seed = seed0 + r
        tic = time.perf_counter()
        a = ad.run(
            # the in-session cache only (part C measures the disk cache)
            {
                **pipeline(symbols, bars, seed, feats, strats, g1, scratch / f"{label}-a{r}"),
                **NO_DISK,
            },
            client=client,
            reporter=rep,
        )
        w1 = time.perf_counter() - tic
        tic = time.perf_counter()
        b = ad.run(
            {
                **pipeline(symbols, bars, seed, feats, strats, g2, scratch / f"{label}-b{r}"),
                **NO_DISK,
            },
            client=client,
            reporter=rep,
        )
        walls.append((w1, time.perf_counter() - tic))
        firsts.append(a.manifest["timings"])
        seconds.append(b.manifest["timings"])
        caches.append((a.manifest["cache"], b.manifest["cache"]))
        log(
            f"  part B {label} round {r}: first {a.manifest['timings']} {a.manifest['cache']}; "
            f"second {b.manifest['timings']} {b.manifest['cache']}"
        )
    out = {}
    for st in STAGES:
        out[st] = (median(t[st] for t in firsts), median(t[st] for t in seconds))
    out["features + signals"] = (
        median(t["features"] + t["signals"] for t in firsts),
        median(t["features"] + t["signals"] for t in seconds),
    )
    out["`ad.run` wall (measured here)"] = (
        median(w for w, _ in walls),
        median(w for _, w in walls),
    )
    hit = all(c2 == {"features": "hit", "signals": "hit"} for _, c2 in caches)
    miss = all(c1 == {"features": "miss", "signals": "miss"} for c1, _ in caches)
    n_pf = len(g1["strategy"]) * 4
    return out, hit, miss, n_pf


def table_b(results: dict[str, tuple]) -> str:
    labels = list(results)
    headers = ["stage (run.json timings)"]
    for lab in labels:
        headers += [f"{lab}: first s", "second s", "second / first"]
    rows = []
    for st in results[labels[0]][0]:
        row = [st]
        for lab in labels:
            t1, t2 = results[lab][0][st]
            row += [f"{t1:.2f}", f"{t2:.2f}", f"{t2 / t1:.1%}" if t1 else "—"]
        rows.append(row)
    return md_table(headers, rows, "l" + "rrr" * len(labels))


def _cli_run(pipe: dict, path: Path, cache: Path) -> tuple[float, dict, str]:
    """One ``admf-dask run`` process: (wall s, run.json, load average at its end)."""
    import json
    import subprocess
    import sys

    import yaml

    path.write_text(yaml.safe_dump(pipe))
    env = dict(os.environ, ADMF_DASK_CACHE=str(cache), PYTHONWARNINGS="ignore")
    tic = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "admf_dask.cli", "run", str(path), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - tic
    if proc.returncode:
        raise RuntimeError(f"admf-dask run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    manifest = json.loads((Path(pipe["output"]["path"]) / "run.json").read_text())
    return wall, manifest, open("/proc/loadavg").read().split()[0]


def part_cli(symbols: int, bars: int, rounds: int = 1, warmup: int = 1) -> str:
    """Two CLI processes of the ML pipeline sharing only a fresh disk cache (part C), `rounds`
    times (each round its own fresh cache); the ratio is the median of the rounds'.

    The first `warmup` rounds are run and shown but not counted: on a fresh machine the first
    run compiles the feature kernels and fills the page and ``.pyc`` caches (a 65 s first run
    made a 6% ratio that flattered the median)."""
    from full_pipeline import FEATURES as ML_FEATURE_SET
    from full_pipeline import STRATEGIES as ML_STRATEGIES

    g1, g2 = grids(list(ML_STRATEGIES))
    rows, ratios, hits = [], [], []
    for r in range(-warmup, rounds):
        name = "warm-up" if r < 0 else str(r)
        res = []
        with tempfile.TemporaryDirectory(prefix="admf-fs-cli-") as tmp:
            scratch = Path(tmp)
            cache = scratch / "cache"
            for label, grid in (("first (fresh cache)", g1), ("second (other grid)", g2)):
                pipe = pipeline(
                    symbols, bars, 4000, ML_FEATURE_SET, ML_STRATEGIES, grid, scratch / label[:5]
                )
                pipe["cluster"] = {
                    "n_workers": 2,
                    "threads_per_worker": 1,
                    "ml_workers": 2,
                    "dashboard_address": None,
                }
                wall, m, load = _cli_run(pipe, scratch / f"{label[:5]}.yaml", cache)
                res.append((wall, m))
                t = m["timings"]
                log(f"  part C round {r} {label}: {wall:.1f} s wall, {t} {m['cache']} load {load}")
                cache_text = f"{m['cache']['features']}/{m['cache']['signals']}"
                if m["cache_detail"]["signals"]:
                    cache_text += f" ({m['cache_detail']['signals']})"
                rows.append(
                    [
                        f"{name}: {label}" if rounds > 1 or warmup else label,
                        f"{wall:.1f}",
                        f"{t['total']:.1f}",
                        f"{t['features']:.2f}",
                        f"{t['signals']:.2f}",
                        f"{t['portfolio']:.2f}",
                        cache_text,
                        load,
                    ]
                )
        (w1, m1), (w2, m2) = res
        if r >= 0:
            ratios.append(w2 / w1)
            hits.append(m2["cache"] == {"features": "hit", "signals": "hit"})
        rows.append(
            [
                f"{name}: second / first" if rounds > 1 or warmup else "second / first",
                f"{w2 / w1:.0%}",
                f"{m2['timings']['total'] / m1['timings']['total']:.0%}",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    ratio = median(ratios)
    ok_hit = all(hits)
    table = md_table(
        [
            "`admf-dask run` process",
            "wall s",
            "run.json total s",
            "features s",
            "signals s",
            "portfolio s",
            "cache",
            "load (1 min)",
        ],
        rows,
        align="lrrrrrll",
    )
    of = f"median of {rounds} rounds' ratios" if rounds > 1 else "wall"
    if warmup:
        of += f" (after {warmup} warm-up round{'s' if warmup > 1 else ''}, not counted)"
    return (
        f"### Two CLI runs sharing the disk cache — ML pipeline ({len(ML_STRATEGIES)} strategies "
        f"incl. XGBoost + LSTM, {symbols} symbols × {bars:,} bars)\n\n`{command_line()}`\n\n"
        f"{table}\n\n- second run cache {'hit/hit ✓' if ok_hit else 'not hit/hit ✗'}; {of} "
        f"{ratio:.0%} of the first's ({'✓' if ratio <= 0.30 else '✗'} ≤ 30%), on "
        f"{os.cpu_count()} cores\n"
    )


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--run-symbols", type=int, default=100, help="part B pipeline symbols")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ml-rounds", type=int, default=1, help="part B rounds with ML strategies")
    ap.add_argument("--quick", action="store_true", help="50 symbols × 1,008 bars, one round")
    ap.add_argument("--cli", action="store_true", help="only part C: two CLI runs, disk cache")
    ap.add_argument("--cli-rounds", type=int, default=1, help="part C rounds (median ratio)")
    ap.add_argument(
        "--cli-warmup", type=int, default=1, help="part C rounds run first and not counted"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.symbols, args.bars, args.run_symbols, args.rounds = 50, 1008, 20, 1
    if args.cli:
        text = part_cli(args.run_symbols, args.bars, args.cli_rounds, args.cli_warmup)
        print(text, flush=True)
        return text
    warnings.filterwarnings("ignore", message="Sending large graph")
    from distributed import Client

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from admf_dask.cluster import make_local_cluster
    from admf_dask.config.models import ClusterConfig

    load = LoadTracker()
    cluster = make_local_cluster(
        ClusterConfig(n_workers=2, threads_per_worker=1, ml_workers=2, dashboard_address=None)
    )
    client = Client(cluster, set_as_default=False)
    from full_pipeline import FEATURES as ML_FEATURE_SET
    from full_pipeline import STRATEGIES as ML_STRATEGIES

    try:
        with client.as_current():
            # warm: kernels compiled/loaded on the workers, torch/xgboost imported
            part_a(client, 20, 600, 1, seed0=900)
            with tempfile.TemporaryDirectory(prefix="admf-fs-") as tmp:
                part_b(client, ML_FEATURE_SET, ML_STRATEGIES, 10, 1008, 1, 1900, Path(tmp), "w")
            table_a = part_a(client, args.symbols, args.bars, args.rounds, seed0=1000)
            with tempfile.TemporaryDirectory(prefix="admf-fs-") as tmp:
                res_b = {
                    "8 rules": part_b(
                        client,
                        RUN_FEATURES,
                        STRATEGIES,
                        args.run_symbols,
                        args.bars,
                        args.rounds,
                        2000,
                        Path(tmp),
                        "rules",
                    ),
                    "6 rules + XGBoost + LSTM": part_b(
                        client,
                        ML_FEATURE_SET,
                        ML_STRATEGIES,
                        args.run_symbols,
                        args.bars,
                        args.ml_rounds,
                        3000,
                        Path(tmp),
                        "ml",
                    ),
                }
    finally:
        client.close()
        cluster.close()
    checks = []
    for lab, (times, hit, miss, n_pf) in res_b.items():
        t1, t2 = times["total"]
        fs1, fs2 = times["features + signals"]
        checks.append(
            f"- {lab} ({n_pf} portfolios): cache first runs "
            f"{'miss/miss ✓' if miss else 'not all miss/miss ✗'}, second runs "
            f"{'hit/hit ✓' if hit else 'not all hit/hit ✗'}; second run total = {t2 / t1:.0%} "
            f"of the first's ({'✓' if t2 / t1 <= 0.10 else '✗'} ≤ 10%); features + signals "
            f"stages = {fs2 / fs1:.1%} of the first's ({'✓' if fs2 / fs1 <= 0.10 else '✗'})"
        )
    text = (
        f"### Feature sharing — {len(STRATEGIES)} strategies over {len(FEATURES)} features "
        f"({sum(map(len, USES.values()))} references)\n\n"
        f"`{command_line()}`\n\n"
        f"Part A: {args.symbols} symbols × {args.bars:,} bars, 2 single-thread workers, data "
        f"persisted first; {args.rounds} interleaved round(s), each way on a fresh copy of "
        f"the market (no shared dask keys). Load average (1 min): {load} on "
        f"{os.cpu_count()} cores.\n\n{table_a}\n\n"
        f"Part B: `ad.run` on {args.run_symbols} symbols × {args.bars:,} bars, then again with "
        f"another portfolio grid (strategy × stop_loss × sizing, then strategy × stop_loss × "
        f"max_drawdown), same client; medians of {args.rounds} round(s) for the rules, "
        f"{args.ml_rounds} with ML (XGBoost and LSTM as in `full_pipeline.py`); each round on "
        f"a fresh seed, so its first run is cold:\n\n{table_b(res_b)}\n\n"
        + "\n".join(checks)
        + "\n\nThe data stage runs again in the second run (the market is reloaded and "
        "re-persisted; its fingerprint is part of the cache key).\n"
    )
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
