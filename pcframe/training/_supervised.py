"""Supervised and unsupervised PC: the `Supervised` training mode, and its two public steps.

Both run through the one step skeleton (`train_step`): the activities start from a
feedforward pass (supervised) or from $\\mathcal{N}(0, \\sigma^2)$ (unsupervised), inference
minimises $\\mathcal{F}$ over them, and the weight optimiser takes one step along
$\\partial\\mathcal{F}/\\partial\\theta$ at the equilibrium (with output nudging, along
$\\frac1\\beta\\partial\\mathcal{F}_\\beta/\\partial\\theta$). The model and the optimisers are
updated in place, and a dict of metrics is returned (JAX arrays: reading them is the only
point where the host waits for the device).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, ClassVar

import jax

from ..core._random import RKG, RandomKeyGenerator
from ..inference._energy import batch_energy, init_forward, init_forward_energy, init_forward_loss, output_loss
from ..inference._gradients import value_grad_and_layers
from ..inference._init import init_random
from ..inference._metrics import Metrics, accuracy, inference_metrics
from ..inference._strategy import AbstractInference
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..utils._optim import Optim
from ._nudging import Nudging, scaled_output_energy
from ._step import Learned, TrainingMode, train_step


@dataclasses.dataclass(frozen=True)
class Supervised(TrainingMode):
    """Clamp the input `x` (unless `sigma` is given) and the target `y`, infer, take one weight step.

    **Arguments:**

    - `nudging`: optional `Nudging` of the output instead of hard clamping.
    - `sigma`: start the free activities (the input layer included) from $\\mathcal{N}(0, \\sigma^2)$
      drawn from ``rkg`` instead of a feedforward pass (unsupervised PC); `None` for a feedforward start.
    - `metrics`, `check_finite`: see `TrainingMode`.

    **Example:** ``train_step(Supervised(), x, y, inference=ODEInference(), model=model, optim_w=optim_w, rkg=RKG)``
    """

    nudging: Nudging | None = None
    sigma: float | None = None

    name: ClassVar[str] = "train_supervised"

    def learn(
        self, inference: AbstractInference, x: Any, y: Any, *, model: EnergyModule, optim_w: Optim, rkg: Any
    ) -> Learned:
        """Feedforward (or random) start, inference, one weight step at the equilibrium."""
        metrics: dict[str, Any] = {}
        if self.check_finite:  # the report names the first node whose feedforward energy is not finite
            predictions, feedforward = init_forward_energy(model, x, y)
            metrics["loss"] = output_loss(model, feedforward)
        elif self.metrics.loss:
            predictions, metrics["loss"] = init_forward_loss(model, x, y)
            feedforward = None
        else:
            predictions, feedforward = init_forward(model, x, y), None
        if self.metrics.accuracy:
            metrics["accuracy"] = accuracy(predictions, y)
        nudging = self.nudging
        if nudging is not None and nudging.centred:
            stats, plus, energy, per_layer = self._equilibrium_grads(inference, model, x, y, rkg, nudging.beta, True)
            _, minus, _, _ = self._equilibrium_grads(inference, model, x, y, rkg, -nudging.beta, False)
            leaves, treedef = jax.tree_util.tree_flatten(plus)  # the two trees differ in the nudged energy_fn only
            grads = jax.tree_util.tree_unflatten(
                treedef, [0.5 * (a + b) for a, b in zip(leaves, jax.tree_util.tree_leaves(minus))]
            )
        else:
            beta = None if nudging is None else nudging.beta
            stats, grads, energy, per_layer = self._equilibrium_grads(inference, model, x, y, rkg, beta, True)
        if nudging is not None:  # report the un-nudged energy at the equilibrium
            energy, per_layer = batch_energy(model, x)
        optim_w.step(model, grads)
        metrics.update(inference_metrics(stats), energy=energy)
        if self.metrics.energies:
            metrics["energies"] = per_layer
        return Learned(metrics, [energy, grads], model, optim_w, grads, (model, [feedforward, per_layer], grads))

    def _equilibrium_grads(
        self, inference: AbstractInference, model: EnergyModule, x: Any, y: Any, rkg: Any, beta: Any, started: bool
    ) -> tuple[dict, Any, Any, Any]:
        """Initialise the activities (unless `started` from the feedforward pass), infer, take the weight gradient.

        **Returns:** ``(stats, grads, energy, per_layer)`` at the equilibrium (of the nudged energy when `beta`
        is given, the gradient divided by `beta`).
        """
        if self.sigma is not None:
            init_random(model, x, y, sigma=self.sigma, rkg=rkg)
        elif not started:
            init_forward(model, x, y)
        nudged = contextlib.nullcontext() if beta is None else scaled_output_energy(model, beta)
        with nudged:
            stats = inference.infer(model, x)
            energy, per_layer, grads = value_grad_and_layers(model, x, LayerParam)
        if beta is not None:
            grads = jax.tree_util.tree_map(lambda g: g / beta, grads)
        return stats, grads, energy, per_layer


@dataclasses.dataclass(frozen=True)
class Unsupervised(Supervised):
    """`Supervised` with random initial activities, for generative PC: only `y` is clamped.

    **Arguments:** those of `Supervised`; `sigma` is the standard deviation of the initial activities.
    """

    name: ClassVar[str] = "train_unsupervised"


def train_supervised(
    model: EnergyModule,
    optim_w: Optim,
    x: Any,
    y: Any,
    *,
    inference: AbstractInference,
    metrics: Metrics = Metrics(),
    nudging: Nudging | None = None,
    check_finite: bool = False,
) -> dict[str, Any]:
    """One supervised PC step: clamp input `x` and target `y`, infer, update the weights.

    Activities start from a feedforward pass, inference minimises $\\mathcal{F}$ over
    them, then `optim_w` takes one step along $\\partial\\mathcal{F}/\\partial\\theta$ at the
    equilibrium. If the energy, a gradient or a new weight is not finite, the weights and
    the optimiser state are left unchanged and ``metrics["finite"]`` is `False`.

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol (e.g. `PCMLP`).
    - `optim_w`: the weight optimiser (`Optim` over the model's `LayerParam`s).
    - `x`, `y`: input and target batches (one-hot targets for a cross-entropy output).
    - `inference`: an inference strategy (`DiscreteInference(...)`, `ODEInference(...)` or your own).
    - `metrics`: optional metrics to compute.
    - `nudging`: optional `Nudging` of the output instead of hard clamping.
    - `check_finite`: raise `FloatingPointError` naming the first node whose energy (or
      parameter whose gradient) is NaN/inf; costs one wait for the device per step.

    **Returns:** a dict: ``loss`` (output energy of the feedforward pass), ``energy`` and
    ``energies`` (total and per layer, after inference), ``steps``, ``finite``, plus
    the engine's extras (``t1``, ``steady``, recorded traces) and the optional metrics.

    **Example:**

    ```python
    model = PCMLP([784, 128, 128, 10])
    optim_w = Optim(optax.adam(1e-3), Mask(LayerParam)(model))
    out = train_supervised(model, optim_w, x, y, inference=DiscreteInference(optax.sgd(0.1), 20))
    ```
    """
    if nudging is not None and not isinstance(nudging, Nudging):
        raise TypeError(f"nudging must be a pcframe.inference.Nudging or None, got {nudging!r}.")
    if x is None or y is None:
        raise ValueError("train_supervised needs both an input batch x and a target batch y.")
    mode = Supervised(metrics, bool(check_finite), nudging)
    return train_step(mode, x, y, inference=inference, model=model, optim_w=optim_w, rkg=RKG)


def train_unsupervised(
    model: EnergyModule,
    optim_w: Optim,
    y: Any,
    *,
    inference: AbstractInference,
    sigma: float = 0.05,
    metrics: Metrics = Metrics(),
    rkg: RandomKeyGenerator = RKG,
    check_finite: bool = False,
) -> dict[str, Any]:
    """One generative PC step: clamp the data `y` at the output, infer the rest (input included).

    The free activities start from $\\mathcal{N}(0, \\sigma^2)$ drawn from `rkg`; the model's
    input layer must be free (e.g. ``PCMLP(..., free_input=True)``).

    `check_finite=True` raises `FloatingPointError` naming the node or parameter that
    became NaN/inf, as in `train_supervised`.

    **Arguments:**

    - `model`: an `EnergyModule` with a free input layer.
    - `optim_w`: the weight optimiser.
    - `y`: the data batch clamped at the output.
    - `inference`: an inference strategy (`DiscreteInference(...)`, `ODEInference(...)` or your own).
    - `sigma`: standard deviation $\\sigma$ of the random initial activities.
    - `metrics`: optional metrics to compute.
    - `rkg`: the key generator the initial activities are drawn from.
    - `check_finite`: raise `FloatingPointError` on a non-finite energy or gradient (see `train_supervised`).

    **Returns:** the same metrics as `train_supervised`.

    **Example:**

    ```python
    decoder = PCMLP([16, 64, 784], free_input=True)
    out = train_unsupervised(decoder, optim_w, images, inference=ODEInference())
    ```
    """
    if y is None:
        raise ValueError("train_unsupervised needs the data batch y to clamp at the output.")
    if isinstance(sigma, bool) or not (isinstance(sigma, (int, float)) and sigma >= 0):
        raise ValueError(f"train_unsupervised: sigma must be a non-negative number, got {sigma!r}.")
    if not isinstance(rkg, RandomKeyGenerator):
        raise TypeError(f"rkg must be a pcframe RandomKeyGenerator, got {type(rkg).__name__}.")
    mode = Unsupervised(metrics, bool(check_finite), sigma=float(sigma))
    return train_step(mode, None, y, inference=inference, model=model, optim_w=optim_w, rkg=rkg)
