"""`diagnose`: one call that says why a PC network does not learn."""

from __future__ import annotations

from typing import Any

from ..core._batches import check_batches
from ..inference._metrics import Metrics
from ..pc._energy_module import EnergyModule
from ..training._step import check_step_arguments
from ..utils._optim import Optim
from ._balance import balance_findings
from ._inference_checks import inference_findings
from ._measure import probe, weight_steps
from ._nonfinite import nonfinite_findings
from ._output import output_findings
from ._report import Report
from ._snapshot import preserved
from ._thresholds import Thresholds
from ._weights import weight_findings


def diagnose(
    model: EnergyModule,
    x: Any,
    y: Any,
    *,
    inference: Any,
    optim_w: Optim | None = None,
    steps: int = 3,
    thresholds: Thresholds = Thresholds(),
) -> Report:
    """Measure why a supervised PC network does not learn on a batch; return a `Report` of findings.

    Runs, on the batch `(x, y)`: one feedforward pass and one inference of `inference` with its
    per-layer energies recorded, then `steps` of your own training step
    ``train_supervised(model, optim_w, x, y, inference=inference)``, and compares what it measured with
    `thresholds` (see `pcframe.diagnosis.Thresholds`). Findings, in this order: ``nonfinite`` (naming the
    first node or parameter that is NaN or inf), ``inference_diverging``, ``inference_not_converged``,
    ``errors_imbalanced``, ``output_energy_vanishes``, ``weights_frozen`` / ``weights_runaway``.

    **Nothing is left changed.** The model (weights, activities, caches), `optim_w` (its state) and the
    global key generator `pcframe.RKG` hold, bit for bit, the values they held before the call, also when
    it raises. It runs outside `jit` (it is made of compiled calls: a second diagnosis of the same
    structure compiles nothing).

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol (``model(x, y)``, a clamped output).
    - `x`, `y`: one batch (targets one-hot for a classifier); 64 samples or more give steady numbers.
    - `inference`: the inference strategy you train with. `DiscreteInference` and `ODEInference` are
      recorded as they run (``record_energies=True``); another strategy is run twice, the second run
      continuing from the first, to see whether the energy still falls.
    - `optim_w`: the weight optimiser you train with; `None` compares the layers' relative gradients
      instead of their relative weight changes.
    - `steps`: the number of weight steps taken (on the same batch).
    - `thresholds`: a `Thresholds`.

    **Returns:** a `Report`: ``print(report)``, ``report.findings``, ``report.figure()``.

    **Example:**

    ```python
    report = diagnose(model, x, y, inference=DiscreteInference(step_size=0.1, steps=20), optim_w=optim_w)
    print(report)
    ```
    """
    if optim_w is None:
        check_step_arguments("diagnose", inference, Metrics(), model=model)
    else:
        check_step_arguments("diagnose", inference, Metrics(), model=model, optim_w=optim_w)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"diagnose: steps must be a positive int (weight steps to take), got {steps!r}.")
    if not isinstance(thresholds, Thresholds):
        raise TypeError(f"diagnose: thresholds must be a pcframe.diagnosis.Thresholds, got {thresholds!r}.")
    if x is None or y is None:
        raise ValueError("diagnose needs an input batch x and a target batch y (supervised PC).")
    check_batches("diagnose", x=x, y=y)
    with preserved(model=model, optim_w=optim_w):
        measured, grad_sizes = probe(model, x, y, inference)
        if measured.nonfinite is None:
            measured = weight_steps(measured, grad_sizes, model, optim_w, x, y, inference, steps)
    findings = nonfinite_findings(measured, thresholds)
    if measured.nonfinite is None or measured.nonfinite[0] == "a weight step":
        findings += inference_findings(measured, thresholds)
        if "inference_diverging" not in {f.kind for f in findings}:  # the energies of a blown-up state say nothing
            findings += balance_findings(measured, thresholds)
        findings += output_findings(measured, thresholds)
        findings += weight_findings(measured, thresholds)
    return Report(tuple(findings), measured, thresholds)
