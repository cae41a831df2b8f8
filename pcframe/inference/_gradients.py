"""Activity and parameter gradients of a model's batch energy."""

from __future__ import annotations

from typing import Any

from ..functional._grad import value_and_grad
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..pc._status import STATUS
from ..pc._vode import VodeParam
from ..utils._mask import Mask
from ..utils._step import step
from ._energy import FREE, EnergyFunction, _batch_energy
from ._strategy import ActivityEnergy


def value_grad_and_layers(model: EnergyModule, x: Any = None, wrt: Any = LayerParam) -> tuple[Any, Any, Any]:
    """``(F, per_layer, grads)``: the batch energy $\\mathcal{F} = \\frac1N\\sum_i F_i$, its per-node terms, its gradient.

    The weight pass: the model runs under `STATUS.LEARN`, where `pcframe.nn.BatchNorm`
    differentiates through the batch statistics (their values those of the step's
    feedforward pass). Activity gradients are taken by `activity_grad`, under no status.

    **Arguments:**

    - `model`: an `EnergyModule` whose activities are set (e.g. after inference).
    - `x`: the input batch (`None` for a free input layer).
    - `wrt`: filter of the parameters to differentiate (default: the weights, `LayerParam`).

    **Returns:** the energy, the batch mean of each node's energy (in `iter_vodes` order), and
    the gradient tree (``optim.step(model, grads)`` takes it).

    **Example:** ``energy, per_layer, grads = value_grad_and_layers(model, x)``
    """
    return _gradient_pass(model, x, wrt, STATUS.LEARN)


def _gradient_pass(model: EnergyModule, x: Any, wrt: Any, status: Any) -> tuple[Any, Any, Any]:
    with step(model, status, clear_params=VodeParam.Cache):
        (value, (per_layer, _)), grads = value_and_grad(Mask(wrt, (False, True)), has_aux=True)(_batch_energy)(
            x, None, model=model
        )
    return value, per_layer, grads["model"]


def activity_grad(model: EnergyModule, x: Any = None, *, free: Any = FREE) -> tuple[Any, Any]:
    """$\\partial\\mathcal{F}/\\partial z$ for the free activities: the gradient discrete optimisers descend.

    **Arguments:**

    - `model`: the model, its activities initialised and its output clamped.
    - `x`: the input batch (`None` for a free input layer).
    - `free`: filter of the activities to differentiate (default: unfrozen `VodeParam`s).

    **Returns:** ``(F, grads)``; `grads` has the model's structure (see
    `pcframe.functional.value_and_grad`), ready for ``optim_h.step(model, grads)``.

    **Example:** ``F, g = activity_grad(model, x); optim_h.step(model, g)``
    """
    value, _, grads = _gradient_pass(model, x, free, STATUS.NONE)
    return value, grads


def param_grad(model: EnergyModule, x: Any = None, *, params: Any = LayerParam) -> tuple[Any, Any]:
    """$\\partial\\mathcal{F}/\\partial\\theta$ at the current activities: the PC weight gradient.

    **Arguments:**

    - `model`: an `EnergyModule` whose activities are set (e.g. after inference).
    - `x`: the input batch (`None` for a free input layer).
    - `params`: a filter of the parameters to differentiate (default `LayerParam`).

    **Returns:** ``(F, grads)`` with the model's structure, ready for ``optim_w.step(model, grads)``.

    **Example:** ``F, g = param_grad(model, x); optim_w.step(model, g)``
    """
    value, _, grads = value_grad_and_layers(model, x, params)
    return value, grads


def activity_vector_field(model: EnergyModule, x: Any = None, *, free: Any = FREE, batch_mean: bool = False):
    """The inference dynamics $\\dot z_i = -\\partial F_i/\\partial z_i$ (each sample's own) as a diffrax vector field.

    **Arguments:**

    - `model`: an `EnergyModule` whose activities are initialised.
    - `x`: the input batch (`None` for a free input layer).
    - `free`: a filter of the activities that move (default: the free `VodeParam`s).
    - `batch_mean`: the flow of the batch-mean energy instead (JPC's convention).

    **Returns:** ``(field, z0, energy_fn)``: ``field(t, z, args)`` for `diffrax.ODETerm`,
    the current free activities ``z0`` and the `EnergyFunction` behind them (use
    ``energy_fn.write(z)`` to store a solution in the model).

    **Example:**

    ```python
    field, z0, fn = activity_vector_field(model, x)
    sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Heun(), 0, 5, 0.1, z0)
    ```
    """
    energy_fn = EnergyFunction(model, x, free)
    return ActivityEnergy(energy_fn, batch_mean).vector_field, energy_fn.initial(), energy_fn
