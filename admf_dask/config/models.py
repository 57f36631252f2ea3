"""Pydantic models of the pipeline file (README, pipeline file). Unknown keys are errors everywhere; every
field has a description (shown by the pipeline file's JSON schema, ``admf-dask schema``).

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
    StrictBool,
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


def check_format(fmt: str) -> str:
    """Return `fmt` if it is a usable strftime format for dates, else raise ValueError."""
    if not isinstance(fmt, str) or "%" not in fmt:
        raise ValueError(f"date_format {fmt!r} is not a strftime format; write e.g. '%d/%m/%Y'")
    sample = _dt.datetime(2001, 2, 13, 14, 15, 16, tzinfo=_dt.UTC).strftime(fmt)
    try:
        _dt.datetime.strptime(sample, fmt)
    except ValueError as exc:
        raise ValueError(f"date_format {fmt!r} cannot be read back ({exc})") from None
    return fmt


# Bar frequencies of a day or longer (docs/TIME.md): alias -> canonical name.
_LONG_FREQUENCIES = {"D": "1D", "B": "1B", "W": "1W", "M": "1M", "ME": "1M", "MS": "1M"}
_LONG_FREQUENCIES |= {"Q": "1Q", "QE": "1Q", "QS": "1Q", "Y": "1Y", "YE": "1Y", "A": "1Y"}


def step_name(seconds: int) -> str:
    """The canonical name of an intraday bar step: ``"30s"``, ``"5min"``, ``"1h"``."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


def is_intraday(frequency: str | None) -> bool:
    """Whether a canonical frequency (`check_frequency`) has several bars a day."""
    return frequency is not None and frequency.endswith(("s", "min", "h"))


def check_frequency(text: str) -> str:
    """The canonical bar frequency of a pandas offset alias (``5min``, ``1h``, ``1D``, ``W``...).

    Intraday steps are whole seconds shorter than a day, named by `step_name`; longer bars are
    ``1D``, ``1B`` (business days), ``1W``, ``1M``, ``1Q`` or ``1Y``. Raises ValueError otherwise.
    """
    import pandas as pd

    s = str(text).strip()
    key = s[1:] if s[:1] == "1" and s[1:] in _LONG_FREQUENCIES else s
    if key in _LONG_FREQUENCIES:
        return _LONG_FREQUENCIES[key]
    try:
        step = pd.Timedelta(s)
    except (ValueError, TypeError):
        step = None
    hint = "write a pandas offset alias such as 1min, 5min, 1h, 1D, 1B, 1W or 1M"
    if step is None or pd.isna(step) or step <= pd.Timedelta(0):
        raise ValueError(f"frequency '{text}' is not a bar frequency: {hint}")
    if step == pd.Timedelta(days=1):
        return "1D"
    if step == pd.Timedelta(days=7):
        return "1W"
    if step > pd.Timedelta(days=1) or step % pd.Timedelta(seconds=1):
        raise ValueError(
            f"frequency '{text}' is not supported: intraday steps are whole seconds under a "
            "day, longer bars are 1D, 1B, 1W, 1M, 1Q or 1Y"
        )
    return step_name(int(step // pd.Timedelta(seconds=1)))


def check_session(text: str) -> str:
    """A trading session ``"HH:MM-HH:MM"`` (start before end, within one day), canonicalized.

    Raises ValueError naming the expected form otherwise.
    """
    import re

    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(text))
    hint = 'write "HH:MM-HH:MM" in exchange time, e.g. "09:30-16:00"'
    if m is None:
        raise ValueError(f"'{text}' is not a session: {hint}")
    h0, m0, h1, m1 = (int(g) for g in m.groups())
    start, end = h0 * 60 + m0, h1 * 60 + m1
    if m0 > 59 or m1 > 59 or h0 > 23 or end > 24 * 60:
        raise ValueError(f"'{text}' is not a time of day range: {hint}")
    if start >= end:
        raise ValueError(
            f"session '{text}' does not start before it ends (sessions over midnight are not "
            f"supported): {hint}"
        )
    return f"{h0:02d}:{m0:02d}-{h1:02d}:{m1:02d}"


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
    source: Literal["synthetic", "csv", "parquet", "zarr", "bokeh_stocks"] = Field(
        "synthetic",
        description=(
            "where the bars come from; synthetic is the embedded seeded market (no files, no "
            "network)"
        ),
    )
    path: str | None = Field(
        None,
        description=(
            "file or folder for csv / parquet / zarr, resolved relative to the pipeline file"
        ),
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "options of the fsspec filesystem when path is a URL (s3://bucket/prices.zarr), e.g. "
            "{endpoint_url: ..., anon: true}; empty: credentials from the environment"
        ),
    )
    symbols: int | list[str] | None = Field(
        None,
        description="synthetic: how many symbols (int); any source: a list selects these symbols",
    )
    bars: int = Field(
        2520, ge=2, description="synthetic: number of bars (business days, or at data.frequency)"
    )
    seed: int = Field(7, description="synthetic: random seed (same seed, same market)")
    start: IsoDate | None = Field(
        None,
        description=(
            "first date kept (inclusive; ISO dates or datetimes, quoted or not); null keeps all"
        ),
    )
    end: IsoDate | None = Field(
        None, description="last date kept (inclusive, as start); null keeps all"
    )
    date_format: str | None = Field(
        None,
        description=(
            'csv / parquet: strftime format of text dates, e.g. "%d/%m/%Y" (null: inferred from '
            "all values of the column, one format for the whole column; ambiguous throughout is "
            "an error)"
        ),
    )
    columns: dict[str, str] | None = Field(
        None,
        description=(
            "csv / parquet: the file's column names, {time: Date, symbol: Ticker, close: Last, "
            "...} (columns left out are found by their usual names, case-insensitively)"
        ),
    )
    chunks: ChunksConfig = Field(
        default_factory=ChunksConfig,
        description="dask chunking of the time axis (symbols are never split)",
    )
    adjust: bool = Field(
        True, description="bokeh_stocks: split-adjust OHLC with adj_close (false keeps raw prices)"
    )
    missing: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="synthetic: fraction of bars randomly missing (NaN), to exercise gaps",
    )
    late_listed: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="synthetic: fraction of symbols that list late (history starts partway)",
    )
    delisted: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "synthetic: fraction of symbols that delist (history ends partway, NaN after)"
        ),
    )
    calendar_start: IsoDate = Field(
        "2010-01-04", description="synthetic: first date of the generated business-day calendar"
    )
    frequency: str | None = Field(
        None,
        description=(
            "bar frequency, a pandas offset alias: 1min, 5min, 15min, 1h (intraday), 1D / 1B "
            "(daily), 1W, 1M (null: daily for synthetic, inferred from the file's times "
            "otherwise; a file that disagrees is an error)"
        ),
    )
    session: str | None = Field(
        None,
        description=(
            'intraday only: trading hours "HH:MM-HH:MM", bars labelled by their start time '
            'inside it (synthetic default "09:30-16:00"; files: bars outside it are an error)'
        ),
    )
    universe: str | None = Field(
        None,
        description=(
            "CSV or Parquet table symbol, start, end (end empty: still listed): a symbol is in "
            "the universe from start to end inclusive; outside it its signals are 0 and "
            "cross-sectional features leave it out (null: every symbol always in)"
        ),
    )

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, v: str | None) -> str | None:
        return None if v is None else check_format(v)

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, v: str | None) -> str | None:
        return None if v is None else check_frequency(v)

    @field_validator("session")
    @classmethod
    def _session(cls, v: str | None) -> str | None:
        return None if v is None else check_session(v)

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
        if self.session is not None and not is_intraday(self.frequency):
            if self.frequency is not None or self.source == "synthetic":
                raise ValueError(
                    f"session applies to intraday bars only, not frequency "
                    f"'{self.frequency or '1D'}': remove it or set an intraday frequency (e.g. "
                    "1min)"
                )
        if self.source == "synthetic" and self.frequency in ("1W", "1M", "1Q", "1Y"):
            raise ValueError(
                f"frequency '{self.frequency}': synthetic bars are daily (1D, 1B) or intraday "
                "(e.g. 1min, 1h): change data.frequency"
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

    sizing: Sizing = Field(
        "fixed", description="fixed: w = u*position_weight; vol_target: w = u*target_vol/vol"
    )
    position_weight: float | None = Field(
        None, gt=0, description="weight per unit of signal for fixed sizing (null: 1/n_symbols)"
    )
    target_vol: float = Field(
        0.10, gt=0, description="annualized volatility target per position for vol_target sizing"
    )
    vol_feature: str | None = Field(
        None, description="feature holding the annualized volatility used by vol_target sizing"
    )
    max_position: float = Field(1.0, gt=0, description="cap on |weight| per position")
    max_gross: float = Field(
        1.0, gt=0, description="cap on the sum of |weights| (scaled down proportionally above it)"
    )
    allow_short: bool = Field(
        False, description="false: long-only (negative combined signals are flat)"
    )
    stop_loss: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "stop a position when it loses this fraction from its entry price (null: no stop)"
        ),
    )
    max_drawdown: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "halt the portfolio when equity falls this fraction below its peak (null: never)"
        ),
    )
    rebalance_band: float = Field(
        0.0, ge=0, description="re-target a position only when its weight moves more than this"
    )
    commission: float | None = Field(
        None, ge=0, description="proportional commission per fill (null: execution.commission)"
    )
    commission_fixed: float | None = Field(
        None,
        ge=0,
        description="fixed commission per fill in cash (null: execution.commission_fixed)",
    )
    slippage_bps: float | None = Field(
        None,
        ge=0,
        description="slippage in basis points against the fill (null: execution.slippage_bps)",
    )
    take_profit: float | None = Field(
        None,
        gt=0,
        description=(
            "exit when the price gains this fraction from the entry price (null: off; docs/ACCOUNTING.md, exits)"
        ),
    )
    trailing_stop: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="exit when the price falls this fraction from its best since entry (null: off)",
    )
    max_holding: int | None = Field(
        None,
        ge=1,
        strict=True,
        description="exit a position after this many bars, the opening bar counted (null: off)",
    )
    exit_on: Literal["close", "intrabar"] = Field(
        "close",
        description=(
            "when exit levels are tested: at the close (fill at the next open) or intrabar (fill "
            "at the level, from the bar's open, high and low)"
        ),
    )
    max_positions: int | None = Field(
        None,
        ge=1,
        strict=True,
        description=(
            "hold at most this many positions, the strongest |signal| first (null: no limit)"
        ),
    )


PARAM_KEYS: tuple[str, ...] = tuple(PortfolioParams.model_fields)
GRID_KEYS: tuple[str, ...] = ("strategy", *PARAM_KEYS)


class PortfoliosConfig(PortfolioParams):
    capital: float = Field(1_000_000.0, gt=0, description="starting cash of every portfolio")
    batch_size: int = Field(
        500,
        ge=1,
        description=(
            "portfolios per batch at most (one chain of tasks per batch; a smaller grid is split "
            "so that every worker thread runs a batch)"
        ),
    )
    strategy: Any = Field(
        None,
        description=(
            "strategy mix when grid has no 'strategy': a name or {name: weight} (null: equal mix "
            "of all)"
        ),
    )  # validated against the strategies by the loader
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description=(
            "cartesian product of these lists, one portfolio per combination, in the order written"
        ),
    )
    periods_per_year: float | None = Field(
        None,
        gt=0,
        description=(
            "bars per year for annualized metrics (null: from the data's frequency, 252 for "
            "daily bars, 252 x bars per day intraday, 52 weekly, 12 monthly; docs/TIME.md)"
        ),
    )
    benchmark: str | None = Field(
        None,
        description=(
            "a symbol of the data: adds alpha, beta, information_ratio, tracking_error against "
            "its close-to-close returns (null: off)"
        ),
    )  # checked against the data's symbols when the data is loaded

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
    commission: float = Field(
        0.0005,
        ge=0,
        description="proportional commission per fill (0.0005 = 5 bps of traded value)",
    )
    commission_fixed: float = Field(0.0, ge=0, description="fixed commission per fill, in cash")
    slippage_bps: float = Field(
        2.0, ge=0, description="slippage in basis points: buys fill above the open, sells below"
    )


class ClusterConfig(_Strict):
    address: str | None = Field(
        None,
        description=(
            "existing scheduler (tcp://host:port); null starts a LocalCluster sized to this machine"
        ),
    )
    n_workers: int | Literal["auto"] = Field(
        "auto", description='LocalCluster workers ("auto": from cores and memory)'
    )
    threads_per_worker: int | Literal["auto"] = Field(
        "auto", description='threads per worker ("auto": cores / workers)'
    )
    ml_workers: int = Field(
        1, ge=0, description="how many workers carry resource ML (and GPU when CUDA is present)"
    )
    memory_limit: str = Field(
        "auto", description='memory per worker ("auto": 90% of RAM shared out, or e.g. "4GiB")'
    )
    host: str = Field(
        "127.0.0.1", description="interface the scheduler, workers and dashboard listen on"
    )
    dashboard_address: str | None = Field(
        ":0", description='dashboard address (":0" picks a free port; null disables it)'
    )

    @field_validator("n_workers", "threads_per_worker")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be 'auto' or at least 1, got {v}")
        return v


class OutputConfig(_Strict):
    path: str = Field(
        "runs/run",
        description=(
            "run folder (relative paths are relative to the pipeline file's folder's working dir)"
        ),
    )
    save_signals: bool = Field(True, description="write signals.zarr")
    orders: bool = Field(
        True,
        description="write orders.parquet (10,000 portfolios of trend signals make ~1e8 orders)",
    )
    trades: StrictBool = Field(
        True,
        description="write trades.parquet and the trade metrics (true or false)",
    )
    report: bool = Field(True, description="write report.html")
    overwrite: bool = Field(False, description="an existing run folder is replaced only when true")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "options of the fsspec filesystem when path is a URL (s3://, gs://, ...), e.g. "
            "{endpoint_url: ..., key: ..., secret: ...}; empty: credentials from the environment"
        ),
    )


class CacheConfig(_Strict):
    enabled: bool = Field(
        True,
        description=(
            "keep features, signals and fold models on disk between runs (keyed by their content)"
        ),
    )
    dir: str | None = Field(
        None,
        description=(
            "cache folder (null: $ADMF_DASK_CACHE, else the user cache folder, e.g. "
            "~/.cache/admf-dask)"
        ),
    )
    max_size: str = Field(
        "10GiB",
        description='size cap ("10GiB", "500MB"); least recently used entries are removed past it',
    )

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> str:
        from admf_dask.cache.store import parse_size

        parse_size(v)  # ValueError: "not a size ..."
        return str(v)


class PipelineConfig(_Strict):
    name: str = Field("pipeline", description="name of the pipeline, shown in outputs")
    data: DataConfig = Field(default_factory=DataConfig, description="market data section")
    features: dict[str, Any] = Field(
        default_factory=dict, description="feature name -> {kind, params}"
    )
    strategies: dict[str, Any] = Field(
        default_factory=dict, description="strategy name -> {kind, params}"
    )
    portfolios: PortfoliosConfig = Field(
        default_factory=PortfoliosConfig,
        description="the portfolio grid and its default parameters",
    )
    execution: ExecutionConfig = Field(
        default_factory=ExecutionConfig, description="default trading costs"
    )
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="where it runs")
    output: OutputConfig = Field(default_factory=OutputConfig, description="what it writes")
    cache: CacheConfig = Field(
        default_factory=CacheConfig,
        description="the on-disk cache of features, signals and fold models shared by runs",
    )
    research: ResearchConfig = Field(
        default_factory=ResearchConfig,
        description="psr/dsr, PBO by CSCV and walk-forward selection over the grid (docs/RESEARCH.md)",
    )
    base_dir: str | None = Field(
        None,
        exclude=True,
        description=(
            "folder the pipeline file was read from (relative paths resolve against it); not a "
            "user key"
        ),
    )
