"""A big minute-bar CSV: parsed on the client vs converted once (first run) vs read lazily (next).

The CSV is written here from the synthetic generator (``symbols`` x ``bars`` one-minute bars, a
long table sorted by time). Each side runs in its own process (the "client": the data stage's
tasks run in its dask thread pool), sampled for peak RSS:

* ``eager``: ``data.source: csv`` with the cache off, parsed and pivoted on the client;
* ``first``: the same with the disk cache on, converting the CSV into it (``admf_dask.data.ingest``);
* ``second``: the next run, reading the cached Parquet store per row group in tasks.

Each loads the data and reduces every chunk (``close.mean()``), so all values are read once.

    .venv/bin/python benchmarks/ingest.py                      # 100 x 200,000 (about 1.3 GB)
    .venv/bin/python benchmarks/ingest.py --symbols 100 --bars 20000
    .venv/bin/python benchmarks/big_data.py --part ingest       # the same
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import command_line, log, machine_header, md_table, run_child

HERE = Path(__file__).resolve()


def write_csv(path: Path, symbols: int, bars: int, seed: int = 7, block: int = 20_000) -> int:
    """The synthetic market as a long CSV, written block by block of times; its size."""
    from admf_dask.data._synthetic import symbol_names, synthetic_ohlcv

    names = np.asarray(symbol_names(symbols), dtype=object)
    values = synthetic_ohlcv(bars, symbols, seed, vol_scale=(1 / 390) ** 0.5)  # minute bars
    times = pd.date_range("2024-01-02 09:30", periods=bars, freq="1min")
    with open(path, "w") as f:
        f.write("time,symbol,open,high,low,close,volume\n")
        for a in range(0, bars, block):
            b = min(a + block, bars)
            frame = pd.DataFrame(
                {
                    "time": np.repeat(times[a:b].strftime("%Y-%m-%d %H:%M:%S"), symbols),
                    "symbol": np.tile(names, b - a),
                    **{k: values[k][a:b].ravel() for k in ("open", "high", "low", "close")},
                    "volume": values["volume"][a:b].ravel(),
                }
            )
            frame.to_csv(f, header=False, index=False, float_format="%.7g")
    return path.stat().st_size


def child(csv: str, cache_dir: str, use_cache: bool, chunk: int) -> None:
    """One side: load (timed), reduce every chunk (timed); the RESULT line."""
    import dask
    from _common import child_result

    from admf_dask.config.models import CacheConfig
    from admf_dask.data import load_market_data

    cache = CacheConfig(dir=cache_dir, enabled=use_cache)
    t0 = time.perf_counter()
    ds = load_market_data(
        {"source": "csv", "path": csv, "chunks": {"time": chunk}},
        cache=cache,
        compute_fingerprint=False,
    )
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        mean = float(ds["close"].mean().compute())
    t_reduce = time.perf_counter() - t0
    child_result(
        {"load_s": t_load, "reduce_s": t_reduce, "mean": mean, "shape": list(ds["close"].shape)}
    )


def main(argv: list[str] | None = None) -> None:
    """The three runs and their table (``benchmarks/big_data.py --part ingest`` calls it)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--chunk", type=int, default=20_000, help="bars per time chunk")
    ap.add_argument("--child", nargs=3, metavar=("CSV", "CACHE", "USE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        csv, cache_dir, use = args.child
        child(csv, cache_dir, use == "1", args.chunk)
        return
    work = Path(tempfile.mkdtemp(prefix="admf-ingest-bench-"))
    try:
        csv = work / "prices.csv"
        log(f"writing {args.symbols} x {args.bars} minute bars to {csv} ...")
        size = write_csv(csv, args.symbols, args.bars)
        log(f"  {size / 1e6:,.0f} MB")
        cache_dir = work / "cache"
        rows = []
        means = set()
        for name, use in (
            ("eager (cache off)", "0"),
            ("first (converting)", "1"),
            ("second (cached)", "1"),
        ):
            log(f"{name} ...")
            load = open("/proc/loadavg").read().split()[:3]
            run = run_child(
                HERE, ["--chunk", args.chunk, "--child", csv, cache_dir, use], timeout=3600
            )
            r = run.result
            means.add(round(r["mean"], 9))
            rows.append(
                [
                    name,
                    f"{r['load_s']:.1f}",
                    f"{r['reduce_s']:.1f}",
                    f"{run.wall_s:.1f}",
                    f"{run.peak_bytes / 2**30:.2f}",
                    " ".join(load),
                ]
            )
        if len(means) != 1:
            raise SystemExit(f"the sides disagree: means {sorted(means)}")
        store = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file())
        print(f"## CSV ingest: {args.symbols} symbols x {args.bars:,} minute bars\n")
        print(machine_header())
        print(f"- command: `{command_line()}`")
        print(f"- CSV {size / 1e6:,.0f} MB; cached Parquet store {store / 1e6:,.0f} MB\n")
        print(
            md_table(
                ["run", "load s", "reduce s", "process s", "client peak RSS GiB", "loadavg"],
                rows,
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
