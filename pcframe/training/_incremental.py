"""Incremental predictive coding: weights and activities updated together at every step.

From "A stable, fast, and fully automatic learning algorithm for predictive
coding networks": instead of waiting for inference to converge, every step
updates the activities *and* the weights from the same energy gradient,

$$z_{i,t+1} = z_{i,t} - \\eta_z \\partial_{z_i} F_i(z_t, \\theta_t), \\qquad
  \\theta_{t+1} = \\theta_t - \\eta_\\theta \\partial_\\theta\\mathcal{F}(z_t, \\theta_t).$$
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from ..core._state import assign
from ..functional._flow import scan
from ..inference._energy import FREE, EnergyFunction, batch_energy, init_forward_energy, output_loss
from ..inference._metrics import Metrics, accuracy
from ..inference._strategy import StepwiseInference
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..utils._optim import Optim
from ._step import Learned, TrainingMode, train_step


def _incremental_update(
    inference: StepwiseInference, tx_state: Any, x: Any, model: EnergyModule, optim_w: Optim
) -> tuple[Any, Any, list[Any]]:
    """One joint step: activities along each sample's own gradient, weights along the batch mean's.

    **Returns:** ``(tx_state, energy, weight_gradients)``, the energy and gradients before the step.
    """
    energy_fn = EnergyFunction(model, x, FREE | LayerParam)
    params = energy_fn.params
    energy, grads = jax.value_and_grad(energy_fn)(energy_fn.initial())
    activity = [i for i, p in enumerate(params) if not isinstance(p, LayerParam)]
    z = [params[i].value for i in activity]
    scale = 1 if inference.uses_batch_mean else x.shape[0]  # d/dz_i of the batch mean is F_i's gradient over N
    z, tx_state = inference.apply([grads[i] * scale for i in activity], z, tx_state)
    assign([params[i] for i in activity], z)
    weight_grads = {id(p): g for p, g in zip(params, grads) if isinstance(p, LayerParam)}
    gradients = [weight_grads.get(id(p)) for p in optim_w.params]
    optim_w.apply(gradients)
    return tx_state, energy, [g for g in gradients if g is not None]


def _trained_weights(model: EnergyModule, x: Any, optim_w: Optim) -> list[Any]:
    """The weights of `optim_w` that the energy depends on: those `_incremental_update` returns gradients for."""
    in_energy = {id(p) for p in EnergyFunction(model, x, FREE | LayerParam).params if isinstance(p, LayerParam)}
    return [p for p in optim_w.params if id(p) in in_energy]


@dataclasses.dataclass(frozen=True)
class Incremental(TrainingMode):
    """Incremental PC: ``inference.steps`` joint updates of the activities and the weights (module docstring).

    **Arguments:**

    - `metrics`, `check_finite`: see `TrainingMode`.
    """

    name: ClassVar[str] = "train_incremental"

    def learn(self, inference: StepwiseInference, x: Any, y: Any, *, model: EnergyModule, optim_w: Optim) -> Learned:
        """Feedforward start, then `inference.steps` joint updates; the weights step with `optim_w` at each one."""
        predictions, feedforward = init_forward_energy(model, x, y)
        metrics: dict[str, Any] = {"loss": output_loss(model, feedforward)}
        if self.metrics.accuracy:
            metrics["accuracy"] = accuracy(predictions, y)

        def body(t: Any, carry: tuple[Any, list[Any]], *, model: EnergyModule, optim_w: Optim) -> tuple[Any, Any]:
            tx_state, energy, grads = _incremental_update(inference, carry[0], x, model, optim_w)
            return (tx_state, grads), energy  # only the last step's weight gradients are kept

        tx_state = inference.init_state([p.value for p in model.parameters(FREE)])
        no_grads = [jnp.zeros_like(p.value) for p in _trained_weights(model, x, optim_w)]
        (_, last), energies = scan(body, xs=jnp.arange(inference.steps))(
            (tx_state, no_grads), model=model, optim_w=optim_w
        )
        energy, per_layer = batch_energy(model, x)
        metrics.update(
            energy=energy, energies=per_layer, inference_energies=energies, steps=jnp.asarray(inference.steps)
        )
        return Learned(metrics, [energy, energies], model, optim_w, last, (model, [feedforward, per_layer], {}))


def train_incremental(
    model: EnergyModule,
    optim_w: Optim,
    x: Any,
    y: Any,
    *,
    inference: StepwiseInference,
    metrics: Metrics = Metrics(),
    check_finite: bool = False,
) -> dict[str, Any]:
    """One batch of incremental PC: `inference.steps` joint updates of activities and weights.

    The activities move as `inference` would move them (its optimiser, step size and
    per-sample convention), and every one of those steps also updates the weights with
    `optim_w`, so the weights move $T$ times per batch.

    **Arguments:**

    - `model`, `optim_w`, `x`, `y`: as in `train_supervised`.
    - `inference`: a `StepwiseInference` (e.g. `DiscreteInference`, or your own) giving the activity
      update (`StepwiseInference.apply`) and the number of joint steps $T$ (its ``steps``).
    - `metrics`: optional metrics (gradient norms are those of the last joint step).
    - `check_finite`: raise `FloatingPointError` naming the first node whose energy is NaN/inf.

    **Returns:** the keys of `train_supervised`: ``loss``, ``energy``, ``energies``, ``steps``,
    ``finite``, plus ``inference_energies`` (the energy before each joint update) and the optional
    metrics. When the final energy or a weight is not finite, the weights and the optimiser state
    of the whole batch are restored.

    **Example:** ``train_incremental(model, optim_w, x, y, inference=DiscreteInference(step_size=0.1, steps=20))``
    """
    if not isinstance(inference, StepwiseInference):
        raise TypeError(
            "train_incremental updates the weights at every inference step, so it needs a strategy that takes one "
            "update at a time, a StepwiseInference such as DiscreteInference(step_size=0.1, steps=20); got "
            f"{type(inference).__name__}."
        )
    if isinstance(getattr(inference, "steps", None), bool) or not isinstance(getattr(inference, "steps", None), int):
        raise TypeError(
            f"train_incremental: give the number of joint steps as a Python int, got {getattr(inference, 'steps', None)!r} "
            "(the weights move once per step, in a compiled loop of that length)."
        )
    return train_step(Incremental(metrics, bool(check_finite)), x, y, inference=inference, model=model, optim_w=optim_w)
