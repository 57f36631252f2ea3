"""Bad input, table-driven: every case ends with exit 2 and one ``error:`` line saying where,
what and how to fix, with no traceback, nothing written, nothing overwritten, nothing executed.

Cases that fail before a cluster starts run the CLI in-process (``admf_dask.cli.main``); market
data and replay (signal) files fail in the data or signals stage, after the cluster starts, so
they run against the test session's cluster by ``--address`` (seconds, not a LocalCluster start
each). A few cases run as real subprocesses, with the CLI's own LocalCluster, to prove the exit
code and the stderr of the installed entry point. Model files
have no CLI path: the registry loader must raise a one-line `ModelFileError`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rel_common import base, prices, to_dataset, write_csv, write_yaml

from admf_dask.errors import ModelFileError

ROOT = Path(__file__).resolve().parents[2]
MARKER = "PWNED"  # a file any executed payload would create in the case folder


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], list[str]]  # writes the inputs into a folder, returns the CLI args
    where: str  # must appear in the error line
    what: str  # must appear in the error line (case-insensitive)
    # fails once the run has a cluster (data, signals stages): against the session cluster
    # (--address); the CLI's own LocalCluster path is the one of the proc cases
    cluster: bool = False
    proc: bool = False  # run the real entry point in a subprocess (else ``cli.main`` in-process)


# ----------------------------------------------------------------------------- builders


def run_args(
    d: Path, cfg: dict | None = None, *extra: str, text: str | bytes | None = None
) -> list[str]:
    p = d / "p.yaml"
    if text is not None:
        (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    else:
        write_yaml(p, cfg if cfg is not None else base())
    return ["run", str(p), "--out", str(d / "out"), *extra]


def with_(path: str, value, cfg: dict | None = None) -> dict:
    """`base()` with one key path set (``portfolios.grid.stop_loss``)."""
    cfg = cfg or base()
    node = cfg
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return cfg


def csv_case(
    mutate: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    *,
    raw: str | None = None,
    data: dict | None = None,
) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        f = d / "prices.csv"
        if raw is not None:
            f.write_text(raw)
        else:
            df = prices()
            if mutate is not None:
                df = mutate(df)
            write_csv(df, f)
        spec = {"source": "csv", "path": "prices.csv", "chunks": {"time": 30}, **(data or {})}
        return run_args(d, base(data=spec))

    return build


def set_cell(row: int, col: str, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({col: object}) if isinstance(value, str) else df
        df.loc[row, col] = value
        return df

    return mutate


def stray_comma(d: Path) -> list[str]:
    f = d / "prices.csv"
    write_csv(prices(), f)
    lines = f.read_text().splitlines()
    lines[5] += ",999"  # line 6 of the file
    f.write_text("\n".join(lines) + "\n")
    return run_args(d, base(data={"source": "csv", "path": "prices.csv"}))


def parquet_case(mutate=None, *, raw: bytes | None = None) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        f = d / "prices.parquet"
        if raw is not None:
            f.write_bytes(raw)
        else:
            df = prices()
            (mutate(df) if mutate is not None else df).to_parquet(f, index=False)
        return run_args(d, base(data={"source": "parquet", "path": "prices.parquet"}))

    return build


def zarr_case(mutate=None, *, empty: bool = False) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        f = d / "prices.zarr"
        if empty:
            f.mkdir()
        else:
            ds = to_dataset(prices())
            with warnings.catch_warnings():  # zarr 3: "consolidated metadata" notice
                warnings.simplefilter("ignore")
                (mutate(ds) if mutate is not None else ds).to_zarr(f, mode="w")
        return run_args(d, base(data={"source": "zarr", "path": "prices.zarr"}))

    return build


def zarr_partial_nan(ds):
    ds = ds.copy(deep=True)
    ds["close"][7, 1] = np.nan  # 8th bar of symbol B: close missing but not the rest
    return ds


# synthetic market of BASE: symbols S000..S003, business days from 2010-01-04
SIG_T0, SIG_T1 = "2010-01-04", "2010-01-05"


def signal_case(
    text: str | None = None,
    *,
    name: str = "sig.csv",
    raw: bytes | None = None,
    missing: bool = False,
) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        f = d / name
        if raw is not None:
            f.write_bytes(raw)
        elif not missing:
            f.write_text(text)
        cfg = base()
        cfg["strategies"]["mine"] = {"kind": "signals", "path": name}
        return run_args(d, cfg)

    return build


def unsafe_yaml(d: Path) -> list[str]:
    payload = f"name: !!python/object/apply:os.system ['touch {d / MARKER}']\n"
    return run_args(d, text=payload + "data: {source: synthetic}\n")


def unsafe_set(d: Path) -> list[str]:
    return run_args(
        d, None, "--set", f"name=!!python/object/apply:os.system ['touch {d / MARKER}']"
    )


def out_is_file(d: Path) -> list[str]:
    (d / "out").write_text("keep me")
    return run_args(d)


def out_exists(d: Path) -> list[str]:
    (d / "out").mkdir()
    (d / "out" / "run.json").write_text('{"run_id": "old"}')
    return run_args(d)


def out_under_file(d: Path) -> list[str]:
    (d / "afile").write_text("keep me")
    args = run_args(d)
    args[args.index("--out") + 1] = str(d / "afile" / "sub")
    return args


#: a case that fails once the run has a cluster (data, signals stages): see `Case.cluster`
OnCluster = functools.partial(Case, cluster=True)

CASES = [
    # --- the pipeline file: syntax, safety, shape
    Case(
        "yaml-syntax",
        lambda d: run_args(d, text="name: x\ndata: {source: synthetic\nfeatures: {}\n"),
        "p.yaml line",
        "YAML syntax",
    ),
    Case("yaml-unsafe-tag", unsafe_yaml, "p.yaml line 1", "tag not allowed"),
    Case(
        "yaml-top-level-list", lambda d: run_args(d, text="- name\n- data\n"), "p.yaml", "mapping"
    ),
    Case("yaml-empty", lambda d: run_args(d, text=""), "p.yaml", "empty"),
    Case("yaml-not-utf8", lambda d: run_args(d, text=b"name: \xff\xfe\n"), "p.yaml", "UTF-8"),
    Case(
        "pipeline-missing",
        lambda d: ["run", str(d / "none.yaml"), "--out", str(d / "out")],
        "none.yaml",
        "not found",
    ),
    Case("pipeline-is-folder", lambda d: ["validate", str(d)], "/case:", "folder"),
    # --- unknown names
    Case(
        "unknown-section",
        lambda d: run_args(d, {**base(), "portfolio": {"capital": 5}}),
        "portfolio",
        "did you mean 'portfolios'",
    ),
    Case(
        "unknown-nested-key",
        lambda d: run_args(d, with_("data.chunk", {"time": 10})),
        "data.chunk",
        "did you mean 'chunks'",
    ),
    Case(
        "unknown-grid-key",
        lambda d: run_args(d, with_("portfolios.grid", {"stoploss": [0.1]})),
        "portfolios.grid",
        "did you mean 'stop_loss'",
    ),
    Case(
        "unknown-source",
        lambda d: run_args(d, with_("data.source", "excel")),
        "data.source",
        "excel",
    ),
    Case(
        "unknown-feature-kind",
        lambda d: run_args(d, with_("features.sma_5", {"kind": "smaa", "window": 5})),
        "features.sma_5",
        "smaa",
    ),
    Case(
        "unknown-feature-param",
        lambda d: run_args(d, with_("features.sma_5", {"kind": "sma", "windw": 5})),
        "features.sma_5",
        "windw",
    ),
    Case(
        "unknown-strategy-kind",
        lambda d: run_args(d, with_("strategies.trend", {"kind": "trend_following"})),
        "strategies.trend",
        "trend_following",
    ),
    Case(
        "strategy-unknown-feature",
        lambda d: run_args(
            d,
            with_("strategies.trend", {"kind": "ma_crossover", "fast": "sma_7", "slow": "sma_20"}),
        ),
        "strategies.trend.fast",
        "sma_7",
    ),
    Case(
        "grid-unknown-strategy",
        lambda d: run_args(d, with_("portfolios.grid", {"strategy": ["trnd"]})),
        "portfolios.grid.strategy",
        "did you mean 'trend'",
    ),
    # --- wrong types, out of range, inconsistent
    Case("wrong-type", lambda d: run_args(d, with_("data.bars", "many")), "data.bars", "many"),
    Case(
        "negative-capital",
        lambda d: run_args(d, with_("portfolios.capital", -5)),
        "portfolios.capital",
        "-5",
    ),
    Case(
        "grid-value-out-of-range",
        lambda d: run_args(d, with_("portfolios.grid.stop_loss", [0.05, 1.5])),
        "portfolios.grid",
        "1.5",
    ),
    Case(
        "zero-chunks",
        lambda d: run_args(d, with_("data.chunks.time", 0)),
        "data.chunks.time",
        "positive",
    ),
    Case(
        "feature-window-zero",
        lambda d: run_args(d, with_("features.sma_5.window", 0)),
        "features.sma_5.window",
        "0",
    ),
    OnCluster(
        "start-after-end",
        lambda d: run_args(d, with_("data.end", "2010-01-10", with_("data.start", "2010-03-01"))),
        "data.start",
        "after",
    ),
    Case(
        "start-not-a-date",
        lambda d: run_args(d, with_("data.start", "yesterday")),
        "data.start",
        "yesterday",
    ),
    OnCluster(
        "window-without-bars",
        lambda d: run_args(d, with_("data.start", "2031-01-01")),
        "data.start",
        "no bars",
    ),
    Case(
        "vol-target-without-feature",
        lambda d: run_args(d, with_("portfolios.sizing", "vol_target")),
        "portfolios.vol_feature",
        "vol_target",
    ),
    Case(
        "ml-workers-above-workers",
        lambda d: run_args(d, with_("cluster.ml_workers", 3)),
        "cluster.ml_workers",
        "3 ML workers",
    ),
    Case(
        "memory-limit-unreadable",
        lambda d: run_args(d, with_("cluster.memory_limit", "lots")),
        "cluster.memory_limit",
        "lots",
    ),
    # --- market data files
    OnCluster(
        "csv-not-found",
        lambda d: run_args(d, base(data={"source": "csv", "path": "nope.csv"})),
        "data.path",
        "nope.csv",
    ),
    OnCluster("csv-empty", csv_case(raw=""), "prices.csv", "empty"),
    OnCluster(
        "csv-missing-column",
        csv_case(lambda df: df.drop(columns="volume")),
        "prices.csv",
        "volume",
    ),
    OnCluster(
        "csv-unknown-column",
        csv_case(lambda df: df.assign(vwap=1.0)),
        "prices.csv",
        "vwap",
    ),
    OnCluster(
        "csv-text-price",
        csv_case(set_cell(3, "close", "abc")),
        "prices.csv row 5",
        "abc",
    ),
    OnCluster(
        "csv-high-below-low",
        csv_case(set_cell(5, "high", 1.0)),
        "prices.csv row 7",
        "high",
    ),
    OnCluster(
        "csv-negative-price",
        csv_case(set_cell(8, "open", -3.0)),
        "prices.csv row 10",
        "not positive",
    ),
    OnCluster(
        "csv-negative-volume",
        csv_case(set_cell(9, "volume", -1.0)),
        "prices.csv row 11",
        "negative",
    ),
    OnCluster(
        "csv-bad-date",
        csv_case(set_cell(2, "time", "2020-13-45")),
        "prices.csv row 4",
        "2020-13-45",
    ),
    OnCluster(
        "csv-duplicate-bar",
        csv_case(lambda df: pd.concat([df, df.iloc[[4]]], ignore_index=True)),
        "prices.csv rows 6 and 182",
        "duplicate bar",
    ),
    OnCluster("csv-stray-comma", stray_comma, "prices.csv row 6", "fields"),
    OnCluster(
        "csv-unknown-symbol",
        csv_case(data={"symbols": ["A", "ZZZ"]}),
        "data.symbols",
        "ZZZ",
    ),
    OnCluster(
        "csv-symbol-count",
        csv_case(data={"symbols": 3}),
        "data.symbols",
        "only applies",
    ),
    OnCluster(
        "parquet-garbage",
        parquet_case(raw=b"this is not parquet\n"),
        "prices.parquet",
        "Parquet",
    ),
    OnCluster(
        "parquet-missing-open",
        parquet_case(set_cell(2, "open", np.nan)),
        "prices.parquet row 3",
        "open",
    ),
    OnCluster(
        "parquet-numeric-time",
        parquet_case(lambda df: df.assign(time=1.5)),
        "prices.parquet row 1",
        "not dates",
    ),
    OnCluster("zarr-not-a-store", zarr_case(empty=True), "prices.zarr", "Zarr"),
    OnCluster(
        "zarr-missing-variable",
        zarr_case(lambda ds: ds.drop_vars("volume")),
        "prices.zarr",
        "volume",
    ),
    OnCluster(
        "zarr-partial-bar",
        zarr_case(zarr_partial_nan),
        "prices.zarr time=2020-01-10",
        "symbol=B",
    ),
    # --- signal replay files (fail in the signals stage, after the cluster starts)
    OnCluster(
        "signal-out-of-range",
        signal_case(f"time,symbol,signal\n{SIG_T0},S000,0.5\n{SIG_T1},S001,2.5\n"),
        "sig.csv row 2",
        "outside [-1, 1]",
    ),
    OnCluster(
        "signal-not-a-number",
        signal_case(f"time,symbol,signal\n{SIG_T0},S000,buy\n"),
        "sig.csv row 1",
        "buy",
    ),
    OnCluster(
        "signal-duplicate",
        signal_case(f"time,symbol,signal\n{SIG_T0},S001,1\n{SIG_T1},S001,1\n{SIG_T0},S001,-1\n"),
        "sig.csv rows 1 and 3",
        "two signals",
    ),
    OnCluster(
        "signal-missing-column",
        signal_case(f"time,symbol,weight\n{SIG_T0},S000,1\n"),
        "sig.csv",
        "'signal' column",
    ),
    OnCluster(
        "signal-bad-time",
        signal_case(f"time,symbol,signal\n{SIG_T0},S000,1\nsoon,S000,1\n"),
        "sig.csv row 2",
        "soon",
    ),
    OnCluster(
        "signal-file-missing",
        signal_case(missing=True),
        "strategies.mine.path",
        "not found",
    ),
    OnCluster(
        "signal-parquet-garbage",
        signal_case(name="sig.parquet", raw=b"PAR1 nonsense"),
        "sig.parquet",
        "cannot read",
    ),
    # --- command-line arguments
    Case(
        "set-without-equals", lambda d: run_args(d, None, "--set", "data.bars"), "--set", "no '='"
    ),
    Case(
        "set-bad-yaml",
        lambda d: run_args(d, None, "--set", "data.bars=[1,"),
        "--set data.bars",
        "[1,",
    ),
    Case(
        "set-unknown-key",
        lambda d: run_args(d, None, "--set", "data.barz=3"),
        "data.barz",
        "did you mean",
    ),
    Case("set-unsafe-tag", unsafe_set, "--set name", "cannot read value"),
    Case(
        "set-into-scalar",
        lambda d: run_args(d, None, "--set", "name.first=1"),
        "--set name.first",
        "not a section",
    ),
    Case(
        "set-batch-size-zero",
        lambda d: run_args(d, None, "--set", "portfolios.batch_size=0"),
        "portfolios.batch_size",
        "0",
    ),
    Case("out-is-a-file", out_is_file, "--out", "is a file"),
    Case("out-exists", out_exists, "--out", "already exists"),
    Case("out-under-a-file", out_under_file, "--out", "afile"),
    Case("unknown-option", lambda d: run_args(d, None, "--bogus"), "--bogus", "unrecognized"),
    Case("unknown-command", lambda d: ["frobnicate", str(d)], "frobnicate", "invalid choice"),
    Case("report-not-a-run", lambda d: ["report", str(d)], "/case:", "run folder"),
    # --- the same through the real entry point (exit status of the process itself)
    Case("proc-unsafe-tag", unsafe_yaml, "p.yaml line 1", "tag not allowed", proc=True),
    Case(
        "proc-csv-bad-row",
        csv_case(set_cell(3, "close", "n/a?")),
        "prices.csv row 5",
        "n/a?",
        proc=True,
    ),
    Case(
        "proc-zarr-partial-bar",
        zarr_case(zarr_partial_nan),
        "prices.zarr time=2020-01-10",
        "symbol=B",
        proc=True,
    ),
    Case(
        "proc-signal-out-of-range",
        signal_case(f"time,symbol,signal\n{SIG_T0},S002,-1.01\n"),
        "sig.csv row 1",
        "outside [-1, 1]",
        cluster=True,
        proc=True,
    ),
    Case(
        "proc-set-range",
        lambda d: run_args(d, None, "--set", "portfolios.grid.stop_loss=[2]"),
        "portfolios.grid",
        "2",
        proc=True,
    ),
]


def _snapshot(d: Path) -> dict[str, bytes | None]:
    """Every path under `d` with its bytes (None for folders)."""
    return {
        str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(d.rglob("*"))
    }


def _run(case: Case, args: list[str], capsys, address: str | None) -> tuple[int, str, str]:
    if case.cluster:
        args = [*args, "--address", address]
    if case.proc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # as a user runs it
        proc = subprocess.run(
            [sys.executable, "-m", "admf_dask.cli", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env=env,
        )
        return proc.returncode, proc.stdout, proc.stderr
    from admf_dask.cli import main

    # main() sets up the process's logging and SIGTERM handler: give this process them back
    logger = logging.getLogger("admf_dask")
    saved = (logger.handlers[:], logger.propagate, logger.level, signal.getsignal(signal.SIGTERM))
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    finally:
        logger.handlers[:], logger.propagate, logger.level = saved[:3]
        signal.signal(signal.SIGTERM, saved[3])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def address(request):
    """The session cluster's scheduler, for cases that fail after the cluster starts."""
    if not any(c.cluster for c in CASES):
        return None
    return request.getfixturevalue("client").scheduler.address


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys, address):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    monkeypatch.chdir(case_dir)
    args = case.build(case_dir)
    before = _snapshot(case_dir)
    rc, out, err = _run(case, args, capsys, address)

    assert rc == 2, (rc, err[-3000:])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in err + out
    assert case.where in line, f"where {case.where!r} missing: {line}"
    assert case.what.lower() in line.lower(), f"what {case.what!r} missing: {line}"
    assert "; " in line.split(case.where, 1)[1], f"no fix after the where/what: {line}"
    # nothing written, nothing overwritten, nothing executed
    assert _snapshot(case_dir) == before
    assert not (case_dir / MARKER).exists()
    assert not any(".tmp-" in p.name for p in case_dir.rglob("*"))


# ----------------------------------------------------------------------------- model files


class Payload:
    """Unpickling this creates the marker file: proof that loading executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A folder with one valid tiny XGBoost model and one valid tiny MLP (torch) model."""
    from admf_dask.ml.models import FORMAT, ModelBundle, blob_sha256, default_params, fit
    from admf_dask.ml.registry import load_model, save_model

    d = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    ids = {}
    for kind, params in (
        ("xgboost", {"n_estimators": 3, "max_depth": 2}),
        ("mlp", {"hidden": 4, "layers": 1, "epochs": 1}),
    ):
        blob, arch = fit(kind, x, y, {**default_params(kind), **params}, seed=1)
        mid = f"{kind}0123456789abcdef"
        meta = {
            "format": FORMAT,
            "model_id": mid,
            "kind": kind,
            "features": ["a", "b", "c"],
            "mean": [0.0] * 3,
            "std": [1.0] * 3,
            "arch": arch,
            "sha256": blob_sha256(blob),
        }
        save_model(d, ModelBundle(kind, meta, blob))
        load_model(d, mid)  # the valid ones load
        ids[kind] = mid
    return d, ids


def _sidecar(d: Path, mid: str) -> dict:
    return json.loads((d / f"{mid}.json").read_text())


def _write_sidecar(d: Path, mid: str, meta: dict) -> None:
    (d / f"{mid}.json").write_text(json.dumps(meta))


def m_pickle_blob(d, ids, marker):
    mid = ids["xgboost"]
    blob = pickle.dumps(Payload(marker))
    (d / f"{mid}.ubj").write_bytes(blob)
    meta = _sidecar(d, mid)
    meta["sha256"] = (
        __import__("hashlib").sha256(blob).hexdigest()
    )  # checksum agrees: format must refuse
    _write_sidecar(d, mid, meta)
    return mid, f"{mid}.ubj", "not an XGBoost"


def m_truncated(d, ids, marker):
    mid = ids["xgboost"]
    f = d / f"{mid}.ubj"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return mid, f"{mid}.ubj", "truncated"


def m_truncated_unchecked(d, ids, marker):
    mid = ids["xgboost"]
    f = d / f"{mid}.ubj"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    meta = _sidecar(d, mid)
    del meta["sha256"]  # no checksum: the parser itself must refuse
    _write_sidecar(d, mid, meta)
    return mid, f"{mid}.ubj", "XGBoost"


def m_foreign_json(d, ids, marker):
    mid = ids["xgboost"]
    _write_sidecar(d, mid, {"name": "someone else's model", "version": 3})
    return mid, f"{mid}.json", "not an admf-dask model"


def m_invalid_json(d, ids, marker):
    mid = ids["xgboost"]
    (d / f"{mid}.json").write_text('{"format": "admf-dask-model/1", ')
    return mid, f"{mid}.json", "unreadable"


def m_missing_fields(d, ids, marker):
    mid = ids["xgboost"]
    meta = _sidecar(d, mid)
    del meta["mean"], meta["arch"]
    _write_sidecar(d, mid, meta)
    return mid, f"{mid}.json", "lacks"


def m_unknown_id(d, ids, marker):
    return "feedfacefeedface", "feedfacefeedface.json", "no model"


def m_torch_raw_pickle(d, ids, marker):
    mid = ids["mlp"]
    blob = pickle.dumps(Payload(marker))
    (d / f"{mid}.pt").write_bytes(blob)
    meta = _sidecar(d, mid)
    meta["sha256"] = __import__("hashlib").sha256(blob).hexdigest()
    _write_sidecar(d, mid, meta)
    return mid, f"{mid}.pt", "zip archive expected"


def m_torch_zip_payload(d, ids, marker):
    """A real torch.save archive whose pickle would run code: weights_only must refuse it."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save({"net.0.weight": Payload(marker)}, buf)
    blob = buf.getvalue()
    mid = ids["mlp"]
    (d / f"{mid}.pt").write_bytes(blob)
    meta = _sidecar(d, mid)
    meta["sha256"] = __import__("hashlib").sha256(blob).hexdigest()
    _write_sidecar(d, mid, meta)
    return mid, f"{mid}.pt", "refused"


def m_wrong_architecture(d, ids, marker):
    mid = ids["mlp"]
    meta = _sidecar(d, mid)
    meta["arch"] = {**meta["arch"], "hidden": 99}
    _write_sidecar(d, mid, meta)
    return mid, f"{mid}.pt", "mlp"


MODEL_CASES = {
    "pickle-as-xgboost": m_pickle_blob,
    "truncated-checksum": m_truncated,
    "truncated-no-checksum": m_truncated_unchecked,
    "foreign-json-sidecar": m_foreign_json,
    "invalid-json-sidecar": m_invalid_json,
    "sidecar-missing-fields": m_missing_fields,
    "unknown-model-id": m_unknown_id,
    "pickle-as-torch": m_torch_raw_pickle,
    "torch-zip-with-payload": m_torch_zip_payload,
    "architecture-mismatch": m_wrong_architecture,
}


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_bad_model_file(name, models, tmp_path):
    from admf_dask.ml.registry import load_model

    src, ids = models
    d = tmp_path / "models"
    shutil.copytree(src, d)
    marker = tmp_path / MARKER
    mid, where, what = MODEL_CASES[name](d, ids, marker)
    with pytest.raises(ModelFileError) as info:
        load_model(d, mid)
    line = info.value.line
    assert "\n" not in line and "Traceback" not in line
    assert where in line, line
    assert what.lower() in line.lower(), line
    assert not marker.exists(), "loading a model file executed code"


def test_case_count():
    """The table covers at least 30 kinds of bad input."""
    assert len(CASES) + len(MODEL_CASES) >= 30
