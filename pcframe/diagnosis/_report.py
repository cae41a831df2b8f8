"""`Finding` (one problem, measured) and `Report` (all of them, as text or as a figure)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ._measure import Measurements
from ._thresholds import Thresholds


@dataclasses.dataclass(frozen=True)
class Finding:
    """One reason a network does not learn: what was measured, where, the threshold it crossed, what to do.

    **Arguments:**

    - `kind`: a short name (``"inference_diverging"``, ``"errors_imbalanced"``, ...; see `pcframe.diagnosis`).
    - `layer`: the node (``vodes[2]``) or weight layer (``layers[0]``) it concerns, or `None` for the whole network.
    - `quantity`: what was measured, e.g. ``"(F_T - min F)/F_0"``.
    - `value`: its measured value.
    - `threshold`: the threshold it crossed.
    - `above`: `True` when `value` is above `threshold`, `False` when below.
    - `advice`: one sentence: what to change.

    **Example:** ``str(finding)`` gives ``"inference_diverging: (F_T - min F)/F_0 = 3.2 > 0.05. Lower ..."``.
    """

    kind: str
    layer: str | None
    quantity: str
    value: float
    threshold: float
    above: bool
    advice: str

    def text(self) -> str:
        """One line: kind, layer, quantity = value, the threshold crossed, advice."""
        where = f" at {self.layer}" if self.layer else ""
        if not math.isfinite(self.value) and not math.isinf(self.threshold):
            crossed = f"{self.value:.3g}"
        elif not math.isfinite(self.value):
            crossed = f"{self.value}, not finite"
        else:
            crossed = f"{self.value:.3g} {'>' if self.above else '<'} {self.threshold:.3g}"
        return f"{self.kind}{where}: {self.quantity} = {crossed}. {self.advice}"

    def __str__(self) -> str:
        return self.text()


@dataclasses.dataclass(frozen=True, eq=False)
class Report:
    """What `diagnose` found: a tuple of `Finding`s, empty when nothing crossed a threshold.

    ``str(report)`` (or `text`) renders it; `figure` draws it; ``len(report)``, iteration and
    `kinds` give the findings.

    **Arguments:**

    - `findings`: the `Finding`s, in the order `diagnose` checks them.
    - `measurements`: the `Measurements` they were computed from.
    - `thresholds`: the `Thresholds` used.

    **Example:**

    ```python
    report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    print(report)                     # "no findings: ..." when healthy
    if "inference_diverging" in report.kinds:
        inference = DiscreteInference(step_size=0.05, steps=20)
    ```
    """

    findings: tuple[Finding, ...]
    measurements: Measurements
    thresholds: Thresholds = Thresholds()

    @property
    def healthy(self) -> bool:
        """Whether there are no findings."""
        return not self.findings

    @property
    def kinds(self) -> tuple[str, ...]:
        """The `kind` of every finding, in order."""
        return tuple(f.kind for f in self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Any:
        return iter(self.findings)

    def text(self) -> str:
        """The report as text: a summary line, then one line per finding."""
        m = self.measurements
        steps = len(m.trace) - 1
        summary = (
            f"diagnosis of {len(m.nodes)} nodes: inference {m.trace_kind} over {steps} "
            f"{'step' if m.trace_kind == 'recorded' else 'run'}{'s' if steps != 1 else ''}, "
            f"energy {m.trace[0].sum():.4g} -> {m.trace[-1].sum():.4g}"
        )
        if m.weight_steps:
            summary += (
                f"; {len(m.layers)} weight layers, {m.weight_steps} weight step{'s' if m.weight_steps != 1 else ''}"
            )
        elif m.weight_change is not None:
            summary += f"; {len(m.layers)} weight layers, relative gradients"
        if not self.findings:
            return f"{summary}\nno findings: no measured quantity crossed its threshold."
        lines = [f"{summary}\n{len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}:"]
        lines += [f"- {finding.text()}" for finding in self.findings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def figure(self) -> Any:
        """A new matplotlib figure of the measurements and findings (needs ``pip install "pcframe[plots]"``).

        Three panels: the energy over inference, the per-layer energies at its end, the relative weight
        change of each layer; findings are marked in red (see `pcframe.diagnosis.plot_report`).
        """
        from ._figure import plot_report

        return plot_report(self)

    def plot(self, axes: Any = None) -> Any:
        """Draw the report on three matplotlib `axes` (a new figure when `None`); returns the figure."""
        from ._figure import plot_report

        return plot_report(self, axes)
