"""Tutorial 11 (deep convolutional PC), executed at its small settings (``PCFRAME_SMALL=1``: depths 3 and 15,
4 epochs on scikit-learn's digits, about 110 s on 2 CPU cores).

Measured (seed 0): test accuracy backprop / PC / ePC 0.960 / 0.929 / 0.945 at 3 layers and 0.919 / 0.466 / 0.919
at 15; the per-node energies after PC's inference span 14.9 orders of magnitude at 15 layers (ePC's 3.0), and
the diagnosis finds PC's errors imbalanced and ePC's network healthy. The full-size run (depths 3, 5, 9, 15,
6 epochs) is stored in the notebook's outputs.
"""

import pytest

from tests.tutorials.notebook_runner import run_notebook


@pytest.mark.notebook
def test_deep_conv_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("PCFRAME_SMALL", "1")
    names = ["backprop_shallow", "pc_shallow", "backprop_deep", "pc_deep", "epc_deep", "pc_span", "epc_span"]
    names += ["deepest", "pc_findings", "epc_findings"]
    r = run_notebook("11_deep_conv_pc.ipynb", names, tmp_path)
    assert r["figures"] >= 2, "accuracy by depth, the diagnosis"
    assert r["deepest"] == 15
    assert r["backprop_shallow"] - r["pc_shallow"] < 0.08, "PC learns as well as backprop at 3 layers"
    assert r["backprop_deep"] > 0.8
    assert r["pc_deep"] < r["backprop_deep"] - 0.25, "plain PC falls far behind at 15 layers"
    assert r["epc_deep"] > r["backprop_deep"] - 0.06, "ePC stays with backprop at 15 layers"
    assert r["pc_span"] > 8 > r["epc_span"], "PC's errors vanish towards the input, ePC's do not"
    assert r["pc_findings"] >= 1 and r["epc_findings"] == 0
