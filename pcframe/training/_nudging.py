"""Output nudging: a weak output target, whose weight gradient tends to backprop's."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from ..inference._energy import output_vodes
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode


@dataclasses.dataclass(frozen=True)
class Nudging:
    """Scale the output node's energy by $\\beta$ during inference and learning.

    With $\\mathcal{F}_\\beta = \\sum_{\\ell<L} E_\\ell + \\beta E_L$, the weight update uses
    $\\frac{1}{\\beta}\\partial\\mathcal{F}_\\beta/\\partial\\theta$ at the equilibrium; as $\\beta\\to0$ it tends to the
    backprop gradient of the output loss. $\\beta>0$ is positive nudging, $\\beta<0$ negative
    nudging, and ``centred=True`` averages the two: $(\\partial\\mathcal{F}_{\\beta} - \\partial\\mathcal{F}_{-\\beta})/(2\\beta)$,
    as compared in "Benchmarking Predictive Coding Networks -- Made Simple".

    **Arguments:**

    - `beta`: the nudging strength $\\beta \\neq 0$.
    - `centred`: use centred nudging.

    **Example:** ``train_supervised(..., nudging=Nudging(0.1, centred=True))``
    """

    beta: float
    centred: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)):
            raise TypeError(f"Nudging beta must be a number (e.g. Nudging(0.1, centred=True)), got {self.beta!r}.")
        if self.beta == 0:
            raise ValueError("Nudging beta must be non-zero (its sign chooses positive or negative nudging).")


@contextlib.contextmanager
def scaled_output_energy(model: EnergyModule, beta: float) -> Iterator[None]:
    """Within the block, the output nodes' energies are multiplied by `beta`."""
    outputs = output_vodes(model)
    originals = [v.energy_fn for v in outputs]
    for vode, energy_fn in zip(outputs, originals):
        vode.energy_fn = _Scaled(energy_fn, beta)
    try:
        yield
    finally:
        for vode, energy_fn in zip(outputs, originals):
            vode.energy_fn = energy_fn


@dataclasses.dataclass(frozen=True)
class _Scaled:
    energy_fn: Any
    beta: float

    def __call__(self, vode: Vode, rkg: Any) -> Any:
        return self.beta * self.energy_fn(vode, rkg)
