"""Incremental predictive coding: weights and activities updated together at every step.

From "A stable, fast, and fully automatic learning algorithm for predictive
coding networks": instead of waiting for inference to converge, every step
updates the activities *and* the weights from the same energy gradient,

$$z_{i,t+1} = z_{i,t} - \\eta_z \\partial_{z_i} F_i(z_t, \\theta_t), \\qquad
  \\theta_{t+1} = \\theta_t - \\eta_\\theta \\partial_\\theta\\mathcal{F}(z_t, \\theta_t).$$
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ..functional._flow import scan
from ..functional._jit import jit
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..utils._optim import Optim
from ._energy import FREE, EnergyFunction, batch_energy, init_forward_energy, output_loss
from ._guard import all_finite
from ._training import checked_batches, reset_activities


@dataclasses.dataclass(frozen=True)
class _IncrementalConfig:
    optimizer: optax.GradientTransformation
    steps: int


def _incremental_update(tx: Any, tx_state: Any, x: Any, model: EnergyModule, optim_w: Optim) -> tuple[Any, Any]:
    energy_fn = EnergyFunction(model, x, FREE | LayerParam)
    params = energy_fn.params
    energy, grads = jax.value_and_grad(energy_fn)(energy_fn.initial())
    activity = [i for i, p in enumerate(params) if not isinstance(p, LayerParam)]
    z = [params[i].value for i in activity]
    per_sample = [grads[i] * params[i].value.shape[0] for i in activity]  # each sample's own gradient
    updates, tx_state = tx.update(per_sample, tx_state, z)
    for i, new in zip(activity, optax.apply_updates(z, updates)):
        params[i].value = new
    weight_grads = {id(p): g for p, g in zip(params, grads) if isinstance(p, LayerParam)}
    optim_w.apply([weight_grads.get(id(p)) for p in optim_w.params])
    return tx_state, energy


@jit(static_argnums=0)
def _ipc_step(config: _IncrementalConfig, x: Any, y: Any, *, model: EnergyModule, optim_w: Optim) -> dict:
    _, feedforward = init_forward_energy(model, x, y)
    saved = [(p, p.value) for p in (*optim_w.params, optim_w.state)]
    tx = config.optimizer

    def body(t: Any, tx_state: Any, *, model: EnergyModule, optim_w: Optim) -> tuple[Any, Any]:
        return _incremental_update(tx, tx_state, x, model, optim_w)

    tx_state = tx.init([p.value for p in model.parameters(FREE)])
    _, energies = scan(body, xs=jnp.arange(config.steps))(tx_state, model=model, optim_w=optim_w)
    energy, per_layer = batch_energy(model, x)
    finite = all_finite(energy, [p.value for p in optim_w.params])
    for param, old in saved:  # a step whose energy or weights are not finite changes nothing
        param.value = jax.tree_util.tree_map(lambda new, o: jnp.where(finite, new, o), param.value, old)
    return {
        "loss": output_loss(model, feedforward),
        "energy": energy,
        "energies": per_layer,
        "inference_energies": energies,
        "steps": jnp.asarray(config.steps),
        "finite": finite,
    }


def train_incremental(
    model: EnergyModule, optim_w: Optim, x: Any, y: Any, *, optimizer: optax.GradientTransformation, steps: int
) -> dict[str, Any]:
    """One batch of incremental PC: `steps` joint updates of activities and weights.

    **Arguments:**

    - `model`, `optim_w`, `x`, `y`: as in `train_supervised`.
    - `optimizer`: optax optimiser of the activities (e.g. ``optax.sgd(0.1)``).
    - `steps`: number of joint updates $T$ (the weights move $T$ times per batch).

    **Returns:** ``loss``, ``energy``, ``energies``, ``inference_energies`` (energy before each update), ``steps``,
    ``finite`` (when the final energy or a weight is not finite, the weights and optimiser state of the whole
    batch are restored).

    **Example:** ``train_incremental(model, optim_w, x, y, optimizer=optax.sgd(0.1), steps=20)``
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax transformation such as optax.sgd(0.1), got {optimizer!r}.")
    if not isinstance(optim_w, Optim):
        raise TypeError(f"optim_w must be a pcframe.utils.Optim, got {type(optim_w).__name__}.")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    checked_batches("train_incremental", x=x, y=y)
    reset_activities(model)
    return _ipc_step(_IncrementalConfig(optimizer, steps), x, y, model=model, optim_w=optim_w)
