"""Every notebook runs top to bottom (small settings) through nbclient, and everything it needs
is declared: the core dependencies or the ``notebooks`` extra (the README's install line)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import nbformat
import pytest
from _notebook_run import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
INSTALL_LINE = "pip install torch==2.13.0 -e '.[notebooks]'"
# needed at run time without an import in a cell, and so declared in the notebooks extra
RUNTIME = {
    "jupyterlab": "make notebooks",
    "ipykernel": "the notebooks' kernel",
    "ipywidgets": "ad.run's progress bar in a notebook (distributed.progress(notebook=True))",
    "matplotlib": "xarray's .plot() in the README tour",
    "nbclient": "make notebooks-test",
}


def _canonical(requirement: str) -> str:
    """``"dask[distributed]>=2026.1"`` -> ``"dask"`` (PEP 503 normalized)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_canonical(r) for r in project["dependencies"]}
    extra = {_canonical(r) for r in project["optional-dependencies"]["notebooks"]}
    return core | {_canonical(project["name"])}, extra


def _imports(path: Path) -> set[str]:
    """Top-level modules the code cells import (IPython ``%`` / ``!`` lines left out)."""
    found: set[str] = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        src = "\n".join(ln for ln in lines if not ln.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_notebooks_need_only_what_their_install_line_installs():
    core, extra = _declared()
    dists = packages_distributions()
    undeclared = {}
    for path in NOTEBOOKS:
        for module in sorted(_imports(path) - set(sys.stdlib_module_names)):
            names = {_canonical(d) for d in dists.get(module, [module])}
            if not names & (core | extra):
                undeclared.setdefault(path.name, []).append(f"{module} ({', '.join(names)})")
    assert not undeclared, f"imported but not in the core deps or the notebooks extra: {undeclared}"
    missing = {name: why for name, why in RUNTIME.items() if name not in extra}
    assert not missing, f"the notebooks extra lacks {missing}"
    # the README gives the same install line as `make notebooks` / `make notebooks-test`
    assert INSTALL_LINE in (ROOT / "README.md").read_text()
    assert INSTALL_LINE.replace("pip install", "$(BIN)/pip install -q") in (
        (ROOT / "Makefile").read_text()
    )


def test_ci_runs_the_notebooks_once_from_their_install():
    """`.ci/run` leaves them out of ``make test`` only because ``make notebooks-test`` runs them,
    from the notebooks venv, with the same checks as `test_notebook_runs`."""
    ci = (ROOT / ".ci" / "run").read_text()
    make = (ROOT / "Makefile").read_text()
    assert 'make test TEST_MARKERS="not notebooks"' in ci
    assert "make notebooks-test VENV=.venv-notebooks" in ci
    recipe = make.split("\nnotebooks-test:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/python tests/_notebook_run.py notebooks/*.ipynb" in recipe, recipe
    assert '-m "$(TEST_MARKERS)"' in make.split("\ntest:", 1)[1].split("\n\n", 1)[0]


# `.ci/run` deselects these (-m "not notebooks") and runs the same check from the notebooks
# install alone (`make notebooks-test`): once per CI run, where a missing extra would show
@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    run_notebook(path, tmp_path)
