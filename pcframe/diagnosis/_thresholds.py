"""The thresholds of the diagnosis, with the reason for each default."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Where a measured quantity becomes a finding. Every field is documented with its quantity.

    **Arguments:**

    - `tail`: the fraction of the inference steps that make "the last few steps", $w = \\lceil
      \\mathrm{tail}\\cdot T\\rceil$ (at least 1); default 0.1.
    - `slowdown`, `moving`: *inference not converged* when the energy falls at the end at more than `slowdown`
      = 0.5 times the rate it fell at the start, $d(T-w, T) > 0.5\\,d(0, w)$, with
      $d(a, b) = 1 - (F_b/F_a)^{1/(b-a)}$ the mean relative drop per step, and still moves,
      $d(T-w, T) >$ `moving` = 1e-3. Descent that converges slows down (the tutorials' last steps drop the
      energy about ten times less than their first ones, ratios below 0.1); one stopped early, or with a step
      far too small, keeps its pace (ratios near 1).
    - `rising`: *inference diverging* when the energy ends above the lowest value it reached by more than
      this fraction of where it started, $(F_T - \\min_t F_t)/F_0 > 0.05$. Gradient descent with a step
      small enough never raises the energy; a step slightly too large oscillates by a few per cent (the
      step 0.32 of tutorial 00 gives back 1.7 %), a step too large makes $F_T > F_0$ (a rise above 1).
    - `orders`: *prediction errors imbalanced* when the per-layer energies at the end of inference span more
      than this many orders of magnitude, $\\log_{10}(\\max_\\ell E_\\ell / \\min_\\ell E_\\ell) > 8$. A term more
      than $1/\\epsilon_{32} \\approx 10^{7}$ below the largest does not change the float32 total energy at
      all: that layer is invisible to learning. 8 leaves a factor 10 of room (μPC's residual networks end
      inference at about 6 orders, plain deep networks at 20 or more).
    - `frozen`, `runaway`: *layer frozen* / *layer runaway* when a layer's relative weight change
      $\\lVert\\Delta W_\\ell\\rVert/\\lVert W_\\ell\\rVert$ is below `frozen` = 1/100 or above `runaway` = 100 times
      the median over the layers. Healthy networks keep every layer within a factor 5 of the median (with
      Adam within 2); two orders of magnitude is a layer that does not learn, or one that learns alone.
    - `output_energy`, `accuracy`, `target_error`: *output energy vanishes* when the output energy after the
      feedforward pass is below `output_energy` = 1e-6 while the feedforward accuracy is below `accuracy` =
      0.9 (or, with one output unit, the squared error $\\frac1N\\sum_i\\frac12\\lVert\\hat y_i - y_i\\rVert^2$
      is above `target_error` = 1e-3). With the target clamped, one misclassified sample alone costs at
      least $\\ln 2 / N$ (cross-entropy) or $1/(4N)$ (squared error) of the batch-mean output energy,
      far above 1e-6 for any batch under $10^5$: a vanishing output energy with a low accuracy means the
      output does not see the target.

    **Example:** ``diagnose(model, x, y, inference=inference, thresholds=Thresholds(orders=6.0))``
    """

    tail: float = 0.1
    slowdown: float = 0.5
    moving: float = 1e-3
    rising: float = 0.05
    orders: float = 8.0
    frozen: float = 0.01
    runaway: float = 100.0
    output_energy: float = 1e-6
    accuracy: float = 0.9
    target_error: float = 1e-3

    def window(self, steps: int) -> int:
        """$w = \\max(1, \\lceil \\mathrm{tail}\\cdot T\\rceil)$, the number of last steps of `steps` that are compared."""
        return max(1, min(steps, math.ceil(self.tail * steps)))
