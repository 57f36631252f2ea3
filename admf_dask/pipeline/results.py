"""Results of a run, opened lazily from its run folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xarray.backends import BackendArray  # lazily read arrays (`_OnClient`)

from admf_dask.dasktools.fs import Loc, is_url, local_path, store_error
from admf_dask.data.dates import open_zarr  # far dates (past 2262) in seconds: docs/TIME.md
from admf_dask.errors import InputError
from admf_dask.pipeline.manifest import read_manifest


@dataclass
class RunResult:
    """A finished run.

    Attributes
    ----------
    path : Path or Loc
        The run folder (a `admf_dask.dasktools.fs.Loc` for a run on an object store).
    manifest : dict
        run.json.
    results : xr.Dataset
        results.zarr, lazily opened (equity, cash, metrics, grid coords, positions).
    features, signals : xr.Dataset, xr.DataArray or None
        ``ad.run``: the run's collections, kept in its cluster's memory and read through the
        run's client whichever client is the default one then (`through_client`);
        ``ad.open_run``: signals.zarr (no features).
    """

    path: Path
    manifest: dict[str, Any]
    results: Any
    features: Any = None
    signals: Any = None
    _orders: Any = field(default=None, repr=False)
    _local_copy: Any = field(default=None, repr=False)
    #: the metrics the run computed (`admf_dask.portfolio.PortfolioResult.metrics`), set by
    #: ``ad.run``: the CLI's closing table reads them instead of results.zarr
    _run_metrics: Any = field(default=None, repr=False)

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
        return _metrics_frame(self.results)

    def _closing_metrics(self):
        """The portfolio stage's metrics as `metrics` gives them, from the run's memory when
        this result comes from ``ad.run`` (the CLI's closing table: a read of results.zarr
        less), else `metrics`. Without the research stage's columns (``psr``, ``dsr``)."""
        if self._run_metrics is None:
            return self.metrics
        return _metrics_frame(self._run_metrics)

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
        path = self.trades_path
        if isinstance(path, Loc):  # the batch-file index reads local files: a copy, once
            if self._local_copy is None:
                import tempfile

                self._local_copy = tempfile.TemporaryDirectory(prefix="admf-dask-trades-")
                path.fs.get(path.path, self._local_copy.name + "/trades.parquet", recursive=True)
            path = Path(self._local_copy.name) / "trades.parquet"
        return read_trades(path, portfolio=portfolio, symbol=symbol)

    def orders_dataset(self):
        """The order ledger as a `pyarrow.dataset.Dataset` (filter and scan without loading)."""
        import pyarrow.dataset as pads

        if isinstance(self.orders_path, Loc):
            loc = self.orders_path
            return pads.dataset(loc.path, filesystem=loc.fs, format="parquet")
        return pads.dataset(self.orders_path, format="parquet")

    def __repr__(self) -> str:
        n = self.results.sizes.get("portfolio", 0)
        return (
            f"<RunResult {self.run_id} {self.manifest.get('name')}: {n} portfolios at {self.path}>"
        )


class _OnClient(BackendArray):
    """A dask array of a run, read through the run's client: indexing computes the selected
    part there (only the chunks it needs), so ``.values`` works whichever client is the default
    one, or none. The arrays stay lazy (xarray's lazy indexing) until read."""

    def __init__(self, array: Any, client: Any, name: str) -> None:
        self.array, self.client, self.name = array, client, name
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, key: Any) -> Any:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR, self._get
        )

    def _get(self, key: tuple) -> Any:
        import numpy as np

        if self.client.status not in ("running", "connecting"):
            raise InputError(
                f"RunResult.{self.name}",
                "held in the memory of the run's cluster, whose client is closed now",
                "read them before closing it, or open the run's signals.zarr with ad.open_run",
            )
        return np.asarray(self.client.compute(self.array[key], sync=True))


def through_client(obj: Any, client: Any, name: str) -> Any:
    """`obj` (an xarray Dataset or DataArray of the run, dask-backed) read through `client`.

    The run's collections live on its cluster (persisted there, or read by its workers); a plain
    dask compute goes to the default client, or to the threaded scheduler when there is none,
    neither of which holds them ("Missing dependency"). Each dask-backed variable becomes a lazy
    array whose reads compute on `client` (`_OnClient`); a closed client is one line
    (`InputError`).

    Parameters
    ----------
    obj : xr.Dataset, xr.DataArray or None
    client : distributed.Client
        The run's client.
    name : str
        ``features`` or ``signals`` (named by the message of a closed client).

    Returns
    -------
    xr.Dataset, xr.DataArray or None
        Same dims, coords, attrs and values; numpy-backed variables are kept as they are.
    """
    import xarray as xr
    from xarray.core.indexing import LazilyIndexedArray

    if obj is None:
        return None

    def lazy(v: xr.Variable) -> LazilyIndexedArray:
        return LazilyIndexedArray(_OnClient(v.data, client, name))

    def wrap(v: xr.Variable) -> xr.Variable:
        # copy(data=...) keeps a lazy array lazy (`Variable.data` would load it)
        return v.copy(deep=False, data=lazy(v))

    coords = {k: wrap(c.variable) for k, c in obj.coords.items() if c.chunks is not None}
    if isinstance(obj, xr.DataArray):
        out = obj.copy(deep=False, data=lazy(obj.variable) if obj.chunks is not None else None)
        return out.assign_coords(coords)
    out = obj.copy(deep=False)
    for k in obj.data_vars:
        if obj[k].chunks is not None:
            out[k] = wrap(obj[k].variable)
    return out.assign_coords(coords)


def _metrics_frame(ds: Any):
    """`RunResult.metrics` of a Dataset of (portfolio,) metrics with the grid coordinates."""
    import numpy as np

    cols = [v for v in ds.data_vars if ds[v].dims == ("portfolio",)]
    # one compute of all the columns (to_dataframe would compute each variable on its own)
    df = ds[cols].compute().to_dataframe() if cols else ds.portfolio.to_dataframe()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].astype(str)
    # profit_factor is inf for a portfolio without a losing trade (docs/TRADES.md): kept
    cols = [c for c in df.columns if c != "profit_factor"]
    df[cols] = df[cols].replace([np.inf, -np.inf], np.nan)
    return df


def open_run(path: str | Path | Loc, storage_options: dict[str, Any] | None = None) -> RunResult:
    """Open a run folder written by `admf_dask.run` / ``admf-dask run``.

    Parameters
    ----------
    path : str, Path or Loc
        The run folder (holding run.json): a local path or a URL (``s3://bucket/runs/x``).
    storage_options : dict, optional
        Options of the URL's fsspec filesystem (default: credentials from the environment).

    Returns
    -------
    RunResult

    Raises
    ------
    InputError
        No run.json there: not a run, or one that was never committed (on an object store a
        run is written under a temporary prefix and its run.json is written last).
    """
    import xarray as xr

    if isinstance(path, Loc) or is_url(path):
        from admf_dask.dasktools.fs import resolve

        return _open_remote(resolve(path, storage_options, where=str(path)), xr)
    return open_local_run(Path(local_path(path)).expanduser())  # file:// included


def open_local_run(p: Path, signals: bool = True) -> RunResult:
    """`open_run` of a local run folder; `signals` false: signals.zarr is not opened (``ad.run``
    hands its own signals over instead)."""
    import xarray as xr

    if not (p / "run.json").is_file():
        raise InputError(str(p), "not a run folder (no run.json)", "pass the folder a run wrote")
    manifest = read_manifest(p / "run.json")
    results = open_zarr(p / "results.zarr") if (p / "results.zarr").exists() else xr.Dataset()
    array = None
    if signals and (p / "signals.zarr").exists():
        array = open_zarr(p / "signals.zarr")["signals"]
    return RunResult(path=p, manifest=manifest, results=results, signals=array)


def _open_remote(loc: Loc, xr: Any) -> RunResult:
    import json

    try:
        loc.fs.invalidate_cache(loc.path)
        found = (loc / "run.json").is_file()
    except Exception as exc:  # noqa: BLE001 - every store raises its own types
        raise store_error(exc, loc, str(loc), writing=False) from None
    if not found:
        raise InputError(
            str(loc),
            "not a run (no run.json: a run still being written, or one that failed)",
            "pass the prefix of a finished run",
        )
    try:
        manifest = json.loads((loc / "run.json").read_text())
    except ValueError as exc:
        raise InputError(str(loc / "run.json"), f"not valid JSON ({exc})", "re-run") from None
    opts = loc.storage_options or None

    def zarr(name: str) -> Any:
        return open_zarr((loc / name).url, storage_options=opts)

    results = zarr("results.zarr") if (loc / "results.zarr").exists() else xr.Dataset()
    signals = zarr("signals.zarr")["signals"] if (loc / "signals.zarr").exists() else None
    return RunResult(path=loc, manifest=manifest, results=results, signals=signals)
