"""An outsider's check of the indicators (DESIGN §5 "Indicators") on the real bokeh-sampledata
prices: each against its TA-Lib twin to 1e-8 from the twin's first value, per symbol (GOOG and
FB list late), through `ad.load_market_data` and `ad.compute_features` with chunks smaller than
the windows (the results must not depend on the chunking)."""

from __future__ import annotations

import numpy as np
import pytest
from _oracles import require_module

import admf_dask as ad

talib = require_module("talib")

SPECS = {
    "sma": {"kind": "sma", "window": 30},
    "ema": {"kind": "ema", "window": 25},
    "rsi": {"kind": "rsi", "window": 14},
    "atr": {"kind": "atr", "window": 14},
    "macd": {"kind": "macd", "fast": 12, "slow": 26, "signal": 9},
    "bb": {"kind": "bbands", "window": 20, "k": 2.0},
    "roc": {"kind": "roc", "window": 10},
    "dc": {"kind": "donchian", "window": 20},
    "ret": {"kind": "returns"},
}


@pytest.fixture(scope="module")
def computed():
    data = ad.load_market_data(
        {
            "source": "bokeh_stocks",
            "start": "2003-01-01",
            "end": "2013-03-01",
            "chunks": {"time": 17},
        }
    )
    feats = ad.compute_features(data, SPECS).compute(scheduler="sync")
    return data.compute(scheduler="sync"), feats


def _twins(h, lo, c) -> dict:
    m, s, hist = talib.MACD(c, 12, 26, 9)
    up, mid, dn = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    return {
        "sma": talib.SMA(c, 30),
        "ema": talib.EMA(c, 25),
        "rsi": talib.RSI(c, 14),
        "atr": talib.ATR(h, lo, c, 14),
        "macd_macd": m,
        "macd_signal": s,
        "macd_hist": hist,
        "bb_upper": up,
        "bb_middle": mid,
        "bb_lower": dn,
        "roc": talib.ROCP(c, 10),
        "dc_high": talib.MAX(h, 20),
        "dc_low": talib.MIN(lo, 20),
        "ret": talib.ROCP(c, 1),
    }


def test_indicator_outputs_are_named(computed):
    _, feats = computed
    want = {
        "sma",
        "ema",
        "rsi",
        "atr",
        "macd_macd",
        "macd_signal",
        "macd_hist",
        "bb_upper",
        "bb_middle",
        "bb_lower",
        "roc",
        "dc_high",
        "dc_low",
        "ret",
    }
    assert want <= set(feats.data_vars)
    for v in want:
        assert feats[v].dims == ("time", "symbol") and feats[v].dtype == np.float64, v


@pytest.mark.parametrize("symbol", ["AAPL", "FB", "GOOG", "IBM", "MSFT"])
def test_indicators_match_talib(computed, symbol):
    data, feats = computed
    col = data.sel(symbol=symbol)
    c = col["close"].values
    first = int(np.argmax(np.isfinite(c)))
    assert np.isfinite(c[first:]).all()  # no gaps after the listing in this data set
    h, lo, cc = (col[k].values[first:] for k in ("high", "low", "close"))
    for name, twin in _twins(h, lo, cc).items():
        got = feats[name].sel(symbol=symbol).values
        assert np.isnan(got[:first]).all(), (symbol, name)
        got = got[first:]
        start = int(np.argmax(np.isfinite(twin)))
        np.testing.assert_allclose(
            got[start:], twin[start:], rtol=1e-8, atol=1e-8, err_msg=f"{symbol} {name}"
        )
