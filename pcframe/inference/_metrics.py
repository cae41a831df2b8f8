"""Optional training metrics, computed only when asked for."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import Param


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Which optional metrics a training step returns (each costs a little extra work).

    The loss, the final energy, the per-layer energies and the number of
    inference steps are always returned.

    **Arguments:**

    - `activity_norms`: L2 norm of each free activity after inference.
    - `param_norms`: L2 norm of each trained parameter after the update.
    - `grad_norms`: L2 norm of each parameter gradient.
    - `accuracy`: classification accuracy of the feedforward prediction ($\\arg\\max$ vs target).

    **Example:** ``train_supervised(..., metrics=Metrics(grad_norms=True))``
    """

    activity_norms: bool = False
    param_norms: bool = False
    grad_norms: bool = False
    accuracy: bool = False


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

    **Example:** ``accuracy(model_outputs, one_hot_labels)``
    """
    return jnp.mean(jnp.argmax(predictions, axis=-1) == jnp.argmax(targets, axis=-1))
