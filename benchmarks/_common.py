"""Helpers shared by the benchmarks: samplers, child runs, the machine header, markdown tables.

The process-tree sampler is `portfolio_scaling.TreeSampler` (peak RSS summed over a process and
its descendants, CPU seconds); `ProcSampler` only re-roots it: at a child process (each side of a
head-to-head runs in its own subprocess, so the peaks are separate) or at a set of processes (the
client plus one cluster's workers, when two clusters live in one session).

Conventions of every benchmark script: progress goes to stderr (`log`), the markdown result goes
to stdout, so ``run_all.py`` can collect the tables. Children report their numbers on one stdout
line ``RESULT {json}`` (`child_result`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # scripts import each other by module name
    sys.path.insert(0, str(HERE))

from portfolio_scaling import TreeSampler  # noqa: E402  (the portfolio engineer's sampler)

ROOT = HERE.parent
PY = sys.executable
RESULT_TAG = "RESULT "


def log(*args: Any) -> None:
    """Progress line on stderr (stdout carries the markdown)."""
    print(*args, file=sys.stderr, flush=True)


# -- sampling --------------------------------------------------------------------------------------


class ProcSampler(TreeSampler):
    """`TreeSampler` over the trees of the given root pids (default: this process's tree).

    ``alone``: more pids, counted without their descendants (e.g. this process, when it also
    hosts another cluster that must not be counted).
    """

    def __init__(
        self, roots: Iterable[int] | None = None, interval: float = 0.05, alone: Iterable[int] = ()
    ) -> None:
        super().__init__(interval)
        self.roots = [psutil.Process(p) for p in roots] if roots is not None else [self.root]
        self.alone = [psutil.Process(p) for p in alone]

    def _procs(self):
        out: dict[int, psutil.Process] = {p.pid: p for p in self.alone}
        for r in self.roots:
            try:
                out[r.pid] = r
                for c in r.children(recursive=True):
                    out[c.pid] = c
            except psutil.Error:
                continue
        return list(out.values())


class CpuShare:
    """CPU busy share over a block: of this run's processes and of the whole machine.

    ``own`` = CPU seconds of the sampled processes / (wall × ``cores``) (``cores``: the cores the
    run may use, e.g. its worker count); ``system`` = 1 − idle share of all CPUs (others' load
    included).
    """

    def __init__(self, sampler: TreeSampler, cores: int) -> None:
        self.sampler, self.cores = sampler, max(1, cores)

    def __enter__(self) -> CpuShare:
        self._sys0 = psutil.cpu_times()
        self._cpu0 = self.sampler.cpu_seconds()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t0
        cpu = self.sampler.cpu_seconds() - self._cpu0
        s1 = psutil.cpu_times()
        busy = sum(getattr(s1, f) - getattr(self._sys0, f) for f in s1._fields)
        idle = (s1.idle - self._sys0.idle) + (
            getattr(s1, "iowait", 0) - getattr(self._sys0, "iowait", 0)
        )
        self.own = cpu / (self.wall * self.cores) if self.wall > 0 else float("nan")
        self.system = 1.0 - idle / busy if busy > 0 else float("nan")


# -- child processes -------------------------------------------------------------------------------


@dataclass
class ChildRun:
    """One subprocess: its exit code, wall time, sampled peak RSS of its tree, its RESULT."""

    rc: int
    wall_s: float
    peak_bytes: int
    cpu_s: float
    result: dict[str, Any] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def peak_gb(self) -> float:
        return self.peak_bytes / 1e9


def child_result(payload: dict[str, Any]) -> None:
    """Report a child's numbers to the parent (one stdout line)."""
    print(RESULT_TAG + json.dumps(payload, default=float), flush=True)


def run_child(
    script: str | Path, args: Sequence[str], *, timeout: float | None = None, check: bool = True
) -> ChildRun:
    """Run ``python script args…`` with its process tree sampled; parse its RESULT line."""
    cmd = [PY, str(script), *map(str, args)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, cwd=ROOT, env=env)
    sampler = ProcSampler([proc.pid], interval=0.05)
    with sampler:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG) :])
        elif line.strip():
            log("  [child]", line)
    if check and (proc.returncode != 0 or not result):
        raise RuntimeError(f"child failed (rc {proc.returncode}): {' '.join(cmd)}")
    return ChildRun(
        proc.returncode, wall, sampler.peak, sampler.cpu_seconds(), result, os.getloadavg()
    )


# -- numbers ---------------------------------------------------------------------------------------


def synthetic_data(symbols: int, bars: int, seed: int = 5) -> dict[str, Any]:
    """The benchmarks' synthetic market section: ``symbols`` × ``bars``, time chunks of 504."""
    return {
        "source": "synthetic",
        "symbols": symbols,
        "bars": bars,
        "seed": seed,
        "chunks": {"time": 504},
    }


def linspace_grid(lo: float, hi: float, n: int, digits: int) -> list[float]:
    """`n` evenly spaced grid values from `lo` to `hi`, rounded to `digits` (a grid key's list)."""
    import numpy as np

    return [round(float(x), digits) for x in np.linspace(lo, hi, n)]


def trend_pipeline(
    name: str, data: dict[str, Any], grid: dict[str, list[float]], **portfolios: Any
) -> dict[str, Any]:
    """The quickstart's EMA-crossover pipeline, vol-targeted, over `data` and a portfolio `grid`.

    Extra keyword arguments go into the ``portfolios`` section (e.g. ``rebalance_band``); the
    caller adds ``cluster`` and ``output``.
    """
    return {
        "name": name,
        "data": data,
        "features": {
            "fast": {"kind": "ema", "window": 10},
            "slow": {"kind": "ema", "window": 50},
            "vol": {"kind": "volatility", "window": 20},
        },
        "strategies": {"trend": {"kind": "ma_crossover", "fast": "fast", "slow": "slow"}},
        "portfolios": {
            "capital": 1_000_000,
            "vol_feature": "vol",
            "sizing": "vol_target",
            **portfolios,
            "grid": grid,
        },
    }


def median(xs: Iterable[float]) -> float:
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def spread(xs: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``median (min–max)`` of repeats, or the single value."""
    xs = list(xs)
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def sci(x: float) -> str:
    return f"{x:.2e}".replace("e+0", "e").replace("e+", "e")


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def load_str(load: Sequence[float] | None = None) -> str:
    la = load if load is not None else os.getloadavg()
    return "/".join(f"{x:.1f}" for x in la[:3])


class LoadTracker:
    """1-minute load average sampled at marks: reports min–max over a benchmark."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.mark()

    def mark(self) -> None:
        self.samples.append(os.getloadavg()[0])

    def __str__(self) -> str:
        self.mark()
        lo, hi = min(self.samples), max(self.samples)
        return f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f}–{hi:.1f}"


# -- markdown ------------------------------------------------------------------------------------------


def md_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None
) -> str:
    """A markdown table; ``align``: one of ``l`` / ``r`` per column (default: first l, rest r)."""
    headers = list(headers)
    align = align or ("l" + "r" * (len(headers) - 1))
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(sep) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "—"


PACKAGES = (
    "admf-dask",
    "numpy",
    "numba",
    "pandas",
    "xarray",
    "dask",
    "distributed",
    "zarr",
    "pyarrow",
    "vectorbt",
    "backtrader",
    "xgboost",
    "torch",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "?"


def machine_info() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": vm.total / 1e9,
        "available_gb": vm.available / 1e9,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load": os.getloadavg(),
        "git": git_rev(),
        "versions": {p: _version(p) for p in PACKAGES},
    }


def machine_header() -> str:
    """Markdown lines: the machine, its load now, the package versions."""
    m = machine_info()
    vers = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return (
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']:.0f} GB RAM "
        f"({m['available_gb']:.0f} GB available at start), {m['os']}\n"
        f"- load average (1/5/15 min) at start: {load_str(m['load'])} "
        "(the machine is shared with other engineers' test runs)\n"
        f"- Python {m['python']}; {vers}\n"
        f"- commit: {m['git']}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def command_line() -> str:
    """The command that produced a table (for docs/BENCHMARKS.md)."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(ROOT)
    except ValueError:
        pass
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])
