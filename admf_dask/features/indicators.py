"""The built-in indicators: one registered function each (README, pipeline file).

Each works on 2-D ``(time, symbol)`` float64 blocks and names its TA-Lib or pandas twin; the
tests check it against the twin to 1e-8 relative from the twin's first value.

Missing bars (NaN): window indicators give NaN when any bar of their window is missing
(pandas ``rolling(window)``, ``min_periods=window``); ``roc`` and ``returns`` only read the two
end bars. Recursive indicators (``ema``, ``rsi``, ``atr``, ``macd``) skip a missing bar: state
carries through, the bar's value is NaN, i.e. TA-Lib on the symbol's valid bars only. A symbol
that lists late starts like TA-Lib on the series from its first bar.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from admf_dask._lazy import LazyModule
from admf_dask.features.registry import FieldName, register_indicator
from admf_dask.params import ParamError, Params

K = LazyModule("admf_dask.features._kernels")  # numba on first call


def _field() -> Any:
    return Field("close", description="data variable read")


def _window(default: int | None = None, minimum: int = 1) -> Any:
    return Field(... if default is None else default, ge=minimum, description="bars in the window")


class WindowParams(Params):
    """A window (required) over one data field."""

    window: int = _window()
    field: FieldName = _field()


@register_indicator("sma", params=WindowParams, lookback=lambda p: p["window"] - 1)
def sma(x: np.ndarray, *, window: int, offset: int = 0) -> np.ndarray:
    """Simple moving average of ``window`` bars. Twin: ``talib.SMA(x, timeperiod=window)``."""
    return K.sma(x, window, offset)


@register_indicator("ema", params=WindowParams, recursive=True)
def ema(
    x: np.ndarray, *, window: int, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exponential moving average, k = 2/(window+1), seeded with the SMA of the first
    ``window`` bars. Twin: ``talib.EMA(x, timeperiod=window)``.
    """
    return K.ema(x, window, state)


class RSIParams(Params):
    window: int = _window(14, 2)
    field: FieldName = _field()


@register_indicator("rsi", params=RSIParams, recursive=True)
def rsi(
    x: np.ndarray, *, window: int = 14, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Wilder's RSI (0..100), seeded with the plain average of the first ``window`` changes.
    Twin: ``talib.RSI(x, timeperiod=window)`` with TA-Lib's default settings (unstable period 0,
    default compatibility).
    """
    return K.rsi(x, window, state)


class ATRParams(Params):
    window: int = _window(14)


@register_indicator("atr", params=ATRParams, inputs=("high", "low", "close"), recursive=True)
def atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    window: int = 14,
    state: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilder's average true range, seeded with the mean of the first ``window`` true ranges.
    Twin: ``talib.ATR(high, low, close, timeperiod=window)``. A bar is missing when any of its
    high, low, close is NaN.
    """
    return K.atr(high, low, close, window, state)


class MACDParams(Params):
    fast: int = Field(12, ge=2, description="fast EMA period")
    slow: int = Field(26, ge=2, description="slow EMA period")
    signal: int = Field(9, ge=1, description="signal EMA period")
    field: FieldName = _field()

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MACDParams:
        if self.fast >= self.slow:
            raise ParamError(
                "fast",
                f"fast ({self.fast}) must be shorter than slow ({self.slow})",
                "swap them or pick fast < slow",
            )
        return self


@register_indicator("macd", params=MACDParams, outputs=("macd", "signal", "hist"), recursive=True)
def macd(
    x: np.ndarray,
    *,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    state: np.ndarray | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram. As TA-Lib, the fast
    EMA is seeded on the ``fast`` bars ending where the slow seed ends, so both start on the
    same bar; all three outputs start at bar ``slow + signal - 2``.
    Twin: ``talib.MACD(x, fastperiod=fast, slowperiod=slow, signalperiod=signal)``.
    """
    return K.macd(x, fast, slow, signal, state)


class BBandsParams(Params):
    window: int = _window(20)
    k: float = Field(2.0, ge=0, description="band width in standard deviations")
    field: FieldName = _field()


@register_indicator(
    "bbands",
    params=BBandsParams,
    outputs=("upper", "middle", "lower"),
    lookback=lambda p: p["window"] - 1,
)
def bbands(
    x: np.ndarray, *, window: int = 20, k: float = 2.0, offset: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands: SMA ± k population standard deviations (ddof 0).
    Twin: ``talib.BBANDS(x, timeperiod=window, nbdevup=k, nbdevdn=k, matype=0)``.
    """
    return K.bbands(x, window, k, offset)


@register_indicator("roc", params=WindowParams, lookback=lambda p: p["window"])
def roc(x: np.ndarray, *, window: int, offset: int = 0) -> np.ndarray:
    """Rate of change as a fraction, (x[t] - x[t-w]) / x[t-w] (a zero base gives 0).
    Twin: ``talib.ROCP(x, timeperiod=window)``.
    """
    return K.roc(x, window)


class VolatilityParams(Params):
    window: int = _window(20, 2)
    periods_per_year: float | None = Field(
        None,
        ge=1e-9,
        description="bars per year (null: from the data's frequency, 252 for daily bars)",
    )
    field: FieldName = _field()


@register_indicator(
    "volatility",
    params=VolatilityParams,
    lookback=lambda p: p["window"],
)
def volatility(
    x: np.ndarray, *, window: int = 20, periods_per_year: float | None = None, offset: int = 0
) -> np.ndarray:
    """Annualized volatility: sample std (ddof 1) of the last ``window`` log returns times
    sqrt(periods_per_year) (None: 252, daily; the feature stage passes the data's,
    `admf_dask.data.calendar.periods_per_year`). Twin (pandas):
    ``np.log(s / s.shift(1)).rolling(window).std() * np.sqrt(periods_per_year)``.
    """
    from admf_dask.data.calendar import periods_per_year as resolve

    return K.volatility(x, window, resolve(periods_per_year), offset)


class ZScoreParams(Params):
    window: int = _window(20, 2)
    field: FieldName = _field()


@register_indicator("zscore", params=ZScoreParams, lookback=lambda p: p["window"] - 1)
def zscore(x: np.ndarray, *, window: int = 20, offset: int = 0) -> np.ndarray:
    """(x - rolling mean) / rolling sample std (ddof 1); a flat window (std 0) gives 0.
    Twin (pandas): ``(s - s.rolling(window).mean()) / s.rolling(window).std()``.
    """
    return K.zscore(x, window, offset)


class DonchianParams(Params):
    window: int = _window(20)


@register_indicator(
    "donchian",
    params=DonchianParams,
    inputs=("high", "low"),
    outputs=("high", "low"),
    lookback=lambda p: p["window"] - 1,
)
def donchian(
    high: np.ndarray, low: np.ndarray, *, window: int = 20, offset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Donchian channel: highest high and lowest low of the last ``window`` bars, this bar
    included. Twins: ``talib.MAX(high, window)``, ``talib.MIN(low, window)`` (pandas
    ``rolling(window).max()/.min()``).
    """
    return K.rolling_max(high, window, offset), K.rolling_min(low, window, offset)


class ReturnsParams(Params):
    window: int = _window(1)
    field: FieldName = _field()


@register_indicator("returns", params=ReturnsParams, lookback=lambda p: p["window"])
def returns(x: np.ndarray, *, window: int = 1, offset: int = 0) -> np.ndarray:
    """Simple return over ``window`` bars, x[t] / x[t-w] - 1.
    Twin (pandas): ``s.pct_change(window)`` (no fill of missing bars).
    """
    return K.returns(x, window)


class RankParams(Params):
    """A cross-sectional rank of ``input`` (a feature or data field, required)."""

    ascending: bool = Field(True, description="true: the smallest value ranks 0; false: 1")


@register_indicator("rank", params=RankParams, inputs=("close",), cross_sectional=True)
def rank(
    x: np.ndarray, universe: np.ndarray | None = None, *, ascending: bool = True, offset: int = 0
) -> np.ndarray:
    """Rank across the symbols in the universe at each bar, ``(r - 1) / (n - 1)`` with r the
    1-based average rank among the n symbols with a finite input (n = 1 gives 0.5).
    Twin (pandas): ``(df.rank(axis=1, ascending=ascending) - 1) / (df.count(axis=1) - 1)``.
    """
    return K.cs_rank(x, universe, ascending)


class CSZScoreParams(Params):
    """A cross-sectional z-score of ``input`` (a feature or data field, required)."""


@register_indicator("cs_zscore", params=CSZScoreParams, inputs=("close",), cross_sectional=True)
def cs_zscore(x: np.ndarray, universe: np.ndarray | None = None, *, offset: int = 0) -> np.ndarray:
    """(x - mean) / std (ddof 0) across the symbols in the universe with a finite input at each
    bar; NaN when fewer than 2 or std = 0.
    Twin (pandas): ``df.sub(df.mean(axis=1), axis=0).div(df.std(axis=1, ddof=0), axis=0)``.
    """
    return K.cs_zscore(x, universe)
