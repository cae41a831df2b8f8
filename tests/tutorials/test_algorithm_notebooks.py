"""Tutorials 09 (ePC) and 10 (bidirectional PC, predictive dendrites), executed at their small setting.

``PCFRAME_SMALL=1`` makes each notebook run in about 20-40 s on 2 shared CPU cores. Measured (seed 0):

- 09, small (depths 2, 4, 8; PC budget 1000 steps): steps to 1% of the equilibrium PC 92 / 236 / 456,
  ePC 32 / 31 / 31, i.e. 15x at 8 hidden layers; final energies equal to 8e-8. Full size adds 16 hidden
  layers, where PC is still 1.8% away after 4000 steps and ePC takes 30 (over 130x).
- 10, small (3 epochs): test accuracy 0.929; every generated digit is nearest its own class mean and is
  classified as its label; full size (10 epochs): 0.942. Predictive dendrites: weight gradients at
  a_d = 1 and 1 + 1e-6 differ by 2e-7.
"""

import pytest

from tests.tutorials.notebook_runner import run_notebook


@pytest.mark.notebook
def test_epc_notebook(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.setenv("PCFRAME_SMALL", "1")
    r = run_notebook("09_epc.ipynb", ["speedup_deepest", "same_energy", "deepest"], tmp_path)
    assert r["figures"] >= 1
    assert r["deepest"] == 8
    assert r["speedup_deepest"] >= 10, "ePC reaches the equilibrium in at least 10x fewer steps at the deepest setting"
    assert r["same_energy"] < 1e-4, "both reach the same minimum"


@pytest.mark.notebook
def test_bidirectional_notebook(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.setenv("PCFRAME_SMALL", "1")
    r = run_notebook(
        "10_bidirectional_pc.ipynb",
        ["bpc_accuracy", "generation_match", "self_consistency", "local_residual", "gradient_jump"],
        tmp_path,
    )
    assert r["figures"] >= 3
    assert r["bpc_accuracy"] >= 0.90, "3 epochs at the small setting (10 epochs reach 0.942)"
    assert r["generation_match"] >= 0.9, "generated digits look like their class"
    assert r["self_consistency"] >= 0.9, "the model classifies its own generated digits as their label"
    assert r["local_residual"] < 1e-2, "predictive dendrites' local inference settles"
    assert r["gradient_jump"] < 1e-5, "weight gradients are continuous at weights 1"
