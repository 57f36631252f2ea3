"""Cross-sectional research: rank + top_k over 5,000 symbols x 2,520 bars, and the whole
``pipelines/cross_section.yaml`` at 1,000 portfolios.

Part A — momentum-like scores (random walk returns, 5% NaN, a universe that lists and delists
names), 5,000 symbols x 2,520 bars:

* **admf-dask**: ``compute_features`` (``rank`` of the score) and ``compute_signals``
  (``top_k``: k = short_k = 100, every 5, buffer 20) on the threaded scheduler with 2 threads,
  time chunks of 504 bars; kernels compiled by a warm-up on a small market first;
* **pandas**: ``DataFrame.rank(axis=1)`` for the ranks, and the same top-k book as a loop over
  the rebalance bars with pandas/numpy ops per bar (``Series.rank`` of the bar, the held set
  as a boolean mask) — the code one would write without the kernel.

Both sides are checked equal (ranks bit for bit, signals exactly). Target: admf-dask ≤ 3 s.

Part B — ``ad.run`` of ``pipelines/cross_section.yaml`` with its grid widened to 1,000
portfolios (40 top-k books x 5 stop-losses x 5 commissions), 2 workers x 1 thread; the stage
timings of run.json.

    .venv/bin/python benchmarks/cross_section.py
    .venv/bin/python benchmarks/cross_section.py --quick    # 1,000 symbols, 200 portfolios
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml
from _common import ROOT, LoadTracker, command_line, log, machine_header, md_table

K, EVERY, BUFFER = 100, 5, 20


def market(n_t: int, n_s: int, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    score = np.cumsum(rng.normal(0, 0.01, (n_t, n_s)), axis=0)
    score[rng.random(score.shape) < 0.05] = np.nan
    listed = np.ones((n_t, n_s), bool)
    first = rng.integers(0, n_t // 2, n_s)
    last = rng.integers(n_t // 2, n_t + n_t // 2, n_s)
    rows = np.arange(n_t)[:, None]
    listed &= (rows >= np.where(rng.random(n_s) < 0.2, first, 0)) & (rows < last)
    coords = {
        "time": pd.bdate_range("2010-01-04", periods=n_t),
        "symbol": [f"S{i:04d}" for i in range(n_s)],
    }
    data = {f: (("time", "symbol"), score) for f in ("open", "high", "low", "close", "volume")}
    ds = xr.Dataset(data, coords=coords)
    ds["universe"] = (("time", "symbol"), listed)
    return ds.chunk({"time": 504, "symbol": -1})


FEATS = {"mom": {"kind": "rank", "input": "close"}}
STRATS = {
    "book": {
        "kind": "top_k",
        "feature": "mom",
        "k": K,
        "short_k": K,
        "every": EVERY,
        "buffer": BUFFER,
    }
}


def run_admf(ds: xr.Dataset) -> tuple[float, np.ndarray, np.ndarray]:
    import dask

    from admf_dask.features import compute_features
    from admf_dask.strategies import compute_signals

    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        feats = compute_features(ds, FEATS).persist()
        sig = compute_signals(ds, feats, STRATS).compute()
        rank = feats["mom"].values
    return time.perf_counter() - t0, rank, sig.values[..., 0]


def run_pandas(ds: xr.Dataset) -> tuple[float, np.ndarray, np.ndarray]:
    score = ds["close"].values
    listed = ds["universe"].values
    t0 = time.perf_counter()
    df = pd.DataFrame(score).where(listed)
    n = df.count(axis=1).to_numpy()[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (df.rank(axis=1) - 1).to_numpy() / (n - 1)
    r = np.where((n == 1) & df.notna().to_numpy(), 0.5, r)
    n_t, n_s = r.shape
    out = np.zeros((n_t, n_s))
    long_ = np.zeros(n_s, bool)
    short = np.zeros(n_s, bool)
    for t in range(n_t):
        long_ &= listed[t]
        short &= listed[t]
        if t % EVERY == 0:
            s = pd.Series(r[t])
            valid = s.notna().to_numpy()
            n = int(valid.sum())
            # ties broken by lower symbol index: rank "first" on the negated score
            lr = (-s).rank(method="first").to_numpy()
            new_long = long_ & valid & (lr <= K + BUFFER)
            need = min(K, n) - int(new_long.sum())
            if need > 0:
                cand = np.flatnonzero(valid & ~new_long)
                new_long[cand[np.argsort(lr[cand], kind="stable")[:need]]] = True
            rest = s.where(~new_long)
            sr = rest.rank(method="first").to_numpy()
            ok = rest.notna().to_numpy()
            m = int(ok.sum())
            new_short = short & ok & (sr <= K + BUFFER)
            need = min(K, m) - int(new_short.sum())
            if need > 0:
                cand = np.flatnonzero(ok & ~new_short)
                new_short[cand[np.argsort(sr[cand], kind="stable")[:need]]] = True
            long_, short = new_long, new_short
        out[t, long_] = 1.0
        out[t, short] = -1.0
    return time.perf_counter() - t0, r, out


def part_a(n_s: int) -> str:
    log("part A: warm-up (compiles the kernels)")
    run_admf(market(300, 50, seed=1))
    ds = market(2520, n_s)
    ds = ds.persist()
    load = LoadTracker()
    rows = []
    log(f"part A: {n_s} symbols x 2520 bars")
    ta, ra, sa = min((run_admf(ds) for _ in range(3)), key=lambda x: x[0])
    tp, rp, sp = run_pandas(ds)
    np.testing.assert_array_equal(ra, rp)
    np.testing.assert_array_equal(sa, sp)
    rows.append(["admf-dask (rank + top_k, 2 threads)", f"{ta:.2f}", "1.0x"])
    rows.append(["pandas (rank(axis=1) + per-bar loop)", f"{tp:.2f}", f"{tp / ta:.1f}x slower"])
    head = (
        f"### rank + top_k, {n_s:,} symbols x 2,520 bars (k = short_k = {K}, every {EVERY}, "
        f"buffer {BUFFER})\n\nload average (1 min) during the runs: {load}; results equal.\n\n"
    )
    return head + md_table(["implementation", "seconds", "vs admf-dask"], rows)


def part_b(n_portfolios: int) -> str:
    import admf_dask as ad

    path = ROOT / "pipelines" / "cross_section.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg = copy.deepcopy(cfg)
    cfg["data"]["universe"] = str(path.parent / cfg["data"]["universe"])
    grid = cfg["portfolios"]["grid"]
    strategies = grid["strategy"]
    if n_portfolios >= 1000:
        grid["stop_loss"] = [None, 0.05, 0.1, 0.2, 0.3]
        grid["commission"] = [0.0, 0.0005, 0.001, 0.002, 0.005]
    else:
        grid["stop_loss"] = [None, 0.05, 0.1, 0.2, 0.3]
    n = len(strategies) * len(grid["stop_loss"]) * len(grid.get("commission", [0]))
    cfg["cluster"] = {"n_workers": 2, "threads_per_worker": 1, "ml_workers": 0}
    cfg["output"] = {"report": False, "save_signals": False}
    load = LoadTracker()
    log(f"part B: pipelines/cross_section.yaml at {n} portfolios")
    with tempfile.TemporaryDirectory() as tmp:
        cfg["output"]["path"] = str(Path(tmp) / "run")
        t0 = time.perf_counter()
        res = ad.run(cfg)
        wall = time.perf_counter() - t0
        timings = res.manifest.get("timings", {})
    rows = [[k, f"{v:.2f}"] for k, v in timings.items()] + [
        ["wall (with cluster start)", f"{wall:.2f}"]
    ]
    head = (
        f"### pipelines/cross_section.yaml at {n:,} portfolios (500 symbols x 2,520 bars, "
        f"{len(strategies)} top-k books, 2 workers x 1 thread)\n\nload average (1 min): {load}\n\n"
    )
    return head + md_table(["stage", "seconds"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 symbols, 200 portfolios")
    ap.add_argument("--part", choices=["a", "b", "all"], default="all")
    args = ap.parse_args()
    print("## Cross-sectional research\n")
    print(machine_header() + "\n")
    print(f"`{command_line()}`\n")
    if args.part in ("a", "all"):
        print(part_a(1000 if args.quick else 5000) + "\n", flush=True)
    if args.part in ("b", "all"):
        print(part_b(200 if args.quick else 1000) + "\n", flush=True)


if __name__ == "__main__":
    main()
