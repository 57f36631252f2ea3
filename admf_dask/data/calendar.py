"""Bar calendars: the synthetic market's time axis, bar frequency and bars per year.

One place for what depends on the bar frequency (docs/TIME.md): the synthetic time axis (business
days, or business days × the bars of a session), the frequency of a file's time axis,
``periods_per_year`` and the per-bar volatility scale of the synthetic market. Intraday bars are
labelled by their start: a 1min bar at 09:30 covers [09:30, 09:31).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from admf_dask.config.models import DataConfig, is_intraday, step_name
from admf_dask.data.dates import as_time, time_unit
from admf_dask.errors import ConfigError, DataError

#: trading hours of synthetic intraday bars when ``data.session`` is not given
DEFAULT_SESSION = "09:30-16:00"
#: trading days a year: the annualization of daily bars (and of each session day intraday)
TRADING_DAYS = 252.0
#: bars per year of the frequencies longer than a day
_LONG_PERIODS = {"1D": TRADING_DAYS, "1B": TRADING_DAYS, "1W": 52.0, "1M": 12.0, "1Q": 4.0}
_LONG_PERIODS["1Y"] = 1.0
_DAY = 86_400


def step_seconds(frequency: str) -> int:
    """Seconds between two bars of an intraday frequency (``"5min"`` -> 300)."""
    return int(pd.Timedelta(frequency) // pd.Timedelta(seconds=1))


def session_seconds(session: str) -> tuple[int, int]:
    """``"09:30-16:00"`` -> (34200, 57600): start and end, seconds after midnight."""
    a, b = session.split("-")
    return tuple(int(x[:2]) * 3600 + int(x[3:5]) * 60 for x in (a, b))  # type: ignore[return-value]


def bar_offsets(frequency: str, session: str) -> np.ndarray:
    """Start times of a session day's bars, seconds after midnight (int64).

    Every bar that starts inside the session: ``start, start + step, ...`` while before its end
    (the last bar is shorter when the step does not divide the session).
    """
    start, end = session_seconds(session)
    return np.arange(start, end, step_seconds(frequency), dtype=np.int64)


def bars_per_day(frequency: str, session: str | None = None) -> int:
    """Bars of one session day: 1 for daily and longer bars, else the session's bar count."""
    if not is_intraday(frequency):
        return 1
    return int(bar_offsets(frequency, session or DEFAULT_SESSION).size)


def _first_day(cfg: DataConfig) -> pd.Timestamp:
    try:
        first = pd.Timestamp(cfg.calendar_start)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            "data.calendar_start", f"'{cfg.calendar_start}' is not a date", "write e.g. 2010-01-04"
        ) from e
    if first.tz is not None:
        first = first.tz_convert("UTC").tz_localize(None)
    return first.normalize()


def synthetic_times(cfg: DataConfig) -> np.ndarray:
    """The synthetic market's time axis: ``cfg.bars`` bars from ``calendar_start``.

    Daily (``frequency`` null, 1D or 1B): one bar per business day. Intraday: the bars of
    `bar_offsets` (``session``, default `DEFAULT_SESSION`) on each business day, labelled by
    their start; the last day may be partial.

    Parameters
    ----------
    cfg : DataConfig
        The ``data`` section.

    Returns
    -------
    numpy.ndarray
        Sorted unique times, one per bar: datetime64[ns], or datetime64[s] when they do not all
        fit datetime64[ns] (`admf_dask.data.dates.time_unit`).

    Raises
    ------
    ConfigError
        ``calendar_start`` is not a date.
    """
    first = _first_day(cfg)
    freq = cfg.frequency or "1B"
    per_day = bars_per_day(freq, cfg.session)
    days = pd.bdate_range(first, periods=math.ceil(cfg.bars / per_day)).to_numpy()
    offsets = np.zeros(1, dtype="timedelta64[s]")
    if is_intraday(freq):
        offsets = bar_offsets(freq, cfg.session or DEFAULT_SESSION).astype("timedelta64[s]")
    # far dates (past 2262-04-11) give a datetime64[s] axis: docs/TIME.md
    unit = time_unit(np.concatenate([days[:1], days[-1:] + offsets[-1]]))
    days = as_time(days, unit)
    if not is_intraday(freq):
        return days
    return as_time((days[:, None] + offsets[None, :]).ravel()[: cfg.bars], unit)


def bar_vol_scale(cfg: DataConfig) -> float:
    """Multiplier of the synthetic market's per-bar volatility (1.0 for daily bars).

    Parameters
    ----------
    cfg : DataConfig
        The ``data`` section.

    Returns
    -------
    float
        ``sqrt(1 / bars per day)`` for intraday bars, so a day's variance stays a daily one;
        exactly 1.0 for daily bars.
    """
    if not is_intraday(cfg.frequency):
        return 1.0
    return math.sqrt(1.0 / bars_per_day(cfg.frequency, cfg.session))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# the frequency of a file's time axis
# --------------------------------------------------------------------------------------------


def _seconds(times: np.ndarray) -> np.ndarray:
    """int64 seconds since 1970 (floored) of datetime64 times."""
    if times.dtype == np.dtype("datetime64[ns]"):
        return np.floor_divide(times.view(np.int64), 1_000_000_000)
    return times.astype("datetime64[s]").astype(np.int64)


def _runs(sorted_ids: np.ndarray) -> np.ndarray:
    """Run numbers 0, 1, ... of equal neighbours in a sorted array (``np.unique``'s inverse)."""
    out = np.zeros(sorted_ids.size, dtype=np.int64)
    np.cumsum(sorted_ids[1:] != sorted_ids[:-1], out=out[1:])
    return out


def _mixed(label: str, times: np.ndarray, i: int, mode: int, step: int) -> DataError:
    return DataError(
        f"{label} time {str(times[i])[:19]}",
        f"mixed bar frequencies: a {step_name(step)} step where the file's bars are "
        f"{step_name(mode)} apart",
        "keep one frequency per file (resample the finer bars) or split the file",
    )


def infer_frequency(times: np.ndarray, label: str) -> str:
    """The bar frequency of a sorted time axis (canonical names of `check_frequency`).

    Intraday when some day has two bars or more: the modal positive step within a day. A step
    within a day that is not a whole number of modal steps, or a day of two steps or more none
    of which is the modal one (say 5min bars in a 1min file), is a mixed frequency; a
    multiple of the modal step within a day is a gap (missing bars). Otherwise from the median
    gap in days: daily (``1D``, weekends and holidays included) up to 4, weekly up to 10,
    monthly up to 45, quarterly up to 120, else yearly.

    Parameters
    ----------
    times : numpy.ndarray
        Sorted unique datetime64 times.
    label : str
        The file, for errors.

    Returns
    -------
    str
        ``"1min"``, ``"5min"``, ``"1h"``, ``"1D"``, ``"1W"``, ``"1M"``...; ``"1D"`` for fewer
        than two bars.

    Raises
    ------
    DataError
        Mixed frequencies, naming the file and the first offending time; bars under a second
        apart.
    """
    times = np.asarray(times)
    if times.size < 2:
        return "1D"
    sec = _seconds(times)
    day = np.floor_divide(sec, _DAY)
    step = np.diff(sec)
    within = day[1:] == day[:-1]
    if not within.any():
        gap = float(np.median(np.diff(day)))
        for limit, name in ((4, "1D"), (10, "1W"), (45, "1M"), (120, "1Q")):
            if gap <= limit:
                return name
        return "1Y"
    steps = step[within]  # 0 <= step < a day: counted in O(n)
    mode = int(np.argmax(np.bincount(steps)))  # ties: the shorter step
    if mode < 1:
        i = int(np.flatnonzero(within & (step < 1))[0]) + 1
        raise DataError(
            f"{label} time {str(times[i])}",
            "bars less than a second apart",
            "use bars of 1s or more",
        )
    first = []
    other_step = np.flatnonzero(within & (step != mode))
    off_grid = other_step[step[other_step] % mode != 0]
    if off_grid.size:
        first.append(int(off_grid[0]))
    # days of two intraday steps or more, none of them the modal step: another frequency
    pos = np.flatnonzero(within)
    group = _runs(day[1:][pos])  # the steps' day, numbered 0, 1, ... (times are sorted)
    n_steps = np.bincount(group)
    n_mode = np.bincount(group, weights=(steps == mode), minlength=n_steps.size)
    other = np.flatnonzero((n_steps >= 2) & (n_mode == 0))
    if other.size:
        first.append(int(pos[np.searchsorted(group, other[0])]))
    if first:
        i = min(first)
        raise _mixed(label, times, i + 1, mode, int(step[i]))
    return step_name(mode)


def _same(a: str, b: str) -> bool:
    daily = ("1D", "1B")
    return a == b or (a in daily and b in daily)


def time_attrs(cfg: DataConfig, times: np.ndarray, label: str) -> dict[str, Any]:
    """The market Dataset's time attrs: ``frequency``, and intraday ``session``, ``bars_per_day``.

    Synthetic data has its configured frequency (daily when null); a file's is inferred with
    `infer_frequency` and checked against ``data.frequency`` when given. With ``data.session``
    a file's bars must start inside it; without, ``bars_per_day`` is the modal number of bars of
    the file's days.

    Parameters
    ----------
    cfg : DataConfig
        The ``data`` section.
    times : numpy.ndarray
        The loaded, sorted time axis.
    label : str
        The file as written (or the source), for errors.

    Returns
    -------
    dict
        ``{"frequency": str}`` plus, intraday, ``"session"`` (str, empty when unknown) and
        ``"bars_per_day"`` (int).

    Raises
    ------
    DataError
        Mixed frequencies, a file that disagrees with ``data.frequency``, bars outside
        ``data.session``.
    ConfigError
        ``data.session`` given for a file of daily bars.
    """
    if cfg.source == "synthetic":
        freq = cfg.frequency or "1D"
        if not is_intraday(freq):
            return {"frequency": freq}
        session = cfg.session or DEFAULT_SESSION
        return {"frequency": freq, "session": session, "bars_per_day": bars_per_day(freq, session)}
    found = infer_frequency(times, label)
    if cfg.frequency is not None and not _same(cfg.frequency, found):
        raise DataError(
            label,
            f"its bars are {found} apart, but data.frequency is {cfg.frequency}",
            f"set data.frequency: {found}, or remove it (null: inferred from the file)",
        )
    freq = cfg.frequency or found
    if not is_intraday(freq):
        if cfg.session is not None:
            raise ConfigError(
                "data.session",
                f"applies to intraday bars only, and the bars of {label} are {freq} apart",
                "remove data.session",
            )
        return {"frequency": freq}
    sec = _seconds(np.asarray(times))
    if cfg.session is None:
        counts = np.bincount(_runs(np.floor_divide(sec, _DAY)))  # bars of each day
        per_day = int(np.bincount(counts).argmax())
        return {"frequency": freq, "session": "", "bars_per_day": per_day}
    start, end = session_seconds(cfg.session)
    tod = np.mod(sec, _DAY)
    outside = np.flatnonzero((tod < start) | (tod >= end))
    if outside.size:
        raise DataError(
            f"{label} time {str(np.asarray(times)[outside[0]])[:19]}",
            f"a bar outside data.session {cfg.session}",
            f"bars are labelled by their start (a {freq} bar at 09:30 covers 09:30 plus "
            f"{freq}): shift bars labelled by their end back one step, or widen data.session",
        )
    return {
        "frequency": freq,
        "session": cfg.session,
        "bars_per_day": bars_per_day(freq, cfg.session),
    }


def bar_label(time: np.datetime64, frequency: str | None) -> str:
    """A bar's time as text for run.json: the date of daily (and longer) bars, ``2024-01-02``;
    the full time of intraday bars, ``2024-01-02T09:30:00``.

    Parameters
    ----------
    time : numpy.datetime64
        The bar (any unit; past 2262 too).
    frequency : str or None
        The data's canonical frequency (``attrs["frequency"]``).

    Returns
    -------
    str
    """
    if not is_intraday(frequency):
        return str(time)[:10]
    return str(np.datetime64(time, "s"))


def periods_per_year(given: float | None, attrs: Mapping[str, Any] | None = None) -> float:
    """Bars per year for annualizing: the given value, else derived from the data's frequency.

    The one rule (docs/TIME.md): daily 252, intraday 252 × bars per session day
    (``attrs["bars_per_day"]``, else the default session's), weekly 52, monthly 12, quarterly 4,
    yearly 1; data without a ``frequency`` attr counts as daily.

    Parameters
    ----------
    given : float or None
        ``portfolios.periods_per_year`` (or an indicator's parameter); None derives it.
    attrs : mapping, optional
        The market Dataset's attrs (`time_attrs`).

    Returns
    -------
    float
        Exactly 252.0 for daily data.
    """
    if given is not None:
        return float(given)
    freq = (attrs or {}).get("frequency")
    if not freq:
        return TRADING_DAYS
    if is_intraday(str(freq)):
        per_day = (attrs or {}).get("bars_per_day") or bars_per_day(str(freq))
        return TRADING_DAYS * float(per_day)
    return _LONG_PERIODS[str(freq)]


__all__ = [
    "DEFAULT_SESSION",
    "TRADING_DAYS",
    "bar_label",
    "bar_offsets",
    "bar_vol_scale",
    "bars_per_day",
    "infer_frequency",
    "periods_per_year",
    "session_seconds",
    "step_seconds",
    "synthetic_times",
    "time_attrs",
]
