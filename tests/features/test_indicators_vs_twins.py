"""Every indicator against its TA-Lib / pandas twin, on synthetic data with gaps and late starts
and on the real bokeh-sampledata stocks (GOOG and FB list late).

Oracles for missing bars follow the documented semantics: recursive indicators equal TA-Lib on
the symbol's valid bars only; window indicators equal TA-Lib on each gap-free stretch (NaN in a
window gives NaN), i.e. pandas ``rolling(window)``.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import xarray as xr
from _oracles import require_module

from admf_dask.features import _kernels as K
from admf_dask.features import compute_features

talib = require_module("talib")

RTOL = 1e-8


def _compressed(fn, *cols):
    """fn on the bars where every column is valid, scattered back (NaN elsewhere)."""
    ok = np.all([~np.isnan(c) for c in cols], axis=0)
    outs = fn(*[np.ascontiguousarray(c[ok]) for c in cols]) if ok.any() else None
    single = not isinstance(outs, tuple)
    res = []
    for k in range(1 if single else len(outs)):
        full = np.full(cols[0].shape, np.nan)
        if ok.any():
            full[ok] = outs if single else outs[k]
        res.append(full)
    return res[0] if single else tuple(res)


def _segments(fn, *cols):
    """fn on each gap-free stretch separately (NaN at gaps)."""
    ok = np.all([~np.isnan(c) for c in cols], axis=0)
    n_out = None
    pieces = []
    i, n = 0, len(ok)
    while i < n:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j < n and ok[j]:
            j += 1
        out = fn(*[np.ascontiguousarray(c[i:j]) for c in cols])
        pieces.append((i, j, out))
        n_out = 1 if not isinstance(out, tuple) else len(out)
        i = j
    n_out = n_out or 1
    res = [np.full(cols[0].shape, np.nan) for _ in range(n_out)]
    for i, j, out in pieces:
        for k in range(n_out):
            res[k][i:j] = out if n_out == 1 else out[k]
    return res[0] if n_out == 1 else tuple(res)


def twin(kind: str, p: dict, cols: dict[str, np.ndarray], *, gaps: bool) -> dict[str, np.ndarray]:
    """Expected outputs (output name -> 1-D array) from TA-Lib / pandas."""
    x = cols[p.get("field", "close")]
    s = pd.Series(x)
    wrap_rec = _compressed if gaps else (lambda fn, *c: fn(*c))
    wrap_win = _segments if gaps else (lambda fn, *c: fn(*c))
    w = p.get("window")
    if kind == "sma":
        return {"": wrap_win(lambda a: talib.SMA(a, w), x)}
    if kind == "ema":
        return {"": wrap_rec(lambda a: talib.EMA(a, w), x)}
    if kind == "rsi":
        return {"": wrap_rec(lambda a: talib.RSI(a, w), x)}
    if kind == "atr":
        h, lo, c = cols["high"], cols["low"], cols["close"]
        return {"": wrap_rec(lambda a, b, d: talib.ATR(a, b, d, w), h, lo, c)}
    if kind == "macd":
        m, sg, hi = wrap_rec(lambda a: talib.MACD(a, p["fast"], p["slow"], p["signal"]), x)
        return {"macd": m, "signal": sg, "hist": hi}
    if kind == "bbands":
        u, m, lo = wrap_win(lambda a: talib.BBANDS(a, w, p["k"], p["k"], 0), x)
        return {"upper": u, "middle": m, "lower": lo}
    if kind == "roc":
        return {"": talib.ROCP(x, w)}  # pointwise: a gap only touches its two ends
    if kind == "donchian":
        h, lo = cols["high"], cols["low"]
        if w < 2:  # TA-Lib's MAX/MIN need 2 bars; pandas is the twin there
            return {
                "high": pd.Series(h).rolling(w).max().to_numpy(),
                "low": pd.Series(lo).rolling(w).min().to_numpy(),
            }
        return {
            "high": wrap_win(lambda a: talib.MAX(a, w), h),
            "low": wrap_win(lambda a: talib.MIN(a, w), lo),
        }
    if kind == "volatility":
        ppy = 252.0 if p["periods_per_year"] is None else p["periods_per_year"]  # daily data
        vol = np.log(s / s.shift(1)).rolling(w).std() * np.sqrt(ppy)
        return {"": vol.to_numpy()}
    if kind == "zscore":
        z = ((s - s.rolling(w).mean()) / s.rolling(w).std()).to_numpy().copy()
        # pandas' online std leaves ~1e-8 noise on exactly flat windows; ours is exact (z = 0)
        flat = (s.rolling(w).max() == s.rolling(w).min()).to_numpy()
        z[flat] = 0.0
        return {"": z}
    if kind == "returns":
        return {"": s.pct_change(w).to_numpy()}
    raise AssertionError(kind)


SPECS = {
    "sma_2": {"kind": "sma", "window": 2},
    "sma_20": {"kind": "sma", "window": 20},
    "sma_o": {"kind": "sma", "window": 7, "field": "open"},
    "ema_2": {"kind": "ema", "window": 2},
    "ema_30": {"kind": "ema", "window": 30},
    "rsi_2": {"kind": "rsi", "window": 2},
    "rsi_14": {"kind": "rsi"},
    "atr_1": {"kind": "atr", "window": 1},
    "atr_14": {"kind": "atr"},
    "macd": {"kind": "macd"},
    "macd_s": {"kind": "macd", "fast": 5, "slow": 13, "signal": 1},
    "bb": {"kind": "bbands"},
    "bb_5": {"kind": "bbands", "window": 5, "k": 1.5},
    "roc_1": {"kind": "roc", "window": 1},
    "roc_10": {"kind": "roc", "window": 10},
    "vol_20": {"kind": "volatility"},
    "vol_5": {"kind": "volatility", "window": 5, "periods_per_year": 12},
    "z_2": {"kind": "zscore", "window": 2},
    "z_20": {"kind": "zscore"},
    "dc_1": {"kind": "donchian", "window": 1},
    "dc_20": {"kind": "donchian"},
    "ret_1": {"kind": "returns"},
    "ret_5": {"kind": "returns", "window": 5},
}


def _assert_twin(ours: np.ndarray, exp: np.ndarray, label: str) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(exp), err_msg=f"{label}: NaN pattern")
    ok = ~np.isnan(exp)
    if ok.any():
        scale = np.max(np.abs(exp[ok]))
        np.testing.assert_allclose(ours[ok], exp[ok], rtol=RTOL, atol=1e-12 * scale, err_msg=label)


def _check_all(data: xr.Dataset, *, gaps: bool) -> int:
    with dask.config.set(scheduler="sync"):
        feats = compute_features(data, SPECS).compute()
        raw = data.compute()
    from admf_dask.features import validate_feature_spec

    n = 0
    for name, spec in SPECS.items():
        norm = validate_feature_spec(name, spec)
        for j, sym in enumerate(raw.symbol.values):
            cols = {f: raw[f].values[:, j].copy() for f in ("open", "high", "low", "close")}
            for out, exp in twin(norm["kind"], norm, cols, gaps=gaps).items():
                var = name if not out else f"{name}_{out}"
                _assert_twin(feats[var].values[:, j], exp, f"{var} {sym}")
                n += 1
    return n


def test_twins_on_synthetic_data_with_gaps_and_late_starts(market):
    close = market["close"].values
    assert np.isnan(close[:100, 2]).all() and np.isnan(close[-50:, -1]).all()
    interior = np.isnan(close[200:600, :]).sum()
    assert interior > 20  # the data really has interior gaps
    assert _check_all(market, gaps=True) == 6 * 33


def test_twins_on_real_bokeh_data(bokeh):
    close = bokeh["close"].values
    first = {
        str(s): int(np.argmax(~np.isnan(close[:, j]))) for j, s in enumerate(bokeh.symbol.values)
    }
    assert first["GOOG"] > 1000 and first["FB"] > 3000  # late starts
    # no interior gaps: TA-Lib is applied to the raw column (it skips the leading NaNs itself)
    assert _check_all(bokeh, gaps=False) == 5 * 33


def test_gap_semantics_explicitly():
    """A NaN bar: window indicators NaN for every window containing it; recursive ones carry
    their state through it (NaN on that bar only)."""
    x = np.arange(1.0, 41.0)
    x[20] = np.nan
    s = K.sma(x, 5)[:, 0]
    assert np.isnan(s[20:25]).all() and not np.isnan(s[[19, 25]]).any()
    e, _ = K.ema(x, 5)
    e = e[:, 0]
    assert np.isnan(e[20]) and not np.isnan(e[21:]).any()
    xs = np.delete(x, 20)
    np.testing.assert_array_equal(np.delete(e, 20), K.ema(xs, 5)[0][:, 0])
    r = K.returns(x, 1)[:, 0]
    assert np.isnan(r[[20, 21]]).all() and not np.isnan(r[22])


def test_all_nan_symbol_and_short_history():
    x = np.full((30, 2), np.nan)
    x[25:, 1] = np.arange(5.0) + 1
    for out in (K.sma(x, 10), K.ema(x, 10)[0], K.rsi(x, 14)[0], K.bbands(x, 10, 2.0)[0]):
        assert np.isnan(out).all()
    np.testing.assert_array_equal(K.returns(x, 1)[26:, 1], x[26:, 1] / x[25:-1, 1] - 1)


def test_flat_window_conventions():
    x = np.full(30, 7.0)
    assert K.zscore(x, 5)[10, 0] == 0.0  # x is the mean of a flat window
    assert K.volatility(x, 5, 252)[10, 0] == 0.0
    up, mid, lo = K.bbands(x, 5, 2.0)
    assert up[10, 0] == mid[10, 0] == lo[10, 0] == 7.0
    assert K.rsi(x, 5)[0][10, 0] == 0.0  # TA-Lib: no gain, no loss -> 0


def test_recursive_state_chunks_match_one_pass(market):
    c = market["close"].values
    h, lo = market["high"].values, market["low"].values
    full = K.macd(c, 12, 26, 9)[0]
    state = None
    parts = []
    for a, b in [(0, 1), (1, 30), (30, 31), (31, 400), (400, 700)]:
        out, state = K.macd(c[a:b], 12, 26, 9, state)
        parts.append(out)
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), full[k])
    full_atr = K.atr(h, lo, c, 14)[0]
    out1, st = K.atr(h[:333], lo[:333], c[:333], 14)
    out2, _ = K.atr(h[333:], lo[333:], c[333:], 14, st)
    np.testing.assert_array_equal(np.concatenate([out1, out2]), full_atr)
