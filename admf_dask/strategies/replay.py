"""The ``signals`` kind: replay a long table ``time, symbol, signal`` from Parquet or CSV.

Column names are case-insensitive; ``date``/``datetime``/``timestamp`` are accepted for
``time`` and ``ticker`` for ``symbol``. Rows are aligned to the data's bars; (bar, symbol)
pairs without a row are 0, an empty signal cell is 0. Row numbers in messages count data rows
from 1 (the header is not a row). Errors are one-line `DataError`s naming the file and row:
a missing column, an unparseable time, an unknown symbol, a signal that is not a number or is
outside [-1, 1], two rows for the same (time, symbol). Rows whose time is not a bar of the data
are ignored: outside the data's span silently (the data may be a filtered window), inside it
with a warning in ``ctx.warnings`` (an error when ``ctx.strict``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from admf_dask.data.dates import describe, parse_dates
from admf_dask.errors import ConfigError, DataError, did_you_mean

_ALIASES = {
    "time": ("time", "date", "datetime", "timestamp"),
    "symbol": ("symbol", "ticker"),
    "signal": ("signal",),
}
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".txt", ".tsv")


def resolve_path(path: str, base_dir: Path | None, where: str) -> Path:
    """Resolve ``path`` against ``base_dir``; ConfigError if it does not exist."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if not p.exists():
        raise ConfigError(
            where,
            f"signal file {path} not found (looked at {p})",
            "check the path; relative paths are relative to the pipeline file",
        )
    return p


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes (of every file, in order, for a directory)."""
    h = hashlib.sha256()
    files = sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
    for q in files:
        h.update(str(q.relative_to(path) if path.is_dir() else q.name).encode())
        with open(q, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _read_table(path: Path, label: str) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if path.is_dir() or name.endswith(_PARQUET):
            return pd.read_parquet(path)
        if name.endswith(_CSV):
            return pd.read_csv(
                path, sep="\t" if name.endswith(".tsv") else ",", dtype=str, keep_default_na=False
            )
    except Exception as exc:  # any reader failure is the file's fault
        raise DataError(
            label,
            f"cannot read the file: {type(exc).__name__}: {exc}",
            "write a Parquet or CSV table with columns time, symbol, signal",
        ) from exc
    raise DataError(label, f"unsupported file type '{path.suffix}'", "use .parquet or .csv")


def _row(label: str, i: int) -> str:
    return f"{label} row {i + 1}"


def _parse_times(
    raw: pd.Series, label: str, date_format: str | None = None, option: str = "date_format"
) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(raw):
        times = pd.DatetimeIndex(raw)
        if times.tz is not None:
            times = times.tz_convert("UTC").tz_localize(None)
    else:
        # one format for the whole column, as for market data (admf_dask.data.dates)
        text = raw.astype(object).where(raw.notna(), None)
        parsed = parse_dates(
            text, locate=lambda i: _row(label, i), date_format=date_format, option=option
        )
        times = pd.DatetimeIndex(parsed.values)
        i = int(np.argmax(parsed.bad))
        if parsed.bad.any() and date_format is not None:
            raise DataError(
                _row(label, i),
                f"time {raw.iloc[i]!r} does not match {option} '{date_format}'",
                f"fix the time or {option}",
            )
        if parsed.bad.any() and not parsed.bad.all():
            raise DataError(
                _row(label, i),
                f"unparseable time {raw.iloc[i]!r}: the other rows are {describe(parsed.format)}",
                f"write every time in one format (e.g. 2020-01-31), or set {option}",
            )
    bad = np.flatnonzero(times.isna())
    if len(bad):
        i = int(bad[0])
        raise DataError(
            _row(label, i),
            f"unparseable time {raw.iloc[i]!r}",
            "write times as ISO dates, e.g. 2020-01-31",
        )
    return times


def read_signal_table(
    path: Path,
    label: str,
    times: pd.DatetimeIndex,
    symbols: list[str],
    warnings: list[str] | None = None,
    strict: bool = False,
    date_format: str | None = None,
    option: str = "date_format",
) -> np.ndarray:
    """Read a signal file and align it to ``(times, symbols)``.

    Parameters
    ----------
    path : Path
        Parquet file or dataset folder, or CSV file.
    label : str
        How messages name the file (the path as the user wrote it).
    times, symbols
        The data's bars and symbols.
    warnings : list of str, optional
        Receives a line about rows at times that are not bars.
    strict : bool
        Rows at non-bar times inside the data's span are an error instead of a warning.
    date_format : str, optional
        strftime format of text times (default: one format inferred from all values).
    option : str
        The key that sets ``date_format``, named in messages.

    Returns
    -------
    np.ndarray
        float64 ``(time, symbol)`` signals in [-1, 1], 0 where the file has no row.

    Raises
    ------
    DataError
        One line naming the file and row.
    """
    df = _read_table(path, label)
    lower = {str(c).strip().lower(): c for c in df.columns}
    cols: dict[str, Any] = {}
    for key, names in _ALIASES.items():
        found = next((lower[n] for n in names if n in lower), None)
        if found is None:
            raise DataError(
                label,
                f"no '{key}' column (columns: {', '.join(map(str, df.columns)) or 'none'})",
                "the table needs columns time, symbol, signal (signal in [-1, 1])",
            )
        cols[key] = found
    n = len(df)
    when = _parse_times(df[cols["time"]].reset_index(drop=True), label, date_format, option)

    sym = df[cols["symbol"]].reset_index(drop=True).astype("string").str.strip()
    known = pd.Index([str(s) for s in symbols])
    s_idx = known.get_indexer(sym.fillna(""))
    bad = np.flatnonzero(s_idx < 0)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            _row(label, i),
            f"unknown symbol {sym.iloc[i]!r}{did_you_mean(str(sym.iloc[i]), list(known))}",
            "symbols in the data are: "
            + ", ".join(known[:20])
            + (" ..." if len(known) > 20 else ""),
        )

    raw = df[cols["signal"]].reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        sig = raw.astype("float64").to_numpy()
        text_bad = np.zeros(n, dtype=bool)
    else:
        text = raw.astype("string").str.strip()
        sig = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()
        text_bad = np.isnan(sig) & (text.fillna("") != "").to_numpy()
    bad = np.flatnonzero(text_bad)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            _row(label, i),
            f"signal {raw.iloc[i]!r} is not a number",
            "signals are numbers in [-1, 1]",
        )
    with np.errstate(invalid="ignore"):
        out_of_range = np.flatnonzero(~np.isnan(sig) & ~((sig >= -1.0) & (sig <= 1.0)))
    if len(out_of_range):
        i = int(out_of_range[0])
        raise DataError(
            _row(label, i),
            f"signal {float(sig[i])!r} is outside [-1, 1]",
            "scale signals to [-1, 1] (sign = direction, size = conviction)",
        )

    keys = pd.DataFrame({"t": when.asi8, "s": s_idx})
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = int(rows[0])
        same = rows[
            (keys["t"].to_numpy()[rows] == keys["t"].iloc[first])
            & (keys["s"].to_numpy()[rows] == keys["s"].iloc[first])
        ]
        second = int(same[1])
        raise DataError(
            f"{label} rows {first + 1} and {second + 1}",
            f"two signals for {sym.iloc[first]} at {when[first]}",
            "keep one row per (time, symbol)",
        )

    t_idx = times.get_indexer(when)
    miss = np.flatnonzero(t_idx < 0)
    if len(miss) and len(times):
        inside = miss[(when[miss] >= times[0]) & (when[miss] <= times[-1])]
        if len(inside):
            i = int(inside[0])
            what = (
                f"{len(inside)} row(s) at times that are not bars of the data, "
                f"first {when[i]} (row {i + 1}); they are ignored"
            )
            if strict:
                raise DataError(
                    _row(label, i),
                    f"time {when[i]} is not a bar of the data",
                    "align the signal times to the data's bars",
                )
            if warnings is not None and (t_idx >= 0).any():  # none at all: the stage's check says
                warnings.append(f"{label}: {what}")
    ok = t_idx >= 0
    out = np.zeros((len(times), len(symbols)))
    out[t_idx[ok], s_idx[ok]] = np.nan_to_num(sig[ok], nan=0.0)
    return out
