"""Research statistics over a big grid (docs/RESEARCH.md): psr/dsr, PBO by CSCV, walk-forward.

Each row runs in its own child process: it writes synthetic random-walk equity (i.i.d. normal
returns, a small drift per portfolio; not a backtest) to a ``results.zarr`` on disk, chunked like
the portfolio stage's (504 bars × 500 portfolios, LZ4), warms the kernels on a tiny store, then
times `admf_dask.research.research_stage` on dask's threaded scheduler with 2 workers (2 cores),
the equity read lazily from disk. Peak RSS is that child's, sampled during the timed call only.
Target: 10,000 portfolios × 2,520 bars × 16 blocks (12,870 splits) in ≤ 20 s and ≤ 2 GB.

    .venv/bin/python benchmarks/research.py            # the table (markdown on stdout)
    .venv/bin/python benchmarks/research.py --quick    # 1,000 and 10,000 portfolios only
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    child_result,
    command_line,
    load_str,
    log,
    machine_header,
    md_table,
    run_child,
)

#: (portfolios, bars, blocks, walk-forward (train, test) or None)
CASES = [
    (1_000, 2520, 16, None),
    (10_000, 2520, 16, None),
    (10_000, 2520, 16, (504, 63)),
    (100_000, 2520, 16, None),
]
QUICK = CASES[:3]


def _write_equity(path: Path, n_portfolios: int, n_bars: int, seed: int = 7) -> None:
    """Synthetic random-walk equity as a results.zarr, generated and written chunk by chunk."""
    import dask
    import dask.array as da
    import numpy as np
    import xarray as xr
    from zarr.codecs import BloscCodec

    pchunk = 500

    def block(_, block_info=None):
        lo = block_info[None]["array-location"][1][0]
        rng = np.random.default_rng([seed, lo])
        k = block_info[None]["chunk-shape"][1]
        drift = rng.normal(0.0, 2e-4, size=k)
        r = rng.normal(0.0, 0.01, size=(n_bars, k)) + drift
        return 1e6 * np.cumprod(1.0 + r, axis=0)

    shape = (n_bars, n_portfolios)
    eq = da.map_blocks(block, da.empty(shape, chunks=(n_bars, pchunk)), dtype=np.float64)
    times = np.datetime64("2010-01-04", "ns") + np.arange(n_bars) * np.timedelta64(1, "D")
    ds = xr.Dataset(
        {"equity": (("time", "portfolio"), eq)},
        coords={"time": times, "portfolio": np.arange(n_portfolios)},
        attrs={"capital": 1e6, "periods_per_year": 252.0, "synthetic": "random-walk equity"},
    )
    fast = [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")]
    enc = {"equity": {"chunks": (504, pchunk), "compressors": fast}}
    with dask.config.set(scheduler="threads", num_workers=2):
        ds.to_zarr(path, mode="w", consolidated=True, encoding=enc)


def child(n_portfolios: int, n_bars: int, blocks: int, wf: str) -> None:
    import warnings

    import dask
    import psutil
    from portfolio_scaling import TreeSampler

    from admf_dask.research.config import ResearchConfig
    from admf_dask.research.stage import research_stage

    warnings.filterwarnings("ignore", message="Consolidated metadata")
    walk = None
    if wf != "none":
        train, test = map(int, wf.split(","))
        walk = {"train": train, "test": test}
    cfg = ResearchConfig(cscv_blocks=blocks, walk_forward=walk)
    tmp = Path(tempfile.mkdtemp(prefix="admf-research-bench-"))
    try:
        with dask.config.set(scheduler="threads", num_workers=2):
            warm = tmp / "warm.zarr"
            _write_equity(warm, 40, 300)
            research_stage(warm, cfg.model_copy(update={"walk_forward": None}))
            if walk:
                small = ResearchConfig(cscv_blocks=4, walk_forward={"train": 100, "test": 50})
                research_stage(warm, small)
            t0 = time.perf_counter()
            store = tmp / "results.zarr"
            _write_equity(store, n_portfolios, n_bars)
            write_s = time.perf_counter() - t0
            on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
            load0 = os.getloadavg()[0]
            sampler = TreeSampler(0.02)
            me = psutil.Process()
            with sampler:
                cpu0 = sum(me.cpu_times()[:2])
                t0 = time.perf_counter()
                res = research_stage(store, cfg)
                wall = time.perf_counter() - t0
                cpu = sum(me.cpu_times()[:2]) - cpu0
        child_result(
            {
                "wall_s": wall,
                "peak_bytes": sampler.peak,
                "cpu_s": cpu,
                "write_s": write_s,
                "disk_bytes": on_disk,
                "splits": res.summary["pbo"]["combinations"],
                "pbo": res.summary["pbo"]["pbo"],
                "load0": load0,
                "load1": os.getloadavg()[0],
            }
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100,000-portfolio row")
    ap.add_argument("--child", nargs=4, metavar=("P", "T", "B", "WF"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        p, t, b, wf = args.child
        child(int(p), int(t), int(b), wf)
        return
    rows = []
    for P, T, B, wf in QUICK if args.quick else CASES:
        wf_arg = "none" if wf is None else f"{wf[0]},{wf[1]}"
        log(f"research: {P:,} portfolios × {T:,} bars, {B} blocks, walk-forward {wf_arg} …")
        run = run_child(__file__, ["--child", P, T, B, wf_arg], timeout=3600)
        r = run.result
        rows.append(
            [
                f"{P:,}",
                f"{T:,}",
                B,
                f"{r['splits']:,}",
                "—" if wf is None else f"{wf[0]}/{wf[1]}",
                f"{r['wall_s']:.1f}",
                f"{r['peak_bytes'] / 1e9:.2f}",
                f"{r['cpu_s'] / max(r['wall_s'], 1e-9):.2f}",
                f"{r['disk_bytes'] / 1e9:.2f}",
                f"{r['pbo']:.3f}",
                f"{r['load0']:.1f}–{r['load1']:.1f}",
            ]
        )
        log(f"  {r['wall_s']:.1f} s, peak {r['peak_bytes'] / 1e9:.2f} GB, load {load_str()}")
    print("## Research statistics (psr/dsr, PBO by CSCV, walk-forward)\n")
    print(machine_header() + "\n")
    print(f"`{command_line()}`\n")
    print(
        "Synthetic random-walk equity (not a backtest) on disk in results.zarr; dask threads, "
        "2 workers; seconds and peak RSS of `research_stage` alone (kernels warm).\n"
    )
    print(
        md_table(
            [
                "portfolios",
                "bars",
                "blocks",
                "splits",
                "walk-forward train/test",
                "seconds",
                "peak RSS GB",
                "cores used (CPU s / wall s)",
                "equity on disk GB",
                "pbo",
                "load (1 min)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
