"""The same pipeline with a local run folder and an S3 run folder: wall times and their ratio.

The S3 side is moto's S3-compatible server on 127.0.0.1 (``moto[server]``, reached through
s3fs like any S3 endpoint): the ratio measures what writing to the store costs (the workers'
region and part writes under the run's temporary prefix, the upload of the client's files, the
server-side copy, run.json last, docs/ARCHITECTURE.md "Object stores") and reading the run
back, not a network. Local and S3 runs alternate, on one
LocalCluster, after one warm-up run each (kernel compilation, imports).

    .venv/bin/python benchmarks/object_store.py
    .venv/bin/python benchmarks/object_store.py --quick

``benchmarks/big_data.py --part c`` runs this (`part_c`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    LoadTracker,
    command_line,
    linspace_grid,
    log,
    md_table,
    spread,
    synthetic_data,
    trend_pipeline,
)


def spec(symbols: int, bars: int, side: int) -> dict[str, Any]:
    """A trend pipeline with a ``side``² portfolio grid, orders, trades and the report."""
    grid = {
        "target_vol": linspace_grid(0.05, 0.3, side, 3),
        "stop_loss": linspace_grid(0.02, 0.2, side, 3),
    }
    cfg = trend_pipeline("object-store-bench", synthetic_data(symbols, bars), grid)
    cfg["output"] = {"report": True}
    return cfg


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def part_c(argv: list[str] | None = None) -> str:
    """Run the comparison; return the markdown table (also printed)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--side", type=int, default=20, help="grid values per parameter (side²)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10 symbols × 1008 bars × 25 portfolios")
    args, _ = ap.parse_known_args(argv)
    if args.quick:
        args.symbols, args.bars, args.side, args.repeats = 10, 1008, 5, 2
    warnings.filterwarnings("ignore", message="Sending large graph")
    import distributed  # noqa: F401  (configures its loggers on import: quiet them after)
    import s3fs
    from distributed import Client
    from moto.server import ThreadedMotoServer

    import admf_dask as ad
    from admf_dask.cluster import make_local_cluster
    from admf_dask.config.models import ClusterConfig
    from admf_dask.pipeline.runner import LogReporter

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "werkzeug"):
        logging.getLogger(name).setLevel(logging.ERROR)
    load = LoadTracker()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    opts = {"key": "bench", "secret": "bench", "endpoint_url": f"http://{host}:{port}"}
    s3fs.S3FileSystem(**opts).mkdir("bench")
    n_workers = max(1, min(4, (os.cpu_count() or 2) // 2))
    cluster = make_local_cluster(ClusterConfig(n_workers=n_workers, threads_per_worker=2))
    client = Client(cluster, set_as_default=False)
    scratch = Path(tempfile.mkdtemp(prefix="admf-bench-s3-"))
    pipe = spec(args.symbols, args.bars, args.side)
    pipe["output"]["storage_options"] = opts
    times: dict[str, list[float]] = {"local": [], "s3": []}
    reads: dict[str, list[float]] = {"local": [], "s3": []}
    size = 0
    try:
        for i in range(args.repeats + 1):  # i == 0: warm-up, not counted
            for side in ("local", "s3"):
                out = str(scratch / f"{side}-{i}") if side == "local" else f"s3://bench/runs/r{i}"
                log(f"{side} run {i}{' (warm-up)' if i == 0 else ''}")
                t0 = time.perf_counter()
                res = ad.run(pipe, client, out=out, reporter=LogReporter(echo=log))
                t1 = time.perf_counter()
                reopened = ad.open_run(out, storage_options=opts)
                np.asarray(reopened.equity.values)
                reopened.orders  # noqa: B018 - the whole ledger read back
                t2 = time.perf_counter()
                if i:
                    times[side].append(t1 - t0)
                    reads[side].append(t2 - t1)
                if side == "local":
                    size = _size(Path(out))
                del res, reopened
    finally:
        client.close()
        cluster.close()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    ratio = statistics.median(times["s3"]) / statistics.median(times["local"])
    read_ratio = statistics.median(reads["s3"]) / statistics.median(reads["local"])
    n = args.side**2
    rows = [
        ["run, local folder", spread(times["local"]), "1.00"],
        ["run, s3:// (moto on 127.0.0.1)", spread(times["s3"]), f"{ratio:.2f}"],
        ["open_run + equity + orders, local", spread(reads["local"]), "1.00"],
        ["open_run + equity + orders, s3://", spread(reads["s3"]), f"{read_ratio:.2f}"],
    ]
    text = (
        f"### (c) The same pipeline on a local and an S3 run folder\n\n`{command_line()}`\n\n"
        f"{args.symbols} symbols × {args.bars} bars, {n} portfolios, orders + trades + report; "
        f"run folder {size / 2**20:.1f} MiB; {n_workers} workers × 2 threads; "
        f"{args.repeats} repeats after a warm-up; load average {load}\n\n"
        + md_table(["step", "wall s", "× local"], rows, "lrr")
    )
    print(text, flush=True)
    return text


if __name__ == "__main__":
    part_c()
