"""A slow, plain-Python reading of docs/ACCOUNTING.md for ONE portfolio (the kernel tests' oracle).

Written from the contract, step by step, with Python floats, dicts and loops; no numpy in the
arithmetic. Floating-point expressions are written in the contract's order (e.g.
``cash -= qty*px + fee``), so the kernel should agree to the last bit; tests allow 1e-9.

Choices where §2 leaves room (the kernel makes the same ones):

- "u changes" (stop release) compares u after the long-only ``max(u, 0)``, bar to bar; a stop
  marked at bar t keeps the weight 0 at t whatever u does at t.
- vol_target with a vol that is not finite or not > 0 gives w = 0.
- entry price is left unchanged when a position is closed (it is unused until the next open).
- reason of a target: "halt" if halted, else the rule that stopped the symbol ("stop",
  "trailing", "take_profit", "time") if it is stopped, else "signal".
- the opening bar t0 and the extreme x are reset by a flip as by an open (a flip opens a new
  position); an intrabar exit leaves the entry price as it was (it is a close).
- intrabar: the exits of a bar come after all of its fills at the open, in symbol order; the
  stopped flag they set is released at a close where u differs from the previous close's u
  (the §2 mechanism, without the "marked at this close" delay).
- max_positions: symbols that are stopped keep their w for the max_gross sum (§2 zeroes them
  after the scaling), as do the kept ones; only the dropped candidates get 0 before it.
- sums over symbols (equity, gross exposure, sum |w|) add symbol s into partial sum s % 4 (the last
  S % 4 symbols into partial sum 0) and combine ``(l0 + l1) + (l2 + l3)``: the kernel's order.
"""

from __future__ import annotations

import math
from typing import Any


def _finite(x: float) -> bool:
    return isinstance(x, float | int) and math.isfinite(x)


def lane_sum(values: list[float]) -> float:
    """Sum in the kernel's order: 4 interleaved partial sums, the tail into the first."""
    lanes = [0.0, 0.0, 0.0, 0.0]
    n4 = len(values) - len(values) % 4
    for i, v in enumerate(values):
        lanes[i % 4 if i < n4 else 0] += v
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])


def reference_portfolio(
    open_: list[list[float]],
    close: list[list[float]],
    signals: list[list[list[float]]],
    params: dict[str, Any],
    capital: float,
    vol: list[list[float]] | None = None,
    high: list[list[float]] | None = None,
    low: list[list[float]] | None = None,
) -> dict[str, Any]:
    """Run one portfolio over T bars and S symbols.

    Parameters
    ----------
    open_, close : T lists of S floats (nan: no price)
    signals : T lists of S lists of K floats (nan: 0)
    params : dict
        ``weights`` (K floats), ``allow_short``, ``sizing`` ("fixed" | "vol_target"),
        ``position_weight``, ``target_vol``, ``max_position``, ``max_gross``, ``stop_loss``
        (None: off), ``max_drawdown`` (None: off), ``rebalance_band``, ``commission``,
        ``commission_fixed``, ``slippage_bps``; optional (§2b, None: off) ``take_profit``,
        ``trailing_stop``, ``max_holding``, ``max_positions``, ``exit_on`` ("close" default).
    capital : float
    vol : T lists of S floats, optional (vol_target sizing)
    high, low : T lists of S floats, optional (exit_on intrabar)

    Returns
    -------
    dict
        ``equity`` and ``cash`` (T floats), ``orders`` (list of (t, s, qty, price, commission,
        reason)), ``q`` (final shares by symbol), ``traded``, ``gross_sum``.
    """
    T = len(close)
    S = len(close[0]) if T else 0
    W = [float(x) for x in params["weights"]]
    long_only = not params["allow_short"]
    sl = params["stop_loss"]
    md = params["max_drawdown"]
    band = params["rebalance_band"]
    comm = params["commission"]
    fixed = params["commission_fixed"]
    bps = params["slippage_bps"]
    mp = params["max_position"]
    mg = params["max_gross"]
    tp = params.get("take_profit")
    ts = params.get("trailing_stop")
    mh = params.get("max_holding")
    mpos = params.get("max_positions")
    intrabar = params.get("exit_on", "close") == "intrabar"

    cash = float(capital)
    q: dict[int, float] = {s: 0.0 for s in range(S)}
    entry: dict[int, float] = {s: 0.0 for s in range(S)}
    Q: dict[int, float] = {s: 0.0 for s in range(S)}
    Q_reason: dict[int, str] = {s: "signal" for s in range(S)}
    w_set: dict[int, float] = {s: 0.0 for s in range(S)}
    u_last: dict[int, float] = {s: 0.0 for s in range(S)}
    stopped: dict[int, str] = {}  # s -> "new" (marked at this bar) | "held"
    stop_why: dict[int, str] = {}  # s -> the rule that stopped it
    xt: dict[int, float] = {s: 0.0 for s in range(S)}  # extreme since the position opened
    t_open: dict[int, int] = {s: 0 for s in range(S)}  # bar of the opening fill
    last_close: dict[int, float] = {}
    peak = 0.0
    halted = False
    traded = 0.0
    gross_sum = 0.0
    equity_out: list[float] = []
    cash_out: list[float] = []
    orders: list[tuple] = []

    for t in range(T):
        # 1. fill at the open of t
        for s in range(S):
            o = open_[t][s]
            if Q[s] != q[s] and _finite(o):
                qty = Q[s] - q[s]
                sign = 1.0 if qty > 0 else -1.0
                px = o * (1.0 + sign * bps / 1e4)
                fee = comm * abs(qty) * px + fixed
                cash -= qty * px + fee
                old = q[s]
                if old == 0.0 or (old > 0.0) != (Q[s] > 0.0) and Q[s] != 0.0:
                    entry[s] = px  # opens or flips
                    xt[s] = px
                    t_open[s] = t
                elif abs(Q[s]) > abs(old):
                    entry[s] = (old * entry[s] + qty * px) / Q[s]  # grows: weighted average
                # shrinks (or closes): unchanged
                q[s] = Q[s]
                traded += abs(qty * px)
                orders.append((t, s, qty, px, fee, Q_reason[s]))

        # 1b. intrabar exits (§2b), after all the fills at the open
        if intrabar:
            for s in range(S):
                o, h, lw = open_[t][s], high[t][s], low[t][s]
                if q[s] == 0.0 or not (_finite(o) and _finite(h) and _finite(lw)):
                    continue
                e = entry[s]
                long = q[s] > 0.0
                # set levels; the stop level is the first touched on the way down (long)
                levels = []
                if sl is not None:
                    levels.append((e * (1.0 - sl) if long else e * (1.0 + sl), "stop"))
                if ts is not None:
                    levels.append((xt[s] * (1.0 - ts) if long else xt[s] * (1.0 + ts), "trailing"))
                stop = None
                for lvl, why in levels:  # equal levels: the first listed ("stop") wins
                    if stop is None or (lvl > stop[0] if long else lvl < stop[0]):
                        stop = (lvl, why)
                take = None
                if tp is not None:
                    take = e * (1.0 + tp) if long else e * (1.0 - tp)
                fill = None
                if long:
                    if stop is not None and o <= stop[0]:
                        fill = (o, stop[1])
                    elif take is not None and o >= take:
                        fill = (o, "take_profit")
                    elif stop is not None and lw <= stop[0]:
                        fill = stop
                    elif take is not None and h >= take:
                        fill = (take, "take_profit")
                else:
                    if stop is not None and o >= stop[0]:
                        fill = (o, stop[1])
                    elif take is not None and o <= take:
                        fill = (o, "take_profit")
                    elif stop is not None and h >= stop[0]:
                        fill = stop
                    elif take is not None and lw <= take:
                        fill = (take, "take_profit")
                if fill is None:
                    continue
                level, why = fill
                qty = -q[s]
                sign = 1.0 if qty > 0 else -1.0
                px = level * (1.0 + sign * bps / 1e4)
                fee = comm * abs(qty) * px + fixed
                cash -= qty * px + fee
                traded += abs(qty * px)
                orders.append((t, s, qty, px, fee, why))
                q[s] = Q[s] = w_set[s] = 0.0
                stopped[s] = "held"  # released when u changes from the last close's
                stop_why[s] = why

        # 2. mark at the close of t
        for s in range(S):
            if _finite(close[t][s]):
                last_close[s] = close[t][s]
        values = [q[s] * last_close[s] if s in last_close else 0.0 for s in range(S)]
        asset = lane_sum(values)
        gross = lane_sum([abs(v) for v in values])
        equity = cash + asset
        equity_out.append(equity)
        cash_out.append(cash)
        if equity != 0.0:
            gross_sum += gross / equity

        # 3. risk at the close of t: exit rules (the first that hits), then the extreme
        for s in range(S):
            if q[s] == 0.0:
                continue
            c = close[t][s]
            long = q[s] > 0.0
            why = None
            if not intrabar and _finite(c):
                e = entry[s]
                if sl is not None and (c <= e * (1.0 - sl) if long else c >= e * (1.0 + sl)):
                    why = "stop"
                elif ts is not None and (
                    c <= xt[s] * (1.0 - ts) if long else c >= xt[s] * (1.0 + ts)
                ):
                    why = "trailing"
                elif tp is not None and (c >= e * (1.0 + tp) if long else c <= e * (1.0 - tp)):
                    why = "take_profit"
            if why is None and mh is not None and t - t_open[s] + 1 >= mh:
                why = "time"
            if why is not None:
                stopped[s] = "new"
                stop_why[s] = why
            price = (high if long else low)[t][s] if intrabar else c
            if _finite(price):
                xt[s] = max(xt[s], price) if long else min(xt[s], price)
        peak = max(peak, equity)
        if md is not None and equity < (1.0 - md) * peak:
            halted = True

        # 4. target at the close of t
        w: dict[int, float] = {}
        for s in range(S):
            total = 0.0
            for k in range(len(W)):
                x = signals[t][s][k]
                if x == x:
                    total += W[k] * x
            u = min(max(total, -1.0), 1.0)
            if long_only:
                u = max(u, 0.0)
            if stopped.get(s) == "held" and u != u_last[s]:
                del stopped[s]
            u_last[s] = u
            if params["sizing"] == "fixed":
                ws = u * params["position_weight"]
            else:
                v = vol[t][s]
                ws = u * params["target_vol"] / v if _finite(v) and v > 0.0 else 0.0
            w[s] = min(max(ws, -mp), mp)
        if mpos is not None:
            cands = [s for s in range(S) if w[s] != 0.0 and s not in stopped]
            # largest |u| first; ties: held now before not held, then lower symbol index
            cands.sort(key=lambda s: (-abs(u_last[s]), 0 if q[s] != 0.0 else 1, s))
            for s in cands[mpos:]:
                w[s] = 0.0
        total_abs = lane_sum([abs(w[s]) for s in range(S)])
        if total_abs > mg:
            factor = mg / total_abs
            for s in range(S):
                w[s] = w[s] * factor
        for s in range(S):
            is_stopped = s in stopped
            if halted or is_stopped:
                w[s] = 0.0
            if stopped.get(s) == "new":
                stopped[s] = "held"
            if abs(w[s] - w_set[s]) > band + 1e-12:
                w_set[s] = w[s]
                Q[s] = w[s] * equity / last_close[s] if s in last_close else 0.0
                Q_reason[s] = "halt" if halted else (stop_why[s] if is_stopped else "signal")

    return {
        "equity": equity_out,
        "cash": cash_out,
        "orders": orders,
        "q": [q[s] for s in range(S)],
        "traded": traded,
        "gross_sum": gross_sum,
    }
