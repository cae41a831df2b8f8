"""Finding 6: non-finite values, naming the first node or parameter where they appear.

The probe computes the library's own non-finite report (`pcframe.inference._finite.nonfinite_report`) of the
feedforward pass and of the end of inference (node energies, in `iter_vodes` order, then weight gradients);
the weight steps run ``train_supervised(..., check_finite=True)``, whose `FloatingPointError` names the
culprit (`pcframe.inference._finite.raise_if_not_finite`). The first culprit, earliest stage first, is the
finding (quantity: the stage, value NaN). The other findings are skipped when the probe is not finite:
their measurements would be NaN.

**Example:** a weight of ``layers[1]`` set to NaN gives the finding ``nonfinite at vodes[1]: energy after
the feedforward pass = nan``.
"""

from __future__ import annotations

from ._measure import Measurements
from ._report import Finding
from ._thresholds import Thresholds

ADVICE = {
    "the feedforward pass": "The feedforward pass is already not finite there: check the weights, inputs and "
    "activation of the layer feeding it (a NaN weight, an input with NaN or inf, an overflowing activation).",
    "inference": "Inference blows up there: lower the inference step size (or use ODEInference, whose adaptive "
    "steps stay stable) and check the layer feeding it.",
    "the weight gradient": "The weight gradient is not finite there: check that layer's inputs and activation.",
    "a weight step": "A weight step is not finite there: lower the weight learning rate (the step was skipped).",
}


def nonfinite_findings(m: Measurements, thresholds: Thresholds) -> list[Finding]:
    """The non-finite finding, if any (no threshold: any NaN or inf)."""
    if m.nonfinite is None:
        return []
    stage, name = m.nonfinite
    quantity = "gradient" if stage in ("the weight gradient",) else "energy"
    return [
        Finding(
            "nonfinite",
            name,
            f"{quantity} after {stage}" if stage != "a weight step" else "energy or gradient of a weight step",
            float("nan"),
            float("inf"),
            True,
            ADVICE[stage],
        )
    ]
