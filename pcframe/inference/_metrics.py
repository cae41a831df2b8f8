"""Optional training metrics, computed only when asked for."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import Param
from ._energy import FREE


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Which metrics a training step returns (each costs a little extra work).

    The final energy, the number of inference steps and ``finite`` are always
    returned; the feedforward loss and the per-layer energies by default.

    **Arguments:**

    - `activity_norms`: L2 norm of each free activity after inference.
    - `param_norms`: L2 norm of each trained parameter after the update.
    - `grad_norms`: L2 norm of each parameter gradient.
    - `accuracy`: classification accuracy of the feedforward prediction ($\\arg\\max$ vs target);
      needs two or more output units (see `accuracy`).
    - `loss`: the output energy of the feedforward pass (``loss``).
    - `energies`: the energy of each node after inference (``energies``).

    **Example:** ``train_supervised(..., metrics=Metrics(grad_norms=True))``; ``Metrics(loss=False,
    energies=False)`` returns only ``energy``, ``steps`` and ``finite``.
    """

    activity_norms: bool = False
    param_norms: bool = False
    grad_norms: bool = False
    accuracy: bool = False
    loss: bool = True
    energies: bool = True


def without_unasked(metrics: dict[str, Any], asked: Metrics) -> dict[str, Any]:
    """`metrics` without the default ones switched off in `asked` (XLA then drops their computation)."""
    return {k: v for k, v in metrics.items() if getattr(asked, k, True)}


def l2_norms(values: list[Any]) -> Any:
    """The L2 norm of each array (or pytree) in `values`, as one vector."""
    return jnp.stack([jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(v))) for v in values])


def param_values(params: tuple[Param, ...]) -> list[Any]:
    """The values of `params`."""
    return [p.value for p in params]


def accuracy(predictions: Any, targets: Any) -> Any:
    """Fraction of rows whose $\\arg\\max$ matches: $\\frac1N\\sum_i [\\arg\\max \\hat y_i = \\arg\\max y_i]$.

    **Arguments:**

    - `predictions`: scores of shape ``(N, classes)``.
    - `targets`: one-hot targets (or scores) of the same shape.

    With one output unit the $\\arg\\max$ is always 0, so every prediction would count as right:
    that is refused (`ValueError`, raised while tracing: it depends only on the shape).

    **Example:** ``accuracy(model_outputs, one_hot_labels)``
    """
    shape = tuple(jnp.shape(predictions))
    if len(shape) < 2 or shape[-1] < 2:
        raise ValueError(
            f"accuracy (evaluate_accuracy, Metrics(accuracy=True)) compares the argmax of each row, but the model's "
            f"output has shape {shape}: with fewer than two output units the argmax is always 0 and every "
            "prediction would count as right (accuracy 1.0). For a binary accuracy, give the model two output "
            "units and one-hot targets (jax.nn.one_hot(labels, 2)), or compute it from the predictions: "
            "((predict(model, x) > threshold) == y).mean()."
        )
    return jnp.mean(jnp.argmax(predictions, axis=-1) == jnp.argmax(targets, axis=-1))


def inference_metrics(stats: dict[str, Any]) -> dict[str, Any]:
    """A strategy's stats as step metrics: recorded traces renamed so they cannot replace the step's own ``energies``."""
    renamed = {"energies": "inference_energies", "activities": "inference_activities"}
    return {renamed.get(k, k): v for k, v in stats.items()}


def optional_metrics(asked: Metrics, model: Any, optim: Any, grads: list[Any]) -> dict[str, Any]:
    """The optional metrics `asked` for: norms of the free activities, the weights (after the update), the gradients."""
    metrics = {}
    if asked.activity_norms:
        metrics["activity_norms"] = l2_norms(param_values(tuple(model.parameters(FREE))))
    if asked.param_norms:
        metrics["param_norms"] = l2_norms(param_values(optim.params))
    if asked.grad_norms:
        metrics["grad_norms"] = l2_norms(grads)
    return metrics
