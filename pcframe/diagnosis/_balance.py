"""Finding 3: prediction errors imbalanced across layers (vanishing or exploding with depth).

At the end of inference, the per-layer energies $E_\\ell^\\ast$ (batch means, squared errors) should all
take part in learning: the weight gradient of layer $\\ell$ is its error times its input,
$\\partial F/\\partial W_\\ell = -\\epsilon_\\ell f(z_{\\ell-1})^\\top$. In deep plain networks the error fed in at the
output reaches the first layers attenuated by a factor per layer (and per inference step), so the first
layers' energies end many orders of magnitude below the last ones': the failure μPC (`pcframe.models.MuPC`)
and ePC (`pcframe.inference.ErrorInference`) address. Measured:

$$\\text{span} = \\log_{10} \\frac{\\max_\\ell E_\\ell^\\ast}{\\max(\\min_\\ell E_\\ell^\\ast,\\ 10^{-30})} ,$$

a finding above `Thresholds.orders` (8), naming the layer of the smallest energy.

**Example:** a 16-layer tanh `PCMLP` after 20 inference steps of size 0.1 ends with energies from 0.3 at
the output down to exactly 0 at the first layers (a span of 30): the first layers do not learn.
"""

from __future__ import annotations

import numpy as np

from ._measure import Measurements
from ._report import Finding
from ._thresholds import Thresholds

FLOOR = 1e-30
"""Energies are floored here before the logarithm (an energy of exactly 0 spans "30 orders")."""


def energy_span(energies: np.ndarray) -> float:
    """$\\log_{10}(\\max_\\ell E_\\ell / \\max(\\min_\\ell E_\\ell, 10^{-30}))$ of the per-layer energies."""
    energies = np.asarray(energies, np.float64)
    return float(np.log10(max(energies.max(), FLOOR) / max(energies.min(), FLOOR)))


def balance_findings(m: Measurements, thresholds: Thresholds) -> list[Finding]:
    """The imbalance finding of the per-layer energies at the end of inference, if any."""
    energies = np.asarray(m.equilibrium, np.float64)
    if len(energies) < 2 or not np.all(np.isfinite(energies)) or energies.max() <= 0 or energies.min() < 0:
        return []  # a negative energy (a cross-entropy against a target that is no distribution) is no error size
    span = energy_span(energies)
    if span <= thresholds.orders:
        return []
    quiet, loud = int(np.argmin(energies)), int(np.argmax(energies))
    direction = "vanish towards" if quiet < loud else "explode towards"
    return [
        Finding(
            "errors_imbalanced",
            m.nodes[quiet],
            "log10(max_l E_l / min_l E_l) after inference",
            span,
            thresholds.orders,
            True,
            f"Prediction errors {direction} {m.nodes[quiet]} ({energies[quiet]:.2g} against {energies[loud]:.2g} "
            f"at {m.nodes[loud]}): use a depth-stable parametrisation (μPC, pcframe.models.MuPC), ePC "
            "(pcframe.inference.ErrorInference), or more inference steps so the error reaches every layer.",
        )
    ]
