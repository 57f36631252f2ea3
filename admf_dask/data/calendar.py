"""Bar calendars: the synthetic market's time axis, bar frequency and bars per year.

One place for what depends on the bar frequency (docs/TIME.md): the synthetic time axis,
``periods_per_year`` and the per-bar volatility scale of the synthetic market.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from admf_dask.config.models import DataConfig
from admf_dask.data.validate import in_ns_range
from admf_dask.errors import ConfigError


def synthetic_times(cfg: DataConfig) -> np.ndarray:
    """The synthetic market's time axis: ``cfg.bars`` business days from ``calendar_start``.

    Parameters
    ----------
    cfg : DataConfig
        The ``data`` section.

    Returns
    -------
    numpy.ndarray
        Sorted unique datetime64 times, one per bar.
    """
    try:
        first = pd.Timestamp(cfg.calendar_start)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            "data.calendar_start", f"'{cfg.calendar_start}' is not a date", "write e.g. 2010-01-04"
        ) from e
    if first.tz is not None:
        first = first.tz_convert("UTC").tz_localize(None)
    time = pd.bdate_range(first.normalize(), periods=cfg.bars).to_numpy()
    if not in_ns_range(time[[0, -1]]).all():
        raise ConfigError(
            "data.bars",
            f"{cfg.bars} business days from {first.date()} run past 2262-04-11, the last date a "
            "datetime64[ns] time axis can hold",
            "use fewer bars or an earlier data.calendar_start (e.g. 1700-01-01)",
        )
    return time.astype("datetime64[ns]")


def bar_vol_scale(cfg: DataConfig) -> float:
    """Multiplier of the synthetic market's per-bar volatility (1.0 for daily bars).

    Parameters
    ----------
    cfg : DataConfig
        The ``data`` section.

    Returns
    -------
    float
        ``sqrt(1 / bars per day)`` for intraday bars, so a day's variance stays a daily one.
    """
    return 1.0


__all__ = ["bar_vol_scale", "synthetic_times"]
