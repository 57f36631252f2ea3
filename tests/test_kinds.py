"""The strategy-kind registry shared by admf_dask.strategies and admf_dask.ml, which never import
each other: each imports alone in a fresh interpreter, and the registry finds every built-in kind
on its first look-up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "admf_dask"


def _imports(folder: Path) -> dict[str, set[str]]:
    """Module file -> every module it imports (at any depth of the file, lazily or not)."""
    out: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
        out[path.name] = names
    return out


def test_ml_and_strategies_do_not_import_each_other():
    for folder, other in (("ml", "admf_dask.strategies"), ("strategies", "admf_dask.ml")):
        for module, names in _imports(PACKAGE / folder).items():
            bad = sorted(n for n in names if n == other or n.startswith(other + "."))
            assert not bad, f"admf_dask/{folder}/{module} imports {bad}"


def _fresh(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_each_imports_alone_and_the_registry_has_every_kind():
    out = _fresh(
        "import sys, admf_dask.ml\n"
        "print(any(m.startswith('admf_dask.strategies') for m in sys.modules))"
    )
    assert out == "False"
    out = _fresh(
        "import sys, admf_dask.strategies as s\n"
        "print(any(m.startswith('admf_dask.ml') for m in sys.modules))\n"
        "print(' '.join(sorted(s.STRATEGIES)))"
    )
    loaded, kinds = out.splitlines()
    assert loaded == "False"  # until the registry's first look-up
    assert set(kinds.split()) >= {"ma_crossover", "signals", "xgboost", "mlp", "lstm"}


def test_register_builtin_kinds_runs_once():
    from admf_dask.kinds import STRATEGIES, register_builtin_kinds

    assert "xgboost" in STRATEGIES  # the first look-up registered them
    assert register_builtin_kinds() == []
    sk = STRATEGIES["xgboost"]
    assert sk.takes_name and sk.cache_salt is not None and sk.explain_zero is not None
    assert STRATEGIES["ma_crossover"].cache_salt is None
