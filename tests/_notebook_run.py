"""Run notebooks top to bottom, headless, at small settings, and check their outputs.

Shared by ``tests/test_notebooks.py`` (``make test``) and ``make notebooks-test`` (from the
notebooks install alone: needs only nbformat and nbclient, both in the ``notebooks`` extra)::

    python tests/_notebook_run.py notebooks/*.ipynb
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def run_notebook(path: Path, out: Path) -> None:
    """Execute ``path`` (``ADMF_NB_SMALL=1``, runs written under ``out``) and check it.

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        A cell raised.
    AssertionError
        An error output, or a cell that calls ``show(`` without an inline (bokeh / HTML) output.
    """
    import nbformat
    from nbclient import NotebookClient

    saved = {k: os.environ.get(k) for k in ("ADMF_NB_SMALL", "ADMF_NB_OUT")}
    os.environ.update(ADMF_NB_SMALL="1", ADMF_NB_OUT=str(out))  # the kernel inherits them
    try:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, (path.name, errors)
    # plots are inline: bokeh output present where the notebook shows a figure
    for c in nb.cells:
        if c.cell_type == "code" and "show(" in c.source:
            kinds = {k for o in c.outputs for k in o.get("data", {})}
            assert any("bokeh" in k or k == "text/html" for k in kinds), (path.name, kinds)


def main(paths: list[str]) -> int:
    failed = []
    for name in paths:
        with tempfile.TemporaryDirectory(prefix="admf-nb-") as out:
            try:
                run_notebook(Path(name).resolve(), Path(out))
            except Exception as exc:  # noqa: BLE001 - reported, then the next notebook
                failed.append(name)
                print(f"FAILED {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            else:
                print(f"ok {name}")
    return 1 if failed or not paths else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
