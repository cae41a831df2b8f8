"""Finding 4: a layer whose weights do not move, or move far more than the others, relative to their size.

After `steps` of the user's own weight steps on the batch, each layer's relative change
$r_\\ell = \\lVert\\Delta W_\\ell\\rVert / \\lVert W_\\ell\\rVert$ (Frobenius norms over the layer's parameters,
weight and bias together) is compared with the other layers':

- **runaway** when the largest $r_\\ell$ is more than `Thresholds.runaway` (100) times the second largest:
  one layer learns alone (weights near zero, a gradient out of scale);
- **frozen** when $r_\\ell$ is below `Thresholds.frozen` (1/100) times the largest of the other (not runaway)
  layers: the layer gets no error (see the imbalance finding) or its learning rate is zero. All frozen
  layers make one finding, which names them.

Without an optimiser the relative gradient $\\lVert\\partial F/\\partial W_\\ell\\rVert/\\lVert W_\\ell\\rVert$ is
compared the same way.

**Example:** in a 8-layer plain tanh `PCMLP` trained with SGD, the error of 20 inference steps never reaches
the first layers: their $r_\\ell$ is 0 and they are reported frozen (with ``errors_imbalanced``).
"""

from __future__ import annotations

import numpy as np

from ._measure import Measurements
from ._report import Finding
from ._thresholds import Thresholds


def weight_findings(m: Measurements, thresholds: Thresholds) -> list[Finding]:
    """The runaway finding and the frozen finding of the weight measurements, if any."""
    change = m.weight_change
    if change is None or len(change) < 2 or not np.all(np.isfinite(change)):
        return []
    order = np.argsort(change)[::-1]
    findings, reference = [], float(change[order[0]])
    if change[order[0]] > thresholds.runaway * change[order[1]]:
        loud = int(order[0])
        ratio = float(change[order[0]] / change[order[1]]) if change[order[1]] > 0 else float("inf")
        findings.append(
            Finding(
                "weights_runaway",
                m.layers[loud],
                f"{m.weight_quantity} over the next largest layer's",
                ratio,
                thresholds.runaway,
                True,
                f"{m.layers[loud]} changes far faster than the others relative to its size: check its "
                "initialisation (weights near zero) and its learning rate.",
            )
        )
        reference = float(change[order[1]])
    if reference <= 0:
        return findings + [
            Finding(
                "weights_frozen",
                None,
                f"max_l {m.weight_quantity}",
                0.0,
                0.0,
                False,
                "No weight moves: check the learning rate of optim_w (not zero, not masked out) and that an "
                "error reaches the weights (see the other findings).",
            )
        ]
    ratios = change / reference
    frozen = [i for i in range(len(change)) if ratios[i] < thresholds.frozen]
    if frozen:
        names = ", ".join(m.layers[i] for i in frozen)
        many = f"{len(frozen)} layers barely learn" if len(frozen) > 1 else f"{names} barely learns"
        findings.append(
            Finding(
                "weights_frozen",
                names,
                f"{m.weight_quantity} over the largest layer's",
                float(ratios[frozen].min()),
                thresholds.frozen,
                False,
                f"{many}: make the error reach them (for a deep network μPC or ePC, see "
                "errors_imbalanced) and check that optim_w does not mask or zero their learning rate.",
            )
        )
    return findings
