"""Every notebook runs top to bottom (small settings) through nbclient."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("ADMF_NB_SMALL", "1")
    monkeypatch.setenv("ADMF_NB_OUT", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # plots are inline: bokeh output present where the notebook shows a figure
    shows = [c for c in nb.cells if c.cell_type == "code" and "show(" in c.source]
    for c in shows:
        kinds = {k for o in c.outputs for k in o.get("data", {})}
        assert any("bokeh" in k or k == "text/html" for k in kinds), (path.name, kinds)
