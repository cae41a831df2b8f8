"""Tutorial 8 (μPC at depth), executed end to end at its small settings (``PCFRAME_SMALL=1``: depths 8 and 32,
one epoch on 4,000 MNIST digits).

Measured on CPU (2 shared cores, seed 0, about 40 s): test accuracy after one epoch, 8 / 32 layers:
standard PC 0.726 / 0.286, μPC 0.834 / 0.823, backprop 0.885 at 8 layers (gap to μPC at 32: 0.062). At
initialisation the last of the 127 hidden activities of a 128-layer standard-parametrised net is 8.6e3 times the
size of the first, μPC's 1.25 times; ActivityDecay(0.5) shrinks the inferred activities to 0.94 of their size.
The floors leave room for other platforms while failing if μPC stops training deep networks, if standard PC stops
failing at depth, or if μPC's forward pass stops being depth-stable. The full-size run (8, 32, 128 layers,
5 epochs) is stored in the notebook's outputs.
"""

import pytest

from tests.tutorials.notebook_runner import run_notebook


@pytest.mark.notebook
def test_mupc_depth_notebook(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.setenv("PCFRAME_SMALL", "1")
    r = run_notebook(
        "08_mupc_depth.ipynb",
        [
            "mupc_deep_accuracy",
            "standard_deep_accuracy",
            "backprop_shallow_accuracy",
            "gap_to_backprop",
            "forward_growth_sp",
            "forward_growth_mupc",
            "activity_decay_shrinks",
        ],
        tmp_path,
    )
    assert r["figures"] >= 2, "activity sizes at initialisation, accuracy by depth"
    assert r["mupc_deep_accuracy"] >= 0.78
    assert r["backprop_shallow_accuracy"] >= 0.85
    assert r["standard_deep_accuracy"] <= 0.5, "standard PC fails at depth"
    assert r["gap_to_backprop"] <= 0.09
    assert r["forward_growth_sp"] > 100 and 0.2 < r["forward_growth_mupc"] < 5
    assert r["activity_decay_shrinks"] < 1
