"""Executing a tutorial notebook in a fresh kernel and reading back the numbers it computed."""

import json
import pathlib
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

TUTORIALS = pathlib.Path(__file__).resolve().parents[2] / "tutorials"


def run_notebook(name, variables, cwd):
    """Execute `tutorials/name` and return the listed variables of its namespace, plus the number of figures."""
    notebook = nbformat.read(TUTORIALS / name, as_version=4)
    names = ", ".join(f"{v!r}: float({v})" for v in variables)
    notebook.cells.append(nbformat.v4.new_code_cell(f"import json\nprint('RESULTS=' + json.dumps({{{names}}}))"))
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    match = re.search(r"^RESULTS=(.*)$", text, re.MULTILINE)
    assert match is not None, text
    results = json.loads(match.group(1))
    results["figures"] = sum("image/png" in o.get("data", {}) for o in outputs)
    return results
