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
TEMPORARY: dict[tuple[str, str], str] = {
    ("data", "config"): "data/load.py validates dict specs with config.models.DataConfig",
}


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


def test_kernel_modules_import_only_numpy_numba_and_the_standard_library():
    kernels = {m: p for m, p in _modules().items() if p.name == "_kernels.py"}
    assert len(kernels) >= 4
    bad = {
        f"{mod}:{line}": target  # the first name of a line is the module it imports from
        for mod, path in kernels.items()
        for target, line in reversed(_imports(mod, path))
        if target.split(".")[0] not in KERNEL_OK
    }
    assert not bad, bad


def test_importing_a_kernel_module_loads_neither_pydantic_nor_distributed():
    code = (
        "import sys, admf_dask.features._kernels\n"
        "print(sorted(m for m in ('pydantic', 'distributed', 'dask', 'xarray') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
