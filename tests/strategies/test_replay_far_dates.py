"""Replayed signals on a market past 2262-04-11 (datetime64[s] time axis, docs/TIME.md): the
same values as on the market's twin within datetime64[ns], eager and in tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import admf_dask as ad
from admf_dask.strategies.replay import read_signal_table, signal_array


def _replayed(start: str, fmt: str, tmp_path) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    m = ad.load_market_data(
        {"source": "synthetic", "symbols": 3, "bars": 300, "seed": 1, "calendar_start": start}
    )
    t = pd.DatetimeIndex(m.time.values)
    syms = [str(s) for s in m.symbol.values]
    rng = np.random.default_rng(0)
    keep = rng.random(3 * len(t)) < 0.7  # some cells missing: they replay as 0
    df = pd.DataFrame(
        {
            "time": np.repeat(t.values, 3)[keep],
            "symbol": np.asarray(syms * len(t))[keep],
            "signal": np.round(rng.uniform(-1, 1, 3 * len(t)), 3)[keep],
        }
    )
    path = tmp_path / f"signals-{start}.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path, row_group_size=200)
    else:
        df.to_csv(path, index=False)
    eager = np.asarray(read_signal_table(path, "strategies.x", t, syms))
    lazy = np.asarray(signal_array(path, "strategies.x", t, syms, (100, 100, 100)).compute())
    return eager, lazy, t.dtype


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_replay_on_a_market_past_2262_equals_its_ns_twin(fmt, tmp_path):
    far_eager, far_lazy, far_unit = _replayed("2261-06-01", fmt, tmp_path)
    near_eager, near_lazy, near_unit = _replayed("2010-01-01", fmt, tmp_path)
    assert far_unit == np.dtype("datetime64[s]") and near_unit == np.dtype("datetime64[ns]")
    assert np.count_nonzero(near_eager) > 0
    np.testing.assert_array_equal(far_eager, near_eager)
    np.testing.assert_array_equal(far_lazy, near_lazy)
    np.testing.assert_array_equal(far_lazy, far_eager)
