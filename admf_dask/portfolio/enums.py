"""Constants and types of the accounting kernel (docs/ACCOUNTING.md): numpy only.

- ``F_*`` / ``I_*``: columns of the packed per-portfolio parameters ``fparams`` (float64) and
  ``iparams`` (int64). A nan float parameter means "off" (every comparison with nan is false, so
  no branch is needed); an integer parameter 0 means "off".
- `KernelState`: the state the kernel updates in place, one named tuple of arrays.
- `ORDER_DTYPE`: one order record (the kernel's output buffer is an array of them).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# fparams columns
F_POSITION_WEIGHT = 0
F_TARGET_VOL = 1
F_MAX_POSITION = 2
F_MAX_GROSS = 3
F_STOP_LOSS = 4
F_MAX_DRAWDOWN = 5
F_BAND = 6
F_COMMISSION = 7
F_COMMISSION_FIXED = 8
F_SLIPPAGE_BPS = 9
F_TAKE_PROFIT = 10
F_TRAILING_STOP = 11
N_FPARAMS = 12
# iparams columns: row of ``mixes`` (strategy weights), index into the vol stack (-1: fixed
# sizing), 1 when shorts are allowed, max_holding in bars (0: off), 1 for exit_on intrabar,
# max_positions (0: off)
I_MIX = 0
I_VOL = 1
I_SHORT = 2
I_MAX_HOLDING = 3
I_INTRABAR = 4
I_MAX_POSITIONS = 5
N_IPARAMS = 6

# why the target behind a fill was set, or why an intrabar exit happened (orders.parquet
# `reason`, docs/ACCOUNTING.md, exits)
REASON_SIGNAL = 0
REASON_STOP = 1
REASON_TRAILING = 2
REASON_TAKE_PROFIT = 3
REASON_TIME = 4
REASON_HALT = 5
REASON_NAMES = ("signal", "stop", "trailing", "take_profit", "time", "halt")

# per-(portfolio, symbol) stop state: NEW = marked at this bar's close (cannot clear at this
# bar), HELD = marked earlier, clears at the first bar where the raw weight u changes
STOP_NONE = 0
STOP_HELD = 1
STOP_NEW = 2

#: one fill: batch-local portfolio, global bar index, symbol index, REASON_*, then the amounts
ORDER_DTYPE = np.dtype(
    [
        ("portfolio", np.int32),
        ("time", np.int32),
        ("symbol", np.int32),
        ("reason", np.int8),
        ("qty", np.float64),
        ("price", np.float64),
        ("commission", np.float64),
    ],
    align=True,
)
#: the order of the columns in orders.parquet and `OrderRecords`
ORDER_FIELDS = ("portfolio", "time", "symbol", "qty", "price", "commission", "reason")


class KernelState(NamedTuple):
    """State of P portfolios over S symbols between two bars; the kernel updates it in place.

    Attributes
    ----------
    last_close : float64 (S,)
        Last finite close per symbol (nan: never priced); shared by the batch.
    cash, peak : float64 (P,)
    halted : bool (P,)
    q, entry, target, w_set, u_prev : float64 (P, S)
        Shares, entry price, target shares Q, set weight, raw weight u of the last bar (after
        the long-only floor).
    stopped, reason : int8 (P, S)
        ``STOP_*`` flag; ``REASON_*`` of the pending target.
    stop_why : int8 (P, S)
        ``REASON_*`` of the exit rule that marked the symbol stopped (the reason of the target
        0 it sets).
    extreme : float64 (P, S)
        x of docs/ACCOUNTING.md, exits: the highest (long) / lowest (short) price since the position opened.
    opened : int64 (P, S)
        Global bar index of the fill that opened (or flipped) the position.
    traded : float64 (P,)
        Accumulator: sum of |qty * px| of the fills.
    gross_sum : float64 (P,)
        Accumulator: sum over bars of sum|q * close| / equity (0 on a bar where equity is 0).
    n_orders : int64 (P,)
        Accumulator: number of fills.
    """

    last_close: np.ndarray
    cash: np.ndarray
    peak: np.ndarray
    halted: np.ndarray
    q: np.ndarray
    entry: np.ndarray
    target: np.ndarray
    w_set: np.ndarray
    u_prev: np.ndarray
    stopped: np.ndarray
    reason: np.ndarray
    stop_why: np.ndarray
    extreme: np.ndarray
    opened: np.ndarray
    traded: np.ndarray
    gross_sum: np.ndarray
    n_orders: np.ndarray
