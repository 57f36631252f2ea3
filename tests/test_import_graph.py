"""The package's layers import one way (docs/ARCHITECTURE.md): no cycle between subpackages,
kernels on numpy/numba/the standard library only, and a worker importing a kernel module loads
neither pydantic nor distributed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import admf_dask

PKG = Path(admf_dask.__file__).parent
ROOT = "admf_dask"
KERNEL_OK = {"numpy", "numba", "math"} | set(sys.stdlib_module_names)

#: edges of known cycles, allowed only until they are gone (each names what keeps it)
TEMPORARY: dict[tuple[str, str], str] = {}
#: modules that are units of their own, below the stages: the pipeline file's plain pydantic
#: models, which stages may import (docs/ARCHITECTURE.md), apart from the loader in `config`
OWN_UNITS = ("admf_dask.config.models",)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((ROOT, *parts))] = path
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every module an import statement names (module level and inside functions), with line."""
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            # ``from pkg import name``: name may be a submodule
            found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
    return found


def _unit(module: str) -> str:
    """The subpackage (or top-level module) of an admf_dask module."""
    if module in OWN_UNITS:
        return module.removeprefix(ROOT + ".")
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def _graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> ["module:line", ...]."""
    mods = _modules()
    graph: dict[str, dict[str, list[str]]] = {}
    for mod, path in mods.items():
        src = _unit(mod)
        for target, line in _imports(mod, path):
            if target != ROOT and not target.startswith(ROOT + "."):
                continue
            while target not in mods and "." in target:  # ``from pkg import attr``
                target = target.rsplit(".", 1)[0]
            dst = _unit(target)
            if dst not in (src, ROOT):
                graph.setdefault(src, {}).setdefault(dst, []).append(f"{mod}:{line}")
    return graph


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_subpackages():
    graph = _graph()
    edges = {s: {d for d in ds if (s, d) not in TEMPORARY} for s, ds in graph.items()}
    cycles = _cycles(edges)
    detail = [
        f"{' <-> '.join(c)}: "
        + "; ".join(
            f"{s}->{d} ({', '.join(graph[s][d][:3])})"
            for s in c
            for d in sorted(edges.get(s, ()))
            if d in c
        )
        for c in cycles
    ]
    assert not cycles, "import cycles between subpackages:\n" + "\n".join(detail)


def test_temporary_cycle_edges_still_exist():
    # an allowance outliving its edge would hide the next cycle through it
    graph = _graph()
    stale = [edge for edge in TEMPORARY if edge[1] not in graph.get(edge[0], {})]
    assert not stale, f"remove from TEMPORARY: {stale}"


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _pure(mod: str, mods: dict[str, Path], seen: set[str]) -> list[str]:
    """What makes an admf_dask module impure for a kernel: its imports outside numpy, numba,
    the standard library and other pure admf_dask modules (e.g. ``portfolio.enums``)."""
    if mod in seen:
        return []
    seen.add(mod)
    bad = []
    for target, line in _imports(mod, mods[mod]):
        top = target.split(".")[0]
        if top == ROOT:
            while target not in mods and "." in target:  # ``from pkg import attr``
                target = target.rsplit(".", 1)[0]
            if target == ROOT or target not in mods:
                continue
            bad += [f"{mod}:{line} -> {b}" for b in _pure(target, mods, seen)]
        elif top not in KERNEL_OK:
            bad.append(f"{mod}:{line} {target}")
    return bad


def _kernel_modules() -> dict[str, Path]:
    return {m: p for m, p in _modules().items() if p.name == "_kernels.py"}


def test_kernel_modules_import_only_numpy_numba_and_the_standard_library():
    mods = _modules()
    kernels = _kernel_modules()
    assert len(kernels) >= 4
    bad = [b for mod in kernels for b in _pure(mod, mods, set())]
    assert not bad, bad


def test_the_purity_check_follows_package_imports(tmp_path):
    mods = {"admf_dask.a._kernels": tmp_path / "k.py", "admf_dask.a.enums": tmp_path / "e.py"}
    mods["admf_dask.a._kernels"].write_text("import numpy\nfrom admf_dask.a.enums import X\n")
    mods["admf_dask.a.enums"].write_text("import pandas\nX = 1\n")
    assert _pure("admf_dask.a._kernels", mods, set()) == [
        "admf_dask.a._kernels:2 -> admf_dask.a.enums:1 pandas"
    ]


def test_importing_a_kernel_module_loads_neither_pydantic_nor_distributed():
    names = ", ".join(sorted(_kernel_modules()))
    code = (
        f"import sys, {names}\n"
        "print(sorted(m for m in ('pydantic', 'distributed', 'dask', 'xarray') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_workers_modules_load_no_pydantic():
    """What the workers' server preloads and what a cache-hit run's tasks import (data, cached
    features and signals, the portfolio chain, the research stage) leaves pydantic out: it is a
    tenth of a second of every run's start (docs/ARCHITECTURE.md)."""
    from admf_dask.cluster._server import FORKSERVER_PRELOAD

    task_modules = (
        "admf_dask.data.lazy",
        "admf_dask.cache.arrays",
        "admf_dask.portfolio.tasks",
        "admf_dask.research.stage",
    )
    code = (
        "import importlib, sys\n"
        f"for m in {[*FORKSERVER_PRELOAD, *task_modules]!r}:\n"
        "    importlib.import_module(m)\n"
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr
