"""Bad cross-sectional input through the CLI: exit 2, one error line, nothing written."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml
from _cli import main

BASE = {
    "name": "xs",
    "data": {"source": "synthetic", "symbols": 8, "bars": 120, "seed": 3, "chunks": {"time": 50}},
    "features": {
        "mom": {"kind": "roc", "window": 5},
        "mom_rank": {"kind": "rank", "input": "mom"},
    },
    "strategies": {"book": {"kind": "top_k", "feature": "mom_rank", "k": 2, "short_k": 2}},
    "portfolios": {"capital": 100000, "allow_short": True},
    "cluster": {"n_workers": 1, "threads_per_worker": 1, "ml_workers": 0},
    "output": {"path": "runs/xs", "report": False},
}


def _run(tmp_path: Path, cfg: dict, client) -> tuple[subprocess.CompletedProcess, Path]:
    """``admf-dask run`` in-process (tests/_cli.py) on the session's cluster (``--address``: a
    universe table is read once the run has a cluster); the entry point's own exit status and
    stderr, with its own cluster, are checked in tests/reliability/test_rel_bad_input.py."""
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "runs" / "xs"
    return main("run", str(p), "--out", str(out), "--address", client.scheduler.address), out


def _bad(**edits):
    cfg = copy.deepcopy(BASE)
    for path, value in edits.items():
        node = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return cfg


CASES = [
    (
        _bad(features__mom={"kind": "sma", "window": 3, "input": "mom_rank"}),
        "features.mom",
        "cycle: mom",
    ),
    (_bad(features__mom_rank={"kind": "rank", "input": "nope"}), "features.mom_rank.input", "nope"),
    (_bad(strategies__book__k=0), "strategies.book.k", ""),
    (_bad(strategies__book__short_k=-1), "strategies.book.short_k", ""),
    (_bad(strategies__book__every=0), "strategies.book.every", ""),
    (_bad(strategies__book__buffer=-2), "strategies.book.buffer", ""),
    (_bad(data__universe="missing.csv"), "data.universe", "does not exist"),
]


@pytest.mark.parametrize(("cfg", "where", "words"), CASES)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, client, cfg, where, words):
    proc, out = _run(tmp_path, cfg, client)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert where in lines[0] and words in lines[0], lines[0]
    assert not out.exists()


def test_bad_universe_table_exits_2(tmp_path, client):
    (tmp_path / "u.csv").write_text("symbol,start,end\nS000,2010-05-01,2010-01-01\n")
    proc, out = _run(tmp_path, _bad(data__universe="u.csv"), client)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "data.universe" in proc.stderr and "is after end" in proc.stderr
    assert not out.exists()


def test_run_with_a_universe_warns_about_unknown_symbols(tmp_path, client):
    rows = ["symbol,start,end", "S000,2010-01-04,", "S001,2010-02-01,2010-04-01"]
    rows += [f"S00{i},2010-01-04," for i in range(2, 8)] + ["GHOST,2010-01-04,"]
    (tmp_path / "u.csv").write_text("\n".join(rows) + "\n")
    proc, out = _run(tmp_path, _bad(data__universe="u.csv"), client)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GHOST" in proc.stdout + proc.stderr
    assert (out / "run.json").exists()
