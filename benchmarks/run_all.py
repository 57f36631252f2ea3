"""Run every benchmark and print docs/BENCHMARKS.md-ready markdown (what ``make bench`` does).

Each benchmark runs in its own subprocess (separate memory peaks, clusters and session caches);
its progress goes to stderr, its markdown to stdout, and this script joins them under one header
(machine, versions, load) and a summary of what ran.

    .venv/bin/python benchmarks/run_all.py                     # full sizes (~15 min on a quiet 2-core machine)
    .venv/bin/python benchmarks/run_all.py --quick             # small sizes, a few minutes
    .venv/bin/python benchmarks/run_all.py --only vs_vectorbt scaling --out /tmp/bench.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import PY, ROOT, load_str, log, machine_header, md_table

HERE = Path(__file__).resolve().parent

#: name -> (script, extra arguments)
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "vs_vectorbt": ("vs_vectorbt.py", []),
    "vs_vectorbt_trend": ("vs_vectorbt.py", ["--signals", "trend"]),
    "vs_backtrader": ("vs_backtrader.py", []),
    "vs_backtrader_trend": ("vs_backtrader.py", ["--signals", "trend"]),
    "vs_backtrader_trend_no_orders": (
        "vs_backtrader.py",
        ["--signals", "trend", "--no-orders", "--repeats", "2", "--bt-portfolios", "2"],
    ),
    "scaling": ("scaling.py", []),
    "feature_sharing": ("feature_sharing.py", []),
    "full_pipeline": ("full_pipeline.py", ["--second-run"]),
    "load_and_report": ("load_and_report.py", []),
    "report_size": ("report_size.py", []),
    "research": ("research.py", []),
    "cross_section": ("cross_section.py", []),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (passed to every script)")
    ap.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    ap.add_argument("--skip", nargs="+", choices=list(BENCHMARKS), default=[])
    ap.add_argument("--out", help="also write the markdown to this file")
    args = ap.parse_args(argv)

    names = [n for n in (args.only or BENCHMARKS) if n not in args.skip]
    parts = [
        "## Benchmark results" + (" (--quick sizes)" if args.quick else ""),
        "",
        f"`.venv/bin/python benchmarks/run_all.py{' --quick' if args.quick else ''}`",
        "",
        machine_header(),
        "",
    ]
    summary = []
    failed = 0
    for name in names:
        script, extra = BENCHMARKS[name]
        cmd = [PY, str(HERE / script), *extra, *(["--quick"] if args.quick else [])]
        log(f"== {name}: {' '.join(cmd[1:])} (load {load_str()})")
        tic = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        wall = time.perf_counter() - tic
        md = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("RESULT "))
        if proc.returncode != 0:
            failed += 1
            md += f"\n\n**{name} failed (exit {proc.returncode})**; see its stderr.\n"
        parts += [md.strip(), ""]
        summary.append([name, f"{wall / 60:.1f}", proc.returncode, load_str()])
        log(f"== {name}: {wall:.0f} s, exit {proc.returncode}")
    parts += [
        "#### What ran",
        "",
        md_table(["benchmark", "minutes", "exit", "load (1/5/15 min) after"], summary, "lrrr"),
        "",
    ]
    text = "\n".join(parts)
    print(text, flush=True)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        log(f"wrote {os.path.relpath(args.out)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
