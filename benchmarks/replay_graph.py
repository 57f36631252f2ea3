"""What a replayed signal file costs the client and the graph: read in tasks vs embedded.

The `signals` kind reads its file in tasks (`admf_dask.strategies.replay.signal_array`): one
check task per row group, one task per time chunk reading the row groups holding its bars. The
eager reader (`read_signal_table`) it replaced read the table on the client and embedded the
dense (time, symbol) array in the graph (`da.from_array`). For a long table of `--symbols`
symbols at every `--every`-th of `--bars` bars (Parquet, sorted by time, `--row-group` rows per
row group), time-chunked at `--chunk` bars: the graph's pickled size, the client's peak memory
while building (tracemalloc: Python and numpy allocations), and the build and compute times on
the threaded scheduler. Both give the same values (digest checked).

    .venv/bin/python benchmarks/replay_graph.py
    .venv/bin/python benchmarks/replay_graph.py --every 1     # dense: 10.1M rows
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import tracemalloc
from pathlib import Path

import cloudpickle
import dask.array as da
import numpy as np
import pandas as pd
from _common import LoadTracker, command_line, log, machine_header, md_table


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=5040)
    ap.add_argument("--every", type=int, default=5, help="a row at every n-th bar per symbol")
    ap.add_argument("--chunk", type=int, default=252, help="bars per time chunk")
    ap.add_argument("--row-group", type=int, default=100_000)
    args = ap.parse_args()

    from admf_dask.strategies.replay import read_signal_table, signal_array

    load = LoadTracker()
    times = pd.bdate_range("2000-01-03", periods=args.bars)
    symbols = [f"S{j:04d}" for j in range(args.symbols)]
    rng = np.random.default_rng(1)
    on = times[:: args.every]
    table = pd.DataFrame(
        {
            "time": np.repeat(on, len(symbols)),
            "symbol": np.tile(symbols, len(on)),
            "signal": np.round(rng.uniform(-1, 1, len(on) * len(symbols)), 4),
        }
    )
    chunks = tuple([args.chunk] * (args.bars // args.chunk))
    chunks += (args.bars % args.chunk,) if args.bars % args.chunk else ()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "signals.parquet"
        table.to_parquet(path, row_group_size=args.row_group)
        size_mb = path.stat().st_size / 2**20
        log(f"{len(table):,} rows, {size_mb:.1f} MiB Parquet")
        del table
        results = {}
        for how in ("eager (embedded)", "in tasks"):
            tracemalloc.start()
            t0 = time.perf_counter()
            if how.startswith("eager"):
                values = read_signal_table(path, "signals.parquet", times, symbols)
                arr = da.from_array(values, chunks=(chunks, (len(symbols),)))
                del values
            else:
                arr = signal_array(path, "signals.parquet", times, symbols, chunks)
            build = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            graph = len(cloudpickle.dumps(dict(arr.__dask_graph__())))
            t0 = time.perf_counter()
            got = arr.compute(scheduler="threads")
            compute = time.perf_counter() - t0
            results[how] = _digest(got)
            rows.append(
                [how, f"{graph / 2**20:,.2f}", f"{peak:,.0f}", f"{build:.2f}", f"{compute:.2f}"]
            )
            log(how, rows[-1])
            del arr, got
    same = len(set(results.values())) == 1
    print(f"## Replayed signals: {args.symbols:,} symbols x {args.bars:,} bars\n")
    print(machine_header())
    print(f"- command: `{command_line()}`; load during the run: {load}")
    print(
        f"- file: {len(on) * len(symbols):,} rows (every {args.every} bars), "
        f"{size_mb:.1f} MiB Parquet, {args.row_group:,} rows per row group; "
        f"{len(chunks)} time chunks of {args.chunk} bars; values equal: {same}\n"
    )
    print(
        md_table(
            ["reader", "graph MiB (pickled)", "client peak MiB (build)", "build s", "compute s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
