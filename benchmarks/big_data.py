"""Big market data: the client's memory stays flat because the data is made on the workers.

Market data is generated (synthetic) or read (Zarr) inside tasks, and the task graph carries no
arrays (docs/ARCHITECTURE.md, data stage), so the client holds coordinates and results only.

* part a: 2,000 synthetic symbols × 5,040 daily bars, 100 portfolios (a 10 × 10 grid of a trend
  rule). Target: client peak RSS <= 600 MiB.
* part b: 100 symbols × 1,000,000 minute bars from a Zarr store (written once, with the lazy
  synthetic market, into ``--store``), 20 portfolios and the report. Target: client <= 1 GiB.
* part c: a local vs an S3 run folder (`object_store.part_c`).
* part ingest: a 100 × 200,000 minute-bar CSV parsed on the client vs converted once into the
  disk cache vs read from it (`ingest.main`).

Each run is a child process (``admf_dask.run`` on the session LocalCluster sized to the
machine): its client peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` inside it; the whole
tree (client + scheduler + workers) is sampled from outside (`_common.run_child`).

    .venv/bin/python benchmarks/big_data.py                 # part a
    .venv/bin/python benchmarks/big_data.py --part b
    .venv/bin/python benchmarks/big_data.py --symbols 200 --bars 1000 --portfolios 25  # small
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    child_result,
    command_line,
    load_str,
    log,
    machine_header,
    md_table,
    run_child,
    trend_pipeline,
)

MIB = 1 << 20


def _grid(n: int) -> dict[str, list[float]]:
    """A ``rows × cols`` grid of about ``n`` portfolios (target_vol × stop_loss)."""
    rows = max(1, int(round(n**0.5)))
    cols = max(1, -(-n // rows))
    return {
        "target_vol": [round(0.05 + 0.3 * i / max(1, rows - 1), 4) for i in range(rows)],
        "stop_loss": [round(0.02 + 0.2 * i / max(1, cols - 1), 4) for i in range(cols)],
    }


def pipeline(data: dict[str, Any], portfolios: int, report: bool) -> dict[str, Any]:
    """A quickstart-like trend pipeline over `data` with about `portfolios` portfolios."""
    # re-target a position only past a 20% weight drift: without a band vol targeting trades
    # every symbol on every bar (a ledger benchmark, not a data one)
    cfg = trend_pipeline("big-data", data, _grid(portfolios), rebalance_band=0.2)
    cfg["cluster"] = {"ml_workers": 0}
    cfg["output"] = {"report": report, "orders": False}
    return cfg


def _graph_bytes(data: dict[str, Any], base_dir: str | None) -> int:
    import cloudpickle

    from admf_dask.data import load_market_data

    ds = load_market_data(data, base_dir=base_dir, compute_fingerprint=False)
    return len(cloudpickle.dumps(dict(ds.__dask_graph__())))


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def child(args: argparse.Namespace) -> None:
    """One run in this process: RESULT with the client's peak RSS and the timings."""
    import warnings

    warnings.filterwarnings("ignore")
    import admf_dask as ad

    cfg = json.loads(args.child)
    t0 = time.perf_counter()
    graph = _graph_bytes(cfg["data"], cfg.get("base_dir"))
    result = ad.run({k: v for k, v in cfg.items() if k != "base_dir"}, out=args.out)
    wall = time.perf_counter() - t0
    timings = json.loads((Path(args.out) / "run.json").read_text()).get("timings", {})
    report = Path(args.out) / "report.html"
    child_result(
        {
            "client_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "wall_s": wall,
            "graph_bytes": graph,
            "timings": timings,
            "portfolios": len(result.metrics),
            "report_bytes": report.stat().st_size if report.exists() else 0,
            "run_bytes": _dir_bytes(Path(args.out)),
        }
    )
    sys.stdout.flush()
    os._exit(0)  # the session cluster closes with the process


def write_store(path: Path, symbols: int, bars: int) -> None:
    """The lazy synthetic minute market written chunk by chunk into a Zarr store (once)."""
    import warnings

    from admf_dask.data import load_market_data

    if (path / "zarr.json").exists() or (path / ".zmetadata").exists():
        return
    log(f"writing {symbols} symbols × {bars:,} minute bars to {path} ...")
    ds = load_market_data(
        {
            "symbols": symbols,
            "bars": bars,
            "seed": 9,
            "frequency": "1min",
            "chunks": {"time": 50_000},
        },
        compute_fingerprint=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.drop_attrs().to_zarr(path, mode="w")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["a", "b", "c", "ingest"], default="a")
    ap.add_argument("--symbols", type=int, help="default: a 2000, b 100")
    ap.add_argument("--bars", type=int, help="default: a 5040, b 1000000")
    ap.add_argument("--portfolios", type=int, help="default: a 100, b 20")
    ap.add_argument("--store", default=None, help="part b: the Zarr store (default: a temp dir)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child:
        child(args)
        return
    if args.part == "ingest":
        from ingest import main as part_ingest

        sizes = [f"--{k}={v}" for k, v in (("symbols", args.symbols), ("bars", args.bars)) if v]
        part_ingest([*sizes, *rest])
        return
    if args.part == "c":
        from object_store import part_c

        part_c(rest)
        return
    a = args.part == "a"
    symbols = args.symbols or (2000 if a else 100)
    bars = args.bars or (5040 if a else 1_000_000)
    portfolios = args.portfolios or (100 if a else 20)
    tmp = Path(tempfile.mkdtemp(prefix="admf-big-data-"))
    try:
        if a:
            data: dict[str, Any] = {"source": "synthetic", "symbols": symbols, "bars": bars}
            data.update(seed=5, chunks={"time": 504})
            cfg = pipeline(data, portfolios, report=False)
        else:
            store = Path(args.store) if args.store else tmp / "minute.zarr"
            write_store(store, symbols, bars)
            data = {"source": "zarr", "path": str(store), "chunks": {"time": 50_000}}
            cfg = pipeline(data, portfolios, report=True)
        load0 = load_str()
        with open("/proc/loadavg") as f:
            proc_load = f.read().strip()
        log(f"part {args.part}: {symbols} symbols × {bars:,} bars, {portfolios} portfolios ...")
        run = run_child(__file__, ["--child", json.dumps(cfg), "--out", str(tmp / "run")])
        r = run.result
        target = 600 if a else 1024
        rows = [
            ["symbols × bars", f"{symbols:,} × {bars:,}"],
            ["portfolios", r["portfolios"]],
            ["data task graph (pickled)", f"{r['graph_bytes'] / 1024:.1f} KiB"],
            [
                "client peak RSS",
                f"{r['client_peak'] / MIB:.0f} MiB (target <= {target} MiB)",
            ],
            ["whole tree peak RSS", f"{run.peak_bytes / MIB:.0f} MiB"],
            ["total time (child process)", f"{run.wall_s:.1f} s"],
            ["run() time", f"{r['wall_s']:.1f} s"],
            *[
                [f"  {k} (run.json timings)", f"{v:.1f} s"]
                for k, v in r["timings"].items()
                if isinstance(v, (int, float))
            ],
            ["run folder", f"{r['run_bytes'] / MIB:.1f} MiB"],
        ]
        if not a:
            rows.append(["report.html", f"{r['report_bytes'] / MIB:.2f} MiB"])
        rows.append(["load average at start / end", f"{load0} / {load_str(run.load)}"])
        rows.append(["/proc/loadavg at start", proc_load])
        print(machine_header())
        print()
        print(f"`{command_line()}`")
        print()
        print(md_table(["big data, part " + args.part, "value"], rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
