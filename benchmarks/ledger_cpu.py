"""CPU of the portfolio stage's tasks per ledger, in one process (no cluster, no other workers).

vs_vectorbt.py's case (``build_case``: random daily flips by default, 62.9M orders at 1,000
portfolios × 50 symbols × 2,520 bars) run by ``run_portfolios`` on dask's synchronous scheduler,
so that every task runs on this thread: the thread CPU of the tasks (``task_cpu``, which counts
the page faults of fresh buffers) is comparable between commits and between ledgers even on a
loaded machine, where wall times are not. One row per ledger (none, orders, orders + trades).

    .venv/bin/python benchmarks/ledger_cpu.py                  # 1,000 portfolios, flips
    .venv/bin/python benchmarks/ledger_cpu.py --portfolios 100 --signals trend
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import command_line, log, md_table
from vs_vectorbt import build_case

LEDGERS = {"none": (False, False), "orders": (True, False), "orders + trades": (True, True)}


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portfolios", type=int, default=1000, help="10, 100 or 1000")
    ap.add_argument("--signals", choices=("flips", "trend"), default="flips")
    ap.add_argument("--repeats", type=int, default=1, help="rounds over the ledgers (min kept)")
    args = ap.parse_args(argv)

    import dask

    from admf_dask.portfolio import run_portfolios

    data, sig, _, _, _, book = build_case(args.portfolios, 50, 2520, args.signals, 0.5)
    data = data.chunk({"time": 504, "symbol": -1})
    sig = sig.chunk({"time": 504, "symbol": -1, "strategy": -1})
    data, sig = dask.persist(data, sig)
    scratch = Path(tempfile.mkdtemp(prefix="ledger-cpu-"))
    best: dict[str, dict] = {}
    try:
        with dask.config.set(scheduler="synchronous"):
            for r in range(args.repeats + 1):  # round 0 compiles / loads the kernels
                for name, (orders, trades) in LEDGERS.items():
                    tic = time.thread_time()
                    res = run_portfolios(
                        data, sig, None, book, scratch / "run", run_id="cpu",
                        write_orders=orders, write_trades=trades,
                    )  # fmt: skip
                    row = dict(res.timings, thread_cpu=time.thread_time() - tic, n=res.n_orders)
                    log(f"round {r} {name}: task CPU {row['task_cpu']:.2f} s")
                    if r and (name not in best or row["task_cpu"] < best[name]["task_cpu"]):
                        best[name] = row
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = best["orders"]["task_cpu"]
    rows = [
        [
            name,
            f"{b['task_cpu']:.2f}",
            f"{b['task_cpu'] / base:.2f}",
            f"{b['thread_cpu']:.2f}",
            f"{b['task_kernel']:.2f}",
            f"{b['task_orders']:.2f}",
            f"{b['task_trades']:.2f}",
            f"{b['n']:,}",
        ]
        for name, b in best.items()
    ]
    head = ["ledger", "task CPU s", "vs orders", "process CPU s", "kernel s", "orders s"]
    out = f"`{command_line()}`\n\n" + md_table([*head, "trades s", "orders"], rows)
    print(out)
    return out


if __name__ == "__main__":
    main()
