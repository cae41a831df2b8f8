"""Findings 1 and 2: inference that has not converged, and inference that diverges.

Both read the total energy over inference, $F_t = \\sum_\\ell E_{\\ell,t}$, $t = 0..T$ (the feedforward pass
first, the end of inference last; see `pcframe.diagnosis.Measurements`).

- **diverging** when the energy ends above the lowest value it reached, by more than `Thresholds.rising`
  of where it started: $(F_T - \\min_t F_t)/F_0 > 0.05$.
- **not converged** (checked only when not diverging) when the energy still falls at the end as fast as it
  began: with $d(a, b) = 1 - (F_b/F_a)^{1/(b-a)}$ the mean relative drop per step and
  $w = \\lceil 0.1\\,T\\rceil$, a finding when $d(T-w, T) > 0.5\\, d(0, w)$ (`Thresholds.slowdown`) and
  $d(T-w, T) > 10^{-3}$ (`Thresholds.moving`: an energy that moves by less than 0.1 % per step has stopped).
  Converging descent slows down as it nears the minimum (its last steps drop the energy ten times less than
  its first ones in the tutorials); a descent that stops early, or whose step is far too small, drops it at
  an unchanged rate to the end. For a strategy run twice (``trace_kind = "continued"``), the two runs are
  compared the same way.

**Example:** a `DiscreteInference(step_size=5.0)` on a network whose largest activity-Hessian eigenvalue
is 1 multiplies the stiff part of its error by $|1 - 5| = 4$ per step: the energy rises, and the
advice is to lower the step size.
"""

from __future__ import annotations

import numpy as np

from ._measure import Measurements
from ._report import Finding
from ._thresholds import Thresholds


def inference_findings(m: Measurements, thresholds: Thresholds) -> list[Finding]:
    """The diverging or the not-converged finding of the inference trace, if any."""
    total = m.trace.sum(axis=1).astype(np.float64)
    steps = len(total) - 1
    if steps < 1 or not np.all(np.isfinite(total)) or total[0] <= 0:
        return []
    rise = float((total[-1] - total.min()) / total[0])
    if rise > thresholds.rising:
        return [
            Finding(
                "inference_diverging",
                None,
                "(F_T - min_t F_t)/F_0",
                rise,
                thresholds.rising,
                True,
                "The inference step is too large for this network: lower the strategy's step size "
                "(halve DiscreteInference's step_size, say) until the energy falls at every step.",
            )
        ]
    w = thresholds.window(steps)
    start, end = _drop_per_step(total[0], total[w], w), _drop_per_step(total[steps - w], total[-1], w)
    if end > thresholds.moving and end > thresholds.slowdown * start:
        more = "continued run" if m.trace_kind == "continued" else f"last {w} step{'s' if w > 1 else ''}"
        first = "first run" if m.trace_kind == "continued" else f"first {w}"
        return [
            Finding(
                "inference_not_converged",
                None,
                f"energy drop per step, {more} over {first}",
                end / start if start > 0 else float("inf"),
                thresholds.slowdown,
                True,
                f"Inference stops while the energy still falls by {100 * end:.2g} % per step, as fast as it began: "
                "give it more steps (or a larger step size if it stays stable), so the weights learn at the "
                "equilibrium.",
            )
        ]
    return []


def _drop_per_step(before: float, after: float, steps: int) -> float:
    """$1 - (F_\text{after}/F_\text{before})^{1/\text{steps}}$: the mean relative energy drop per step (0 if it rose)."""
    if before <= 0 or after < 0 or after >= before:
        return 0.0
    return float(1.0 - (after / before) ** (1.0 / steps))
