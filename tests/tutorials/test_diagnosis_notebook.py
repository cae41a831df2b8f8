"""Tutorial 13 (`pcframe.diagnosis`), executed end to end: three broken networks, diagnosed, fixed as the advice says.

Measured on CPU (seed 0, two moons): an inference step of 3.0 gives one finding, inference_diverging, with the
energy rising 1.1e8 times its starting value; halving the step until the diagnosis is clean, again after each
epoch as the network stiffens (0.75, 0.375, 0.1875), trains to 0.87 test accuracy in three epochs, against 0.50 at
step 3.0. A model that forgets to clamp its target has output energy exactly 0 (one finding) and stays at 0.50;
clamped, 0.85 after one epoch. A 10-layer plain tanh network ends 20 inference steps with energies spanning 14 orders of
magnitude (errors_imbalanced: 2e-15 at the first node); μPC at the same depth spans 4.9 and has no
finding. The floors leave room for other platforms.
"""

import pytest

from tests.tutorials.notebook_runner import run_notebook


@pytest.mark.notebook
def test_diagnosis_notebook(tmp_path):
    r = run_notebook(
        "13_diagnosis.ipynb",
        [
            "diverging_before",
            "diverging_rise",
            "diverging_after",
            "accuracy_large_step",
            "accuracy_fixed_step",
            "clamp_before",
            "output_energy_before",
            "clamp_after",
            "accuracy_unclamped",
            "accuracy_clamped",
            "deep_before",
            "deep_after",
            "energy_span_plain",
            "energy_span_mupc",
            "untouched",
        ],
        tmp_path,
    )
    assert r["figures"] >= 5, "a report figure before and after each fix"
    assert r["diverging_before"] >= 1 and r["diverging_rise"] > 1, "the energy ends above where it started"
    assert r["diverging_after"] == 0
    assert r["accuracy_fixed_step"] >= 0.8 and r["accuracy_large_step"] <= 0.6
    assert r["clamp_before"] >= 1 and r["output_energy_before"] == 0.0
    assert r["clamp_after"] == 0
    assert r["accuracy_clamped"] >= 0.75 and r["accuracy_unclamped"] <= 0.6
    assert r["deep_before"] >= 1 and r["energy_span_plain"] > 8
    assert r["deep_after"] == 0 and r["energy_span_mupc"] < 8
    assert r["untouched"] == 1.0
