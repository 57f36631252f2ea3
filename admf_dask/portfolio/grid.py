"""Grid expansion: the ``portfolios`` section of a pipeline → one flat parameter row per portfolio.

Portfolio *i* is the *i*-th combination of `itertools.product` over the grid keys in the order
written (README, pipeline file). Each parameter comes from the grid value, else the scalar in ``portfolios``,
else (costs) ``execution``; ``position_weight`` null means ``1/n_symbols``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.portfolio import enums as K  # the layouts only: no numba in the client

if TYPE_CHECKING:
    # the configs are imported where a grid is expanded: the engine's tasks import this module
    # without pydantic (a tenth of a second of every worker's start, docs/ARCHITECTURE.md)
    from admf_dask.config.models import ExecutionConfig, PortfoliosConfig

FLOAT_PARAMS: tuple[str, ...] = (
    "position_weight",
    "target_vol",
    "max_position",
    "max_gross",
    "stop_loss",
    "max_drawdown",
    "rebalance_band",
    "commission",
    "commission_fixed",
    "slippage_bps",
    "take_profit",
    "trailing_stop",
)
#: integer parameters (null: 0 = off) and exit_on (1: intrabar)
INT_PARAMS: tuple[str, ...] = ("max_holding", "max_positions")
_FCOL = {
    "position_weight": K.F_POSITION_WEIGHT,
    "target_vol": K.F_TARGET_VOL,
    "max_position": K.F_MAX_POSITION,
    "max_gross": K.F_MAX_GROSS,
    "stop_loss": K.F_STOP_LOSS,
    "max_drawdown": K.F_MAX_DRAWDOWN,
    "rebalance_band": K.F_BAND,
    "commission": K.F_COMMISSION,
    "commission_fixed": K.F_COMMISSION_FIXED,
    "slippage_bps": K.F_SLIPPAGE_BPS,
    "take_profit": K.F_TAKE_PROFIT,
    "trailing_stop": K.F_TRAILING_STOP,
}
_COSTS = ("commission", "commission_fixed", "slippage_bps")

#: grid keys whose ``portfolio`` coordinate needs another name (the metric max_drawdown exists)
COORD_NAMES: dict[str, str] = {"max_drawdown": "max_drawdown_limit"}


def grid_coord_name(key: str) -> str:
    """Name of the ``portfolio`` coordinate of a grid key in results.zarr.

    The same as the key, except ``max_drawdown`` (the halt limit), which becomes
    ``max_drawdown_limit`` so as not to collide with the ``max_drawdown`` metric.
    """
    return COORD_NAMES.get(key, key)


@dataclass(frozen=True, eq=False)
class PortfolioBook:
    """All portfolios of a run as flat arrays, one entry per portfolio id 0…N−1.

    Attributes
    ----------
    strategy_names : tuple of str
        The K strategies, in the order of the columns of ``strategy_weights``.
    strategy_weights : ndarray float64 (N, K)
        W of docs/ACCOUNTING.md: the signal of portfolio i is ``clip(sum_k W[i, k] * S[k], -1, 1)``.
    strategy_label : ndarray str (N,)
        Readable mix: ``"trend"`` or ``"trend:0.5+mine:0.5"``.
    sizing, vol_feature : ndarray str (N,)
        ``"fixed"`` / ``"vol_target"``; the volatility feature (``""``: none).
    position_weight, target_vol, max_position, max_gross, stop_loss, max_drawdown, \
rebalance_band, commission, commission_fixed, slippage_bps, take_profit, trailing_stop : \
ndarray float64 (N,)
        Resolved parameters (null stop_loss / max_drawdown / take_profit / trailing_stop are
        nan: off).
    max_holding, max_positions : ndarray int64 (N,)
        0: off.
    exit_on : ndarray str (N,)
        ``"close"`` / ``"intrabar"`` (docs/ACCOUNTING.md, exits).
    allow_short : ndarray bool (N,)
    grid_keys : tuple of str
        The grid keys, in the order written (each becomes a ``portfolio`` coordinate).
    capital, periods_per_year : float
    batch_size : int
        Portfolios per batch from the config.
    n_symbols : int
    """

    strategy_names: tuple[str, ...]
    strategy_weights: np.ndarray
    strategy_label: np.ndarray
    sizing: np.ndarray
    vol_feature: np.ndarray
    position_weight: np.ndarray
    target_vol: np.ndarray
    max_position: np.ndarray
    max_gross: np.ndarray
    stop_loss: np.ndarray
    max_drawdown: np.ndarray
    rebalance_band: np.ndarray
    commission: np.ndarray
    commission_fixed: np.ndarray
    slippage_bps: np.ndarray
    take_profit: np.ndarray
    trailing_stop: np.ndarray
    max_holding: np.ndarray
    exit_on: np.ndarray
    max_positions: np.ndarray
    allow_short: np.ndarray
    grid_keys: tuple[str, ...]
    capital: float
    periods_per_year: float
    batch_size: int
    n_symbols: int

    # -- sizes and derived arrays -------------------------------------------------------------
    @property
    def n_portfolios(self) -> int:
        """N, the number of portfolios."""
        return int(self.strategy_weights.shape[0])

    def __len__(self) -> int:
        return self.n_portfolios

    @cached_property
    def vol_features(self) -> tuple[str, ...]:
        """Volatility features used by vol_target portfolios, in order of first use."""
        used = self.vol_feature[self.sizing == "vol_target"]
        return tuple(dict.fromkeys(str(v) for v in used))

    @cached_property
    def vol_index(self) -> np.ndarray:
        """int64 (N,): row of `vol_features` per portfolio, -1 for fixed sizing."""
        pos = {name: i for i, name in enumerate(self.vol_features)}
        out = np.full(self.n_portfolios, -1, dtype=np.int64)
        for i in np.flatnonzero(self.sizing == "vol_target"):
            out[i] = pos[str(self.vol_feature[i])]
        return out

    @cached_property
    def _mixes(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n_portfolios == 0:
            return np.zeros((0, len(self.strategy_names))), np.zeros(0, dtype=np.int64)
        mixes, index = np.unique(self.strategy_weights, axis=0, return_inverse=True)
        return np.ascontiguousarray(mixes), index.reshape(-1).astype(np.int64)

    @property
    def mixes(self) -> np.ndarray:
        """float64 (M, K): the distinct rows of ``strategy_weights``."""
        return self._mixes[0]

    @property
    def mix_index(self) -> np.ndarray:
        """int64 (N,): row of `mixes` per portfolio."""
        return self._mixes[1]

    def fparams(self, sl: slice = slice(None)) -> np.ndarray:
        """float64 (P, N_FPARAMS): packed float parameters of the kernel for ``sl``."""
        idx = np.arange(self.n_portfolios)[sl]
        out = np.empty((idx.size, K.N_FPARAMS))
        for name, col in _FCOL.items():
            out[:, col] = getattr(self, name)[idx]
        return out

    def iparams(self, sl: slice = slice(None)) -> np.ndarray:
        """int64 (P, N_IPARAMS): packed integer parameters of the kernel for ``sl``."""
        idx = np.arange(self.n_portfolios)[sl]
        out = np.empty((idx.size, K.N_IPARAMS), dtype=np.int64)
        out[:, K.I_MIX] = self.mix_index[idx]
        out[:, K.I_VOL] = self.vol_index[idx]
        out[:, K.I_SHORT] = self.allow_short[idx]
        out[:, K.I_MAX_HOLDING] = self.max_holding[idx]
        out[:, K.I_INTRABAR] = self.exit_on[idx] == "intrabar"
        out[:, K.I_MAX_POSITIONS] = self.max_positions[idx]
        return out

    @property
    def intrabar(self) -> bool:
        """Whether some portfolio tests its exits intrabar (the bars' high and low are needed)."""
        return bool(np.any(self.exit_on == "intrabar"))

    # -- batches and labels -------------------------------------------------------------------
    def batches(self, batch_size: int | None = None) -> list[slice]:
        """Consecutive slices of at most ``batch_size`` portfolios (default: the config's)."""
        bs = int(batch_size or self.batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be at least 1, got {bs}")
        n = self.n_portfolios
        return [slice(a, min(a + bs, n)) for a in range(0, n, bs)]

    def param(self, key: str) -> np.ndarray:
        """The (N,) values of a grid key (``strategy``: the readable label)."""
        if key == "strategy":
            return self.strategy_label
        return getattr(self, key)

    def coords(self) -> dict[str, np.ndarray]:
        """The grid keys as ``portfolio`` coordinates, in the order written.

        Keys are `grid_coord_name` of the grid keys; values are the resolved parameters (the
        strategy as its readable label; null stop_loss / max_drawdown as nan).
        """
        return {grid_coord_name(key): self.param(key) for key in self.grid_keys}

    def dataset(
        self,
        sl: slice = slice(None),
        symbols: Iterable[str] | None = None,
        state: Any = None,
    ):
        """One batch as an ``xr.Dataset`` (docs/ARCHITECTURE.md).

        Parameters
        ----------
        sl : slice
            The portfolios (default all).
        symbols : iterable of str, optional
            Symbol labels (default ``"0"…``).
        state : BatchState, optional
            State to show (default the start state).

        Returns
        -------
        xr.Dataset
            Parameters (portfolio), ``strategy_weights`` (portfolio, strategy), state ``cash``
            (portfolio) and ``positions`` (portfolio, symbol).
        """
        import xarray as xr

        from admf_dask.portfolio.batch import BatchState

        idx = np.arange(self.n_portfolios)[sl]
        syms = [str(s) for s in symbols] if symbols is not None else None
        syms = syms or [str(i) for i in range(self.n_symbols)]
        if state is None:
            state = BatchState.new(idx.size, len(syms), self.capital)
        data = {
            name: ("portfolio", getattr(self, name)[idx])
            for name in (
                "sizing",
                "vol_feature",
                *FLOAT_PARAMS,
                *INT_PARAMS,
                "exit_on",
                "allow_short",
            )
        }
        data["strategy_weights"] = (("portfolio", "strategy"), self.strategy_weights[idx])
        data["cash"] = ("portfolio", state.cash)
        data["positions"] = (("portfolio", "symbol"), state.q)
        coords = {
            "portfolio": idx.astype(np.int64),
            "strategy": list(self.strategy_names),
            "symbol": syms,
            "strategy_label": ("portfolio", self.strategy_label[idx]),
        }
        return xr.Dataset(data, coords=coords, attrs={"capital": self.capital})


def _label(mix: Mapping[str, float] | str) -> str:
    if isinstance(mix, str):
        return mix
    return "+".join(f"{k}:{v:g}" for k, v in mix.items())


def _check_strategy(value: Any, names: list[str], where: str) -> dict[str, float]:
    """A grid/scalar strategy value → ``{name: weight}``, or a ConfigError."""
    fix = "use one of: " + ", ".join(names) if names else "define a strategy under strategies"
    if isinstance(value, str):
        mix = {value: 1.0}
    elif isinstance(value, Mapping) and value:
        mix = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(
                    where, f"weight of strategy '{k}' must be a finite number, got {v!r}"
                )
            mix[str(k)] = float(v)
    else:
        raise ConfigError(
            where,
            f"a strategy is a name or a {{name: weight}} mapping, got {value!r}",
            fix,
        )
    for k in mix:
        if k not in names:
            raise ConfigError(where, f"unknown strategy '{k}'{did_you_mean(k, names)}", fix)
    return mix


def expand_grid(
    portfolios: PortfoliosConfig,
    execution: ExecutionConfig,
    strategy_names: list[str],
    n_symbols: int,
    *,
    feature_names: Iterable[str] | None = None,
) -> PortfolioBook:
    """Expand the ``portfolios`` grid into one parameter row per portfolio.

    Parameters
    ----------
    portfolios : PortfoliosConfig
        Scalars (defaults) and ``grid`` (lists; cartesian product in the order written).
    execution : ExecutionConfig
        Default costs, used where ``portfolios`` leaves commission / slippage null.
    strategy_names : list of str
        The strategies (the ``strategy`` coordinate of the signals), in signal order.
    n_symbols : int
        Number of symbols (``position_weight`` null means ``1/n_symbols``).
    feature_names : iterable of str, optional
        Available features; when given, every ``vol_feature`` used must be one of them.

    Returns
    -------
    PortfolioBook

    Raises
    ------
    ConfigError
        Unknown strategy name, vol_target sizing without (or with an unknown) vol_feature, no
        strategies at all.
    """
    from admf_dask.config.models import PortfolioParams
    from admf_dask.data.calendar import periods_per_year as resolve_periods_per_year

    names = [str(s) for s in strategy_names]
    if not names:
        raise ConfigError("strategies", "no strategies to trade", "define at least one strategy")
    if n_symbols < 1:
        raise ValueError(f"n_symbols must be at least 1, got {n_symbols}")
    grid = dict(portfolios.grid)
    keys = tuple(grid)

    # grid values, coerced like the scalars they replace
    values: list[list[Any]] = []
    for key in keys:
        if key == "strategy":
            values.append(
                [_check_strategy(v, names, "portfolios.grid.strategy") for v in grid[key]]
            )
        else:
            values.append(
                [getattr(PortfolioParams.model_validate({key: v}), key) for v in grid[key]]
            )
    strategy_labels = [_label(v) for v in grid.get("strategy", [])]

    if "strategy" not in grid:
        if portfolios.strategy is None:
            default_mix = {n: 1.0 / len(names) for n in names}
            default_label = names[0] if len(names) == 1 else _label(default_mix)
        else:
            default_mix = _check_strategy(portfolios.strategy, names, "portfolios.strategy")
            default_label = _label(portfolios.strategy)

    combos = list(itertools.product(*(range(len(v)) for v in values)))
    n = len(combos)
    kpos = {k: i for i, k in enumerate(names)}
    weights = np.zeros((n, len(names)))
    label = np.empty(n, dtype=object)
    cols: dict[str, list[Any]] = {k: [] for k in PortfolioParams.model_fields}
    for i, combo in enumerate(combos):
        chosen = {key: values[j][c] for j, (key, c) in enumerate(zip(keys, combo, strict=True))}
        if "strategy" in chosen:
            mix = chosen.pop("strategy")
            label[i] = strategy_labels[combo[keys.index("strategy")]]
        else:
            mix, label[i] = default_mix, default_label
        for k, v in mix.items():
            weights[i, kpos[k]] += v
        for k in cols:
            cols[k].append(chosen[k] if k in chosen else getattr(portfolios, k))

    def where(key: str) -> str:
        return f"portfolios.grid.{key}" if key in grid else f"portfolios.{key}"

    sizing = np.array(cols["sizing"], dtype=object).astype(str)
    vol_feature = np.array(["" if v is None else str(v) for v in cols["vol_feature"]])
    vt = np.flatnonzero(sizing == "vol_target")
    missing = vt[vol_feature[vt] == ""] if vt.size else vt
    if missing.size:
        raise ConfigError(
            where("vol_feature"),
            f"sizing 'vol_target' needs a volatility feature (portfolio {int(missing[0])} has "
            "none)",
            "set portfolios.vol_feature to a feature name, e.g. a 'volatility' feature",
        )
    if feature_names is not None:
        known = [str(f) for f in feature_names]
        for name in dict.fromkeys(vol_feature[vt]):
            if name not in known:
                raise ConfigError(
                    where("vol_feature"),
                    f"unknown feature '{name}'{did_you_mean(name, known)}",
                    "use a feature defined under features",
                )

    farr: dict[str, np.ndarray] = {}
    for k in FLOAT_PARAMS:
        vals = cols[k]
        if k in _COSTS:
            vals = [getattr(execution, k) if v is None else v for v in vals]
        elif k == "position_weight":
            vals = [1.0 / n_symbols if v is None else v for v in vals]
        farr[k] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
    for k in INT_PARAMS:
        farr[k] = np.array([0 if v is None else int(v) for v in cols[k]], dtype=np.int64)
    return PortfolioBook(
        strategy_names=tuple(names),
        strategy_weights=weights,
        strategy_label=label.astype(str) if n else np.zeros(0, dtype=str),
        sizing=sizing,
        vol_feature=vol_feature,
        exit_on=np.array(cols["exit_on"], dtype=object).astype(str),
        allow_short=np.array(cols["allow_short"], dtype=np.bool_),
        grid_keys=keys,
        capital=float(portfolios.capital),
        periods_per_year=resolve_periods_per_year(portfolios.periods_per_year),  # null: daily
        batch_size=int(portfolios.batch_size),
        n_symbols=int(n_symbols),
        **farr,
    )


# --------------------------------------------------------------------------------------------
# duplicates: portfolios whose effective parameters are equal
# --------------------------------------------------------------------------------------------


def _never_trades(book: PortfolioBook) -> np.ndarray:
    """bool (N,): portfolios that can never place an order (their equity stays at capital).

    All strategy weights 0 (u = 0), or a rebalance band at or above the largest possible
    |w| (the weight cap: ``min(max_position, position_weight)`` for fixed sizing,
    ``max_position`` for vol_target): starting from ``w_set = 0`` no target moves past the band.
    """
    no_weight = ~np.any(book.strategy_weights != 0.0, axis=1)
    return no_weight | (_weight_cap(book) <= book.rebalance_band + 1e-12)


def _weight_cap(book: PortfolioBook) -> np.ndarray:
    """float64 (N,): the largest |w| a portfolio can set (docs/ACCOUNTING.md step 4; |u| <= 1)."""
    fixed = book.sizing == "fixed"
    return np.where(fixed, np.minimum(book.max_position, book.position_weight), book.max_position)


def effective_params(book: PortfolioBook) -> np.ndarray:
    """float64 (N, C): one row per portfolio of the parameters that can change its results.

    Two portfolios with equal rows give identical equity, orders and metrics (docs/ACCOUNTING.md):

    * sizing ``fixed`` ignores ``target_vol`` and ``vol_feature``, and ``max_position`` acts as
      ``min(max_position, position_weight)`` (``|u * position_weight| <= position_weight``);
    * sizing ``vol_target`` ignores ``position_weight``;
    * ``max_gross`` has no effect at or above ``n_symbols`` times the largest |w| (a margin of
      1e-9 covers the rounding of the sum);
    * null costs and ``position_weight`` are already resolved in the book (null commission is
      ``execution.commission``; null position_weight is ``1/n_symbols``);

    * ``exit_on`` has no effect without stop_loss, trailing_stop and take_profit (the time rule
      runs at the close in both modes);
    * ``max_positions`` at or above ``n_symbols`` has no effect;
    * a portfolio that can never trade (see `_never_trades`) equals every other such portfolio.

    Everything else counts as given: strategy weights, allow_short, stop_loss, max_drawdown,
    rebalance_band, commission, commission_fixed, slippage_bps, take_profit, trailing_stop,
    max_holding.
    """
    n = book.n_portfolios
    fixed = book.sizing == "fixed"
    cap = _weight_cap(book)
    exit_levels = np.vstack([book.stop_loss, book.trailing_stop, book.take_profit])
    gross_bound = book.n_symbols * cap * (1.0 + 1e-9)
    cols = [
        book.strategy_weights,
        fixed.astype(np.float64),
        np.where(fixed, book.position_weight, book.target_vol),
        np.where(fixed, -1.0, book.vol_index.astype(np.float64)),
        cap,
        np.where(book.max_gross >= gross_bound, np.inf, book.max_gross),
        book.allow_short.astype(np.float64),
        book.stop_loss,
        book.max_drawdown,
        book.rebalance_band,
        book.commission,
        book.commission_fixed,
        book.slippage_bps,
        book.take_profit,
        book.trailing_stop,
        book.max_holding,
        (book.exit_on == "intrabar") & ~np.isnan(exit_levels).all(axis=0),
        np.where(book.max_positions >= book.n_symbols, 0, book.max_positions),
    ]
    rows = np.column_stack([np.asarray(c, np.float64).reshape(n, -1) for c in cols])
    rows = np.where(np.isnan(rows), -1.0, rows) + 0.0  # null = off; + 0.0 makes -0.0 equal 0.0
    flat = _never_trades(book)
    rows[flat] = 0.0
    return np.column_stack([rows, flat.astype(np.float64)])


def effective_groups(book: PortfolioBook) -> np.ndarray:
    """int64 (N,): for each portfolio, the lowest id with the same `effective_params`.

    A portfolio is its group's representative where ``groups[i] == i``; the others duplicate
    it (identical results). Portfolio ids are unchanged.
    """
    n = book.n_portfolios
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(
        effective_params(book), axis=0, return_index=True, return_inverse=True
    )
    return first[inverse.reshape(-1)].astype(np.int64)


def _duplicate_reason(book: PortfolioBook, key: str, i: int, flat: bool) -> str:
    """Why grid key ``key`` can differ between portfolio ``i`` and its representative."""
    if flat:
        return (
            "portfolios that can never trade (rebalance_band at or above the largest weight, "
            "or zero strategy weights) are all alike"
        )
    sizing = str(book.sizing[i])
    if key in ("target_vol", "vol_feature"):
        return f"{key} has no effect with sizing fixed"
    if key == "position_weight":
        if sizing == "vol_target":
            return "position_weight has no effect with sizing vol_target"
        return "position_weight null is 1/n_symbols"
    if key == "max_position":
        return "max_position at or above position_weight has no effect with sizing fixed"
    if key == "max_gross":
        return "max_gross at or above n_symbols × the largest weight has no effect"
    if key in _COSTS:
        return f"{key} null is execution.{key}"
    if key == "strategy":
        return "strategy mixes with the same weights"
    if key == "exit_on":
        return "exit_on has no effect without stop_loss, trailing_stop or take_profit"
    if key == "max_positions":
        return "max_positions at or above the number of symbols has no effect"
    return f"{key} has no effect here"


def duplicate_note(
    book: PortfolioBook, grid: Mapping[str, Iterable[Any]], groups: np.ndarray | None = None
) -> str | None:
    """The warning line about duplicate portfolios, or None when all are distinct.

    Parameters
    ----------
    book : PortfolioBook
    grid : mapping
        ``portfolios.grid`` as written (its list lengths give each portfolio's combination).
    groups : ndarray, optional
        `effective_groups` of the book (computed when None).

    Returns
    -------
    str or None
        E.g. ``"800 of 2,000 portfolios duplicate another's effective parameters (target_vol
        has no effect with sizing fixed); the report lists one of each"``.
    """
    groups = effective_groups(book) if groups is None else groups
    n = book.n_portfolios
    dup = np.flatnonzero(groups != np.arange(n))
    if dup.size == 0:
        return None
    rep = groups[dup]
    flat = _never_trades(book)
    shape = tuple(len(list(grid[k])) for k in book.grid_keys)
    reasons: dict[str, int] = {}
    if shape and int(np.prod(shape)) == n:
        digits = np.unravel_index(np.arange(n), shape)  # itertools.product order = C order
        for key, d in zip(book.grid_keys, digits, strict=True):
            differs = dup[d[dup] != d[rep]]
            if differs.size:
                i = int(differs[0])
                text = _duplicate_reason(book, key, i, bool(flat[i]))
                reasons[text] = reasons.get(text, 0) + int(differs.size)
    why = sorted(reasons, key=lambda r: -reasons[r])[:3]
    return (
        f"{dup.size:,} of {n:,} portfolios duplicate another's effective parameters"
        + (f" ({'; '.join(why)})" if why else "")
        + "; the report lists one of each"
    )


def run_groups(
    manifest: Mapping[str, Any], strategy_names: Iterable[str], n_symbols: int, n_portfolios: int
) -> np.ndarray | None:
    """`effective_groups` of a finished run, from the resolved config in its run.json.

    Returns None when the config cannot be expanded again (an older or hand-edited run.json) or
    does not give ``n_portfolios`` portfolios: then every portfolio counts as distinct.
    """
    from admf_dask.config.models import ExecutionConfig, PortfoliosConfig

    cfg = manifest.get("config") or {}
    try:
        book = expand_grid(
            PortfoliosConfig.model_validate(cfg.get("portfolios") or {}),
            ExecutionConfig.model_validate(cfg.get("execution") or {}),
            [str(s) for s in strategy_names],
            int(n_symbols),
        )
    except (ValueError, TypeError, ConfigError):  # pydantic's ValidationError is a ValueError
        return None
    if book.n_portfolios != n_portfolios:
        return None
    return effective_groups(book)
