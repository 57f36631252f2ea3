"""Results of a run, opened lazily from its run folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from admf_dask.errors import InputError
from admf_dask.pipeline.manifest import read_manifest


@dataclass
class RunResult:
    """A finished run.

    Attributes
    ----------
    path : Path
        The run folder.
    manifest : dict
        run.json.
    results : xr.Dataset
        results.zarr, lazily opened (equity, cash, metrics, grid coords, positions).
    features, signals : xr.Dataset, xr.DataArray or None
        The persisted collections of the run (``ad.run``) or signals.zarr (``ad.open_run``).
    """

    path: Path
    manifest: dict[str, Any]
    results: Any
    features: Any = None
    signals: Any = None
    _orders: Any = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def equity(self):
        """Equity (time, portfolio), lazy."""
        return self.results["equity"]

    @property
    def cash(self):
        """Cash (time, portfolio), lazy."""
        return self.results["cash"]

    @property
    def metrics(self):
        """`pandas.DataFrame` of metrics, one row per portfolio, grid parameters as columns."""
        import numpy as np

        ds = self.results
        cols = [v for v in ds.data_vars if ds[v].dims == ("portfolio",)]
        df = ds[cols].to_dataframe() if cols else ds.portfolio.to_dataframe()
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].astype(str)
        # profit_factor is inf for a portfolio without a losing trade (docs/TRADES.md): kept
        cols = [c for c in df.columns if c != "profit_factor"]
        df[cols] = df[cols].replace([np.inf, -np.inf], np.nan)
        return df

    @property
    def research(self) -> dict[str, Any] | None:
        """research.json (psr/dsr summary, ``pbo``, ``walk_forward``; docs/RESEARCH.md), or None."""
        import json

        p = self.path / "research.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    @property
    def orders_path(self) -> Path:
        return self.path / "orders.parquet"

    @property
    def orders(self):
        """The order ledger as a pandas DataFrame (loads it all: use `orders_dataset` when big)."""
        if self._orders is None:
            import pandas as pd

            if not self.orders_path.exists():
                self._orders = pd.DataFrame(
                    columns=["portfolio", "time", "symbol", "qty", "price", "commission", "reason"]
                )
            else:
                self._orders = self.orders_dataset().to_table().to_pandas()
                self._orders = self._orders.sort_values(
                    ["portfolio", "time", "symbol"], kind="stable"
                ).reset_index(drop=True)
        return self._orders

    @property
    def trades_path(self) -> Path:
        return self.path / "trades.parquet"

    def trades(self, portfolio=None, symbol=None):
        """The trades (docs/TRADES.md) as a pandas DataFrame, optionally of some portfolios / symbols.

        Parameters
        ----------
        portfolio : int or list of int, optional
            Only the files of these portfolios' batches are read.
        symbol : str or list of str, optional

        Returns
        -------
        pandas.DataFrame
            portfolio, symbol, side, entry_time, exit_time (NaT: open at the last bar), n_fills,
            entry_price, exit_price, pnl, cost, return, bars, mfe, mae; sorted by (portfolio,
            symbol, entry_time). Empty when the run wrote no trades (``output.trades: false``).
        """
        from admf_dask.portfolio.trades import read_trades, trades_schema

        if not self.trades_path.exists():
            return trades_schema().empty_table().to_pandas()
        return read_trades(self.trades_path, portfolio=portfolio, symbol=symbol)

    def orders_dataset(self):
        """The order ledger as a `pyarrow.dataset.Dataset` (filter and scan without loading)."""
        import pyarrow.dataset as pads

        return pads.dataset(self.orders_path, format="parquet")

    def __repr__(self) -> str:
        n = self.results.sizes.get("portfolio", 0)
        return (
            f"<RunResult {self.run_id} {self.manifest.get('name')}: {n} portfolios at {self.path}>"
        )


def open_run(path: str | Path) -> RunResult:
    """Open a run folder written by `admf_dask.run` / ``admf-dask run``.

    Parameters
    ----------
    path : str or Path
        The run folder (holding run.json).

    Returns
    -------
    RunResult
    """
    import xarray as xr

    p = Path(path)
    if not (p / "run.json").is_file():
        raise InputError(str(p), "not a run folder (no run.json)", "pass the folder a run wrote")
    manifest = read_manifest(p / "run.json")
    results = xr.open_zarr(p / "results.zarr") if (p / "results.zarr").exists() else xr.Dataset()
    signals = None
    if (p / "signals.zarr").exists():
        signals = xr.open_zarr(p / "signals.zarr")["signals"]
    return RunResult(path=p, manifest=manifest, results=results, signals=signals)
