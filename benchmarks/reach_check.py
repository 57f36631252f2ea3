"""What the "can every worker see this path" check costs a run on a LocalCluster.

`admf_dask.cluster.reach.check_run_paths` runs once per run, before any data is read: the
client writes a marker file beside the run folder, every worker reads it back and stats the
data file it will open, all in one ``client.run``; the marker is removed. Target: under 50 ms
on a LocalCluster (the workers share this machine's files). Measured on a 2-worker
LocalCluster: the first call right after the cluster is up (as in a run: the workers may still
be importing their modules, `admf_dask.cluster.plugin`), the next ones; then, on a fresh
cluster whose workers have finished their setup, its first call.

    .venv/bin/python benchmarks/reach_check.py
    .venv/bin/python benchmarks/reach_check.py --rounds 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import LoadTracker, command_line, log, machine_header, md_table

TARGET_MS = 50.0


def _ready(dask_worker) -> bool:  # on a worker: its setup (imports, kernels) is done
    from admf_dask.dasktools import WORKER_PLUGIN

    return bool(getattr(dask_worker.plugins.get(WORKER_PLUGIN), "ready", False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100, help="checks timed after the first")
    args = ap.parse_args()

    from distributed import Client

    from admf_dask.cluster import make_local_cluster
    from admf_dask.cluster.reach import check_run_paths
    from admf_dask.config.models import ClusterConfig, PipelineConfig

    load = LoadTracker()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "prices.parquet").write_bytes(b"\0" * 4096)
        cfg = PipelineConfig.model_validate(
            {"data": {"source": "parquet", "path": str(root / "prices.parquet")}}
        )

        def timed(client, i: int) -> float:
            t0 = time.perf_counter()
            check_run_paths(client, cfg, root / "runs" / "x", "--out", None, f"bench-{i}")
            return (time.perf_counter() - t0) * 1000

        spec = ClusterConfig(n_workers=2, threads_per_worker=1, ml_workers=0, memory_limit="2GiB")
        times = []
        with make_local_cluster(spec) as cluster, Client(cluster, set_as_default=False) as client:
            for i in range(args.rounds + 1):
                times.append(timed(client, i))
                if i % 20 == 0:
                    log(f"round {i}: {times[-1]:.2f} ms")
        with make_local_cluster(spec) as cluster, Client(cluster, set_as_default=False) as client:
            deadline = time.time() + 120
            while not all(client.run(_ready).values()) and time.time() < deadline:
                time.sleep(0.5)
            settled = timed(client, -1)
        left = sorted(p.name for p in root.iterdir())
    first, rest = times[0], sorted(times[1:])
    p95 = rest[min(len(rest) - 1, int(0.95 * len(rest)))]
    print("## Reach check on a LocalCluster (2 workers, 1 thread each)\n")
    print(machine_header())
    print(f"- command: `{command_line()}`; load during the run: {load}\n")
    print(
        md_table(
            ["call", "ms"],
            [
                ["first, right after the cluster is up", f"{first:.2f}"],
                ["first, workers set up", f"{settled:.2f}"],
                [f"next {len(rest)}: median", f"{statistics.median(rest):.2f}"],
                ["next: 95th percentile", f"{p95:.2f}"],
                ["next: max", f"{rest[-1]:.2f}"],
                ["target", f"< {TARGET_MS:.0f}"],
            ],
        )
    )
    print(f"\nfiles left beside the run folder: {left} (only the data file)")


if __name__ == "__main__":
    main()
