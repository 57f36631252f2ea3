"""Helpers shared by the reliability tests: small valid inputs and a loopback deployment."""

from __future__ import annotations

import contextlib
import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _deploy import start_proc, start_scheduler, stop_procs, wait_for_workers, worker_command

FIELDS = ("open", "high", "low", "close", "volume")

#: a small valid pipeline on the synthetic market (fails nowhere; cases break one thing)
BASE: dict = {
    "name": "rel",
    "data": {"source": "synthetic", "symbols": 4, "bars": 120, "seed": 1, "chunks": {"time": 60}},
    "features": {"sma_5": {"kind": "sma", "window": 5}, "sma_20": {"kind": "sma", "window": 20}},
    "strategies": {"trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"}},
    "portfolios": {"capital": 100000, "batch_size": 4, "grid": {"stop_loss": [None, 0.05]}},
    "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
    "output": {"report": False},
}


def base(**sections) -> dict:
    """A copy of `BASE` with whole sections replaced."""
    out = copy.deepcopy(BASE)
    out.update(copy.deepcopy(sections))
    return out


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def prices(
    n_bars: int = 60,
    symbols: tuple[str, ...] = ("A", "B", "C"),
    seed: int = 5,
    start: str = "2020-01-01",
) -> pd.DataFrame:
    """A valid long OHLCV table, rows sorted by (time, symbol); row i is csv line i + 2."""
    rng = np.random.default_rng(seed)
    times = pd.bdate_range(start, periods=n_bars)
    n_sym = len(symbols)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_bars, n_sym)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, (n_bars, n_sym)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, (n_bars, n_sym))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, (n_bars, n_sym))))
    volume = rng.integers(1_000, 100_000, (n_bars, n_sym)).astype(float)
    return pd.DataFrame(
        {
            "time": np.repeat(times, n_sym),
            "symbol": np.tile(np.asarray(symbols, dtype=object), n_bars),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    out = df.copy()
    if np.issubdtype(out["time"].dtype, np.datetime64):
        out["time"] = pd.DatetimeIndex(out["time"]).strftime("%Y-%m-%d")
    out.to_csv(path, index=False)
    return path


def to_dataset(df: pd.DataFrame):
    """The long table as an xarray (time, symbol) Dataset (for Zarr stores)."""
    return df.set_index(["time", "symbol"]).to_xarray()


# ----------------------------------------------------------------------------- deployment


@contextlib.contextmanager
def deployment(
    folder: Path,
    workers: dict[str, list[str]],
    memory_limit: str = "2GiB",
    env: dict | None = None,
    wait: bool = True,
) -> Iterator[tuple[str, dict[str, subprocess.Popen]]]:
    """`dask scheduler` + one `dask worker` per name on 127.0.0.1; all stopped on exit.

    `env` (dask config variables) goes to every process. Yields the scheduler address and
    ``{worker name: Popen}`` (each its own process group: nanny and worker die together with
    ``os.killpg``).
    """
    sched, address = start_scheduler(folder, env=env)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, extra in workers.items():
            procs[name] = start_proc(
                worker_command(
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--name",
                    name,
                    "--memory-limit",
                    memory_limit,
                    "--no-dashboard",
                    *extra,
                ),
                folder / f"{name}.log",
                env=env,
            )
        if wait:
            wait_for_workers(address, len(workers), [folder / f"{n}.log" for n in workers])
        yield address, procs
    finally:
        stop_procs([*procs.values(), sched])
