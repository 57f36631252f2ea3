"""A slow, plain-Python reading of DESIGN §2 for ONE portfolio (the oracle of the kernel tests).

Written from the contract, step by step, with Python floats, dicts and loops; no numpy in the
arithmetic. Floating-point expressions are written in the contract's order (e.g.
``cash -= qty*px + fee``), so the kernel should agree to the last bit; tests allow 1e-9.

Choices where §2 leaves room (the kernel makes the same ones):

- "u changes" (stop release) compares u after the long-only ``max(u, 0)``, bar to bar; a stop
  marked at bar t keeps the weight 0 at t whatever u does at t.
- vol_target with a vol that is not finite or not > 0 gives w = 0.
- entry price is left unchanged when a position is closed (it is unused until the next open).
- reason of a target: "halt" if halted, else "stop" if the symbol is stopped, else "signal".
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
        ``commission_fixed``, ``slippage_bps``.
    capital : float
    vol : T lists of S floats, optional (vol_target sizing)

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

    cash = float(capital)
    q: dict[int, float] = {s: 0.0 for s in range(S)}
    entry: dict[int, float] = {s: 0.0 for s in range(S)}
    Q: dict[int, float] = {s: 0.0 for s in range(S)}
    Q_reason: dict[int, str] = {s: "signal" for s in range(S)}
    w_set: dict[int, float] = {s: 0.0 for s in range(S)}
    u_last: dict[int, float] = {s: 0.0 for s in range(S)}
    stopped: dict[int, str] = {}  # s -> "new" (marked at this bar) | "held"
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
                elif abs(Q[s]) > abs(old):
                    entry[s] = (old * entry[s] + qty * px) / Q[s]  # grows: weighted average
                # shrinks (or closes): unchanged
                q[s] = Q[s]
                traded += abs(qty * px)
                orders.append((t, s, qty, px, fee, Q_reason[s]))

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

        # 3. risk at the close of t
        if sl is not None:
            for s in range(S):
                c = close[t][s]
                if q[s] > 0.0 and c <= entry[s] * (1.0 - sl):
                    stopped[s] = "new"
                elif q[s] < 0.0 and c >= entry[s] * (1.0 + sl):
                    stopped[s] = "new"
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
            if abs(w[s] - w_set[s]) > band:
                w_set[s] = w[s]
                Q[s] = w[s] * equity / last_close[s] if s in last_close else 0.0
                Q_reason[s] = "halt" if halted else ("stop" if is_stopped else "signal")

    return {
        "equity": equity_out,
        "cash": cash_out,
        "orders": orders,
        "q": [q[s] for s in range(S)],
        "traded": traded,
        "gross_sum": gross_sum,
    }
