"""Discrete inference: T steps of any optax optimiser on the activities, in one compiled loop."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ..pc._energy_module import EnergyModule
from ._energy import EnergyFunction
from ._finite import error_if_not_finite


@dataclasses.dataclass(frozen=True)
class DiscreteInference:
    """Minimise $\\mathcal{F}$ over the free activities with `steps` optax updates,

    $$z_{t+1} = z_t + \\mathrm{update}_\\text{optax}(\\partial\\mathcal{F}/\\partial z_t),$$

    run as one `jax.lax.scan` (compiled once, whatever `steps` is). The optimiser
    state is created afresh for every batch.

    **Arguments:**

    - `optimizer`: any optax transformation, e.g. ``optax.sgd(0.1)`` (plain gradient descent).
    - `steps`: number of updates $T$.
    - `record_energies`: return the per-layer energies before every update (``(T, L)``).
    - `record_activities`: return the activities before every update (``T`` leading).
    - `check_finite`: stop with an error naming the node whose energy became NaN/inf
      (checked inside the compiled loop with `equinox.error_if`; off by default).
    - `remat`: wrap each update in `jax.checkpoint`. Results are the same; when the
      inference itself is differentiated (e.g. ``jax.grad`` through `run` in a
      bilevel objective), the loop then keeps only the carried activities of each
      step and recomputes the rest on the backward pass.

    **Example:**

    ```python
    stats = DiscreteInference(optax.sgd(0.1), steps=20).run(model, x)
    ```
    """

    optimizer: optax.GradientTransformation
    steps: int = 20
    record_energies: bool = False
    record_activities: bool = False
    check_finite: bool = False
    remat: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.optimizer, optax.GradientTransformation):
            raise TypeError(
                f"DiscreteInference needs an optax optimiser such as optax.sgd(0.1), got {self.optimizer!r}."
            )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"DiscreteInference steps must be a non-negative int, got {self.steps!r}.")

    def run(self, model: EnergyModule, x: Any = None) -> dict[str, Any]:
        """Run inference on `model` (activities initialised, output clamped); activities updated in place.

        **Returns:** a dict with ``steps`` and, when asked, ``energies`` / ``activities`` traces.
        """
        energy_fn = EnergyFunction(model, x)
        tx = self.optimizer
        value_and_grad = jax.value_and_grad(energy_fn.with_layers, has_aux=True)

        def update(carry: tuple, _: Any) -> tuple[tuple, Any]:
            z, state = carry
            (_, per_layer), grads = value_and_grad(z)
            if self.check_finite:
                z = error_if_not_finite(model, per_layer, "DiscreteInference", z)
            updates, state = tx.update(grads, state, z)
            record = (
                per_layer if self.record_energies else None,
                z if self.record_activities else None,
            )
            return (optax.apply_updates(z, updates), state), record

        z0 = energy_fn.initial()
        body = jax.checkpoint(update) if self.remat else update
        (z, _), (energies, activities) = jax.lax.scan(body, (z0, tx.init(z0)), None, length=self.steps)
        energy_fn.write(z)
        stats: dict[str, Any] = {"steps": jnp.asarray(self.steps)}
        if self.record_energies:
            stats["energies"] = energies
        if self.record_activities:
            stats["activities"] = activities
        return stats
