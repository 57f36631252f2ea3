"""Pydantic models of the pipeline file (DESIGN §5). Unknown keys are errors everywhere.

Feature and strategy specs are kept as plain dicts (``{"kind": ..., **params}``): their parameters
are declared by the registered indicator / strategy function, which validates them
(`admf_dask.features.validate_feature_spec`, `admf_dask.strategies.validate_strategy_spec`), so
adding a kind is one registered function and no change here.
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from admf_dask.research.config import ResearchConfig

Sizing = Literal["fixed", "vol_target"]


def _iso_date(value: Any) -> Any:
    """A date-like value as an ISO string: YAML reads an unquoted ``2005-01-01`` as a date.

    Dates and datetimes become ``isoformat()`` text, so a quoted and an unquoted date give the
    same config (and config hash); text must be ISO 8601 (``01/03/2005`` is ambiguous).
    """
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError(f"expected a date such as 2005-01-01, got {value!r}")
    import pandas as pd

    text = value.strip()
    try:
        ok = not pd.isna(pd.to_datetime(text, format="ISO8601"))
    except (ValueError, TypeError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"'{value}' is not a date: write an ISO date such as 2005-01-31")
    return text


# A date or datetime, kept as its ISO 8601 text.
IsoDate = Annotated[str, BeforeValidator(_iso_date)]

# Canonical columns of a long market-data table (keys of data.columns).
DATA_COLUMNS: tuple[str, ...] = ("time", "symbol", "open", "high", "low", "close", "volume")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ChunksConfig(_Strict):
    time: int = Field(504, description="bars per time chunk of the dask arrays")

    @field_validator("time")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"chunk size must be a positive number of bars, got {v}")
        return v


class DataConfig(_Strict):
    # where the bars come from; synthetic is the embedded seeded market (no files, no network)
    source: Literal["synthetic", "csv", "parquet", "zarr", "bokeh_stocks"] = "synthetic"
    # file or folder for csv / parquet / zarr, resolved relative to the pipeline file
    path: str | None = None
    # synthetic: how many symbols (int); any source: a list selects these symbols
    symbols: int | list[str] | None = None
    # synthetic: number of daily bars
    bars: int = Field(2520, ge=2)
    # synthetic: random seed (same seed, same market)
    seed: int = 7
    # first and last date kept (inclusive; ISO dates or datetimes, quoted or not); null keeps all
    start: IsoDate | None = None
    end: IsoDate | None = None
    # csv / parquet: strftime format of text dates, e.g. "%d/%m/%Y" (null: inferred from all
    # values of the column, one format for the whole column; ambiguous throughout is an error)
    date_format: str | None = None
    # csv / parquet: the file's column names, {time: Date, symbol: Ticker, close: Last, ...}
    # (columns left out are found by their usual names, case-insensitively)
    columns: dict[str, str] | None = None
    # dask chunking of the time axis (symbols are never split)
    chunks: ChunksConfig = Field(default_factory=ChunksConfig)
    # bokeh_stocks: split-adjust OHLC with adj_close (false keeps raw prices)
    adjust: bool = True
    # synthetic: fraction of bars randomly missing (NaN), to exercise gaps
    missing: float = Field(0.0, ge=0.0, lt=1.0)
    # synthetic: fraction of symbols that list late (history starts partway)
    late_listed: float = Field(0.0, ge=0.0, le=1.0)
    # synthetic: first date of the generated business-day calendar
    calendar_start: IsoDate = "2010-01-04"

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, v: str | None) -> str | None:
        from admf_dask.data.dates import check_format

        return None if v is None else check_format(v)

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        from admf_dask.errors import did_you_mean

        if v is None:
            return v
        seen: dict[str, str] = {}
        for key, name in v.items():
            if key not in DATA_COLUMNS:
                raise ValueError(
                    f"unknown column key '{key}'{did_you_mean(key, DATA_COLUMNS)}; keys are "
                    + ", ".join(DATA_COLUMNS)
                )
            if not name.strip():
                raise ValueError(f"columns.{key} is empty: name the file's column")
            low = name.strip().lower()
            if low in seen:
                raise ValueError(f"columns.{seen[low]} and columns.{key} both name '{name}'")
            seen[low] = key
        return v

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        for key in ("date_format", "columns"):
            if getattr(self, key) is not None and self.source not in ("csv", "parquet"):
                raise ValueError(
                    f"{key} applies to csv and parquet files only, not source '{self.source}': "
                    f"remove data.{key}"
                )
        if self.source in ("csv", "parquet", "zarr") and not self.path:
            raise ValueError(f"source '{self.source}' needs a path: add data.path")
        if isinstance(self.symbols, int) and self.symbols < 1:
            raise ValueError(f"symbols must be at least 1, got {self.symbols}")
        if isinstance(self.symbols, list) and not self.symbols:
            raise ValueError("symbols is an empty list: name at least one symbol or remove the key")
        return self


class PortfolioParams(_Strict):
    """Per-portfolio parameters: each may be a scalar here or a list under ``grid``."""

    # fixed: w = u*position_weight; vol_target: w = u*target_vol/vol
    sizing: Sizing = "fixed"
    # weight per unit of signal for fixed sizing (null: 1/n_symbols)
    position_weight: float | None = Field(None, gt=0)
    # annualized volatility target per position for vol_target sizing
    target_vol: float = Field(0.10, gt=0)
    # feature holding the annualized volatility used by vol_target sizing
    vol_feature: str | None = None
    # cap on |weight| per position
    max_position: float = Field(1.0, gt=0)
    # cap on the sum of |weights| (scaled down proportionally above it)
    max_gross: float = Field(1.0, gt=0)
    # false: long-only (negative combined signals are flat)
    allow_short: bool = False
    # stop a position when it loses this fraction from its entry price (null: no stop)
    stop_loss: float | None = Field(None, gt=0, lt=1)
    # halt the portfolio when equity falls this fraction below its peak (null: never)
    max_drawdown: float | None = Field(None, gt=0, lt=1)
    # re-target a position only when its weight moves more than this
    rebalance_band: float = Field(0.0, ge=0)
    # proportional commission per fill (null: execution.commission)
    commission: float | None = Field(None, ge=0)
    # fixed commission per fill in cash (null: execution.commission_fixed)
    commission_fixed: float | None = Field(None, ge=0)
    # slippage in basis points against the fill (null: execution.slippage_bps)
    slippage_bps: float | None = Field(None, ge=0)
    # exit when the price gains this fraction from the entry price (null: off; DESIGN §2b)
    take_profit: float | None = Field(None, gt=0)
    # exit when the price falls this fraction from its best since entry (null: off)
    trailing_stop: float | None = Field(None, gt=0, lt=1)
    # exit a position after this many bars, the opening bar counted (null: off)
    max_holding: int | None = Field(None, ge=1, strict=True)
    # when exit levels are tested: at the close (fill at the next open) or intrabar (fill at the
    # level, from the bar's open, high and low)
    exit_on: Literal["close", "intrabar"] = "close"
    # hold at most this many positions, the strongest |signal| first (null: no limit)
    max_positions: int | None = Field(None, ge=1, strict=True)


PARAM_KEYS: tuple[str, ...] = tuple(PortfolioParams.model_fields)
GRID_KEYS: tuple[str, ...] = ("strategy", *PARAM_KEYS)


class PortfoliosConfig(PortfolioParams):
    # starting cash of every portfolio
    capital: float = Field(1_000_000.0, gt=0)
    # portfolios per batch (one chain of tasks per batch)
    batch_size: int = Field(500, ge=1)
    # strategy mix when grid has no 'strategy': a name or {name: weight} (null: equal mix of all)
    strategy: Any = None  # validated against the strategies by the loader
    # cartesian product of these lists, one portfolio per combination, in the order written
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    # bars per year for annualized metrics (252 for daily bars)
    periods_per_year: float = Field(252.0, gt=0)

    @field_validator("grid")
    @classmethod
    def _grid_keys(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        from admf_dask.errors import did_you_mean

        for key, values in grid.items():
            if key not in GRID_KEYS:
                raise ValueError(
                    f"unknown grid key '{key}'{did_you_mean(key, GRID_KEYS)}; grid keys are "
                    + ", ".join(GRID_KEYS)
                )
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{key} must be a non-empty list")
            if key != "strategy":
                for v in values:  # each value must be valid as the scalar parameter
                    PortfolioParams.model_validate({key: v})
        return grid


class ExecutionConfig(_Strict):
    # proportional commission per fill (0.0005 = 5 bps of traded value)
    commission: float = Field(0.0005, ge=0)
    # fixed commission per fill, in cash
    commission_fixed: float = Field(0.0, ge=0)
    # slippage in basis points: buys fill above the open, sells below
    slippage_bps: float = Field(2.0, ge=0)


class ClusterConfig(_Strict):
    # existing scheduler (tcp://host:port); null starts a LocalCluster sized to this machine
    address: str | None = None
    # LocalCluster workers ("auto": from cores and memory)
    n_workers: int | Literal["auto"] = "auto"
    # threads per worker ("auto": cores / workers)
    threads_per_worker: int | Literal["auto"] = "auto"
    # how many workers carry resource ML (and GPU when CUDA is present)
    ml_workers: int = Field(1, ge=0)
    # memory per worker ("auto": 90% of RAM shared out, or e.g. "4GiB")
    memory_limit: str = "auto"
    # interface the scheduler, workers and dashboard listen on
    host: str = "127.0.0.1"
    # dashboard address (":0" picks a free port; null disables it)
    dashboard_address: str | None = ":0"

    @field_validator("n_workers", "threads_per_worker")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be 'auto' or at least 1, got {v}")
        return v


class OutputConfig(_Strict):
    # run folder (relative paths are relative to the pipeline file's folder's working dir)
    path: str = "runs/run"
    # write signals.zarr
    save_signals: bool = True
    # write orders.parquet (10,000 portfolios of trend signals make ~1e8 orders)
    orders: bool = True
    # write report.html
    report: bool = True
    # an existing run folder is replaced only when true
    overwrite: bool = False


class CacheConfig(_Strict):
    # keep features, signals and fold models on disk between runs (keyed by their content)
    enabled: bool = True
    # cache folder (null: $ADMF_DASK_CACHE, else the user cache folder, e.g. ~/.cache/admf-dask)
    dir: str | None = None
    # size cap ("10GiB", "500MB"); least recently used entries are removed past it
    max_size: str = "10GiB"

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> str:
        from admf_dask.cache.store import parse_size

        parse_size(v)  # ValueError: "not a size ..."
        return str(v)


class PipelineConfig(_Strict):
    # name of the pipeline, shown in outputs
    name: str = "pipeline"
    # market data section
    data: DataConfig = Field(default_factory=DataConfig)
    # feature name -> {kind, params}
    features: dict[str, Any] = Field(default_factory=dict)
    # strategy name -> {kind, params}
    strategies: dict[str, Any] = Field(default_factory=dict)
    # the portfolio grid and its default parameters
    portfolios: PortfoliosConfig = Field(default_factory=PortfoliosConfig)
    # default trading costs
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    # where it runs
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    # what it writes
    output: OutputConfig = Field(default_factory=OutputConfig)
    # the on-disk cache of features, signals and fold models shared by runs
    cache: CacheConfig = Field(default_factory=CacheConfig)
    # psr/dsr, PBO by CSCV and walk-forward selection over the grid (DESIGN §2d)
    research: ResearchConfig = Field(default_factory=ResearchConfig)
    # folder the pipeline file was read from (relative paths resolve against it); not a user key
    base_dir: str | None = Field(None, exclude=True)
