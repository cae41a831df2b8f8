"""Finding 5: the output energy vanishes while the accuracy stays low (the output does not see the target).

With the target clamped at the output, the output energy after the feedforward pass is the loss: it can be
near zero only when the predictions match the targets. Measured: the output energy $E_L^{\\text{ff}}$ (batch
mean) and the feedforward accuracy (or, with one output unit, the squared error
$\\frac1N\\sum_i\\frac12\\lVert\\hat y_i - y_i\\rVert^2$). A finding when $E_L^{\\text{ff}} <$
`Thresholds.output_energy` (1e-6) while the accuracy is below `Thresholds.accuracy` (0.9) or the squared
error above `Thresholds.target_error` (1e-3).

Typical causes: ``model(x, y)`` never clamps `y` (the output keeps its prediction, energy exactly 0);
targets that are not one-hot (``jax.nn.one_hot(labels, 10)`` of labels 1..10 gives rows of zeros, whose
cross-entropy is 0); an output node given `pcframe.pc.zero_energy`.

**Example:** a model whose ``__call__`` forgets ``self.vodes[-1].set("h", y)`` has output energy 0 and
chance accuracy: one finding, naming the output node.
"""

from __future__ import annotations

from ._measure import Measurements
from ._report import Finding
from ._thresholds import Thresholds


def output_findings(m: Measurements, thresholds: Thresholds) -> list[Finding]:
    """The vanishing-output-energy finding, if any."""
    if not m.loss < thresholds.output_energy:
        return []
    if m.accuracy is not None:
        wrong = m.accuracy < thresholds.accuracy
        evidence = f"while the feedforward accuracy is {m.accuracy:.3g}"
    elif m.target_error is not None:
        wrong = m.target_error > thresholds.target_error
        evidence = f"while the squared error of the prediction against y is {m.target_error:.3g}"
    else:
        return []
    if not wrong:
        return []
    name = ", ".join(m.nodes[i] for i in m.outputs) or None
    return [
        Finding(
            "output_energy_vanishes",
            name,
            "output energy after the feedforward pass",
            m.loss,
            thresholds.output_energy,
            False,
            f"The output energy is {m.loss:.2g} {evidence}: clamp the target in model(x, y) (vode.set('h', y) on a frozen "
            "output node) and check that y is one-hot and matches the output energy (se_energy / ce_energy).",
        )
    ]
