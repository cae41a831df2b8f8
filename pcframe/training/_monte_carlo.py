"""Monte Carlo PC training: a Langevin burn-in, then a weight step averaged over the chain's next states."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from ..core._random import RKG, RandomKeyGenerator
from ..core._state import assign
from ..inference._energy import (
    FREE,
    EnergyFunction,
    batch_energy,
    init_forward_energy,
)
from ..inference._init import init_random
from ..inference._metrics import Metrics, inference_metrics
from ..inference._strategy import StepwiseInference
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..utils._optim import Optim
from ._step import Learned, TrainingMode, train_step


@dataclasses.dataclass(frozen=True)
class MonteCarlo(TrainingMode):
    """Monte Carlo PC: a Langevin burn-in, then one weight step along the gradient averaged over `samples` states.

    With $z_T$ the activities after ``inference.steps`` Langevin updates (the burn-in) and
    $z_{T+1}, \\dots$ the chain continued with the same updates,

    $$\\theta \\leftarrow \\theta - \\alpha\\,\\mathrm{opt}\\Big(\\frac1K \\sum_{k=0}^{K-1}
      \\partial_\\theta \\mathcal F(z_{T+k}, \\theta)\\Big), \\qquad K = \\texttt{samples},$$

    a $K$-sample estimate of $-\\partial_\\theta \\log p(x)$ (per batch mean). ``samples=1`` is the weight
    step `train_supervised` / `train_unsupervised` take with a `LangevinInference`.

    **Arguments:**

    - `samples`: $K$, the states averaged ($K - 1$ Langevin updates after the burn-in).
    - `sigma`: start the free activities from $\\mathcal N(0, \\sigma^2)$ (drawn from ``rkg``); `None`:
      a feedforward start (then `x` must be given).
    - `metrics`, `check_finite`: see `TrainingMode`.
    """

    samples: int = 1
    sigma: float | None = None

    name: ClassVar[str] = "train_monte_carlo"

    def learn(
        self, inference: StepwiseInference, x: Any, y: Any, *, model: EnergyModule, optim_w: Optim, rkg: Any
    ) -> Learned:
        """Start, burn in with `inference`, average the weight gradient over `samples` states, one weight step."""
        _, feedforward = init_forward_energy(model, x, y)
        if self.sigma is not None:
            init_random(model, x, y, sigma=self.sigma, rkg=rkg)
        stats = inference.infer(model, x)
        energy_fn = EnergyFunction(model, x, FREE | LayerParam)
        params = energy_fn.params
        activity = [i for i, p in enumerate(params) if not isinstance(p, LayerParam)]
        weights = [i for i, p in enumerate(params) if isinstance(p, LayerParam)]
        values = energy_fn.initial()
        n = jnp.shape(values[activity[0]])[0]

        def gradients(z: list[Any]) -> tuple[Any, list[Any], list[Any]]:
            full = list(values)
            for i, a in zip(activity, z):
                full[i] = a
            energy, grads = jax.value_and_grad(energy_fn)(full)
            return energy, [grads[i] * n for i in activity], [grads[i] for i in weights]

        def body(carry: tuple, _: Any) -> tuple[tuple, Any]:
            z, state, total = carry
            energy, z_grads, w_grads = gradients(z)
            z, state = inference.apply(z_grads, z, state)
            return (z, state, [a + b for a, b in zip(total, w_grads)]), energy

        z0 = [values[i] for i in activity]
        zeros = [jnp.zeros_like(values[i]) for i in weights]
        (z, _, total), energies = jax.lax.scan(body, (z0, inference.init_state(z0), zeros), None, self.samples - 1)
        _, _, last = gradients(z)
        mean = [(a + b) / self.samples for a, b in zip(total, last)]
        assign([params[i] for i in activity], z)
        by_id = {id(params[i]): g for i, g in zip(weights, mean)}
        grads = [by_id.get(id(p)) for p in optim_w.params]
        optim_w.apply(grads)
        energy, per_layer = batch_energy(model, x)
        metrics: dict[str, Any] = {**inference_metrics(stats), "energy": energy, "energies": per_layer}
        metrics["steps"] = jnp.asarray(inference.steps + self.samples - 1)
        used = [g for g in grads if g is not None]
        return Learned(metrics, [energy, energies, used], model, optim_w, used, (model, [feedforward, per_layer], {}))


def train_monte_carlo(
    model: EnergyModule,
    optim_w: Optim,
    x: Any,
    y: Any,
    *,
    inference: StepwiseInference,
    samples: int = 1,
    sigma: float | None = None,
    metrics: Metrics = Metrics(),
    rkg: RandomKeyGenerator = RKG,
    check_finite: bool = False,
) -> dict[str, Any]:
    """One Monte Carlo PC step: Langevin burn-in, then a weight step on the gradient averaged over the chain.

    See `MonteCarlo` for the equation. Supervised (`x` and `y` clamped, feedforward start) or
    generative (``x=None``, `y` the data, ``sigma`` given: random start, free input layer).

    **Arguments:**

    - `model`, `optim_w`: the model and its weight optimiser.
    - `x`, `y`: input (or `None` for a generative model) and data/target batches.
    - `inference`: a `LangevinInference` (any `StepwiseInference` works: its `steps` are the burn-in).
    - `samples`: $K$, the chain states whose weight gradients are averaged.
    - `sigma`: standard deviation of a random start (needed when `x` is `None`).
    - `metrics`: optional metrics.
    - `rkg`: the key generator of the random start (the Langevin noise comes from `RKG`).
    - `check_finite`: raise `FloatingPointError` naming the first node that became NaN/inf.

    **Returns:** ``energy``, ``energies`` (at the last state), ``steps`` (burn-in + $K - 1$), ``finite``,
    the strategy's recorded traces, the optional metrics.

    **Example:**

    ```python
    out = train_monte_carlo(model, optim_w, None, images, inference=LangevinInference(0.05, 100), samples=10, sigma=1.0)
    ```
    """
    if not isinstance(inference, StepwiseInference):
        raise TypeError(
            f"train_monte_carlo continues the chain one update at a time, so it needs a StepwiseInference such as "
            f"LangevinInference(); got {type(inference).__name__}."
        )
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"train_monte_carlo: samples must be a positive int, got {samples!r}.")
    if y is None:
        raise ValueError("train_monte_carlo needs the batch y to clamp at the output.")
    if x is None and sigma is None:
        raise ValueError("train_monte_carlo: without an input x, give sigma, the scale of the random start.")
    if not isinstance(rkg, RandomKeyGenerator):
        raise TypeError(f"rkg must be a pcframe RandomKeyGenerator, got {type(rkg).__name__}.")
    mode = MonteCarlo(metrics, bool(check_finite), samples, None if sigma is None else float(sigma))
    return train_step(mode, x, y, inference=inference, model=model, optim_w=optim_w, rkg=rkg)
