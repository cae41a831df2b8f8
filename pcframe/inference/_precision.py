"""Precision-weighted relaxation: infer on $\\sum_\\ell \\pi_\\ell E_\\ell$, learn on the energy itself.

Precision-weighted PC gives each node's error a precision $\\pi_\\ell$ (an inverse variance).
Here the precisions weight the relaxation only, as fixed numbers, one per node: inference
descends

$$F_\\pi(z) = \\sum_i \\Big[\\sum_\\ell \\pi_\\ell\\,E_\\ell(z_{\\ell,i}, u_{\\ell,i}) + A(z_i)\\Big],$$

and the weight step of the training modes is unchanged, $\\partial F/\\partial\\theta$ with every
$\\pi_\\ell = 1$, at the activities this relaxation reached. "Towards the Training of Deeper
Predictive Coding Neural Networks" (2025) weighs the latents' optimisation by precisions to
rebalance the errors of deep networks; its own rule is not reproduced here (its equations were
not available to this project): this is the general fixed-precision form, named for what it
computes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._strategy import AbstractInference, ActivityEnergy


class PrecisionWeightedEnergy(ActivityEnergy):
    """An energy whose node terms are weighted by precisions: $F_\\pi = F + \\sum_\\ell (\\pi_\\ell - 1) E_\\ell$.

    Wraps the energy a strategy receives (activities, or ePC's errors) under its convention:
    per sample, the batch sum of each sample's weighted energy; with ``batch_mean=True``, its
    batch mean. The per-layer energies it returns are the unweighted ones.

    **Arguments:**

    - `energy`: the `ActivityEnergy` (or `pcframe.inference.ErrorEnergy`) to weight.
    - `precisions`: $\\pi_\\ell$, one per node of the model, in ``model.iter_vodes()`` order.

    **Example:** ``(value, per_layer), grads = PrecisionWeightedEnergy(energy, (0.5, 1.0, 2.0)).value_and_grad(z)``
    """

    def __init__(self, energy: ActivityEnergy, precisions: tuple[Any, ...]) -> None:
        super().__init__(energy.energy_fn, energy.batch_mean)
        self.base = energy
        self.precisions = precisions

    def initial(self) -> list[Any]:
        """Where the wrapped energy starts."""
        return self.base.initial()

    def with_layers(self, z: list[Any]) -> tuple[Any, Any]:
        """``(F_pi, per_layer)`` at `z`: the weighted energy and the unweighted per-layer batch means."""
        total, per_layer = self.base.with_layers(z)
        samples = 1 if self.batch_mean else jax.tree_util.tree_leaves(z)[0].shape[0]
        extra = jnp.asarray(self.precisions, per_layer.dtype) - 1
        return total + samples * jnp.sum(extra * per_layer), per_layer


class PrecisionWeighted(AbstractInference):
    """Run any strategy on the precision-weighted energy $F_\\pi = \\sum_\\ell \\pi_\\ell E_\\ell$ (module docstring).

    The precisions are traced hyperparameters (a sweep over them compiles once). With every
    $\\pi_\\ell = 1$ it is `inner` itself. At an equilibrium of $F_\\pi$ a hidden node's error is
    $\\epsilon_\\ell = (\\pi_{\\ell+1}/\\pi_\\ell)\\,J_{\\ell+1}^\\top\\epsilon_{\\ell+1}$ (squared-error nodes,
    $J_{\\ell+1} = \\partial u_{\\ell+1}/\\partial z_\\ell$): precisions that fall towards the input make the
    lower errors larger, but also slow the lower nodes down (their step is $\\eta\\,\\pi_\\ell$), and a
    precision above $2/\\eta$ over the curvature makes a discrete step unstable. For the
    exponential decay of errors with depth, ePC (`ErrorInference`) and μPC (`pcframe.models.MuPC`)
    are the remedies measured in this project (``benchmarks/README.md``).

    **Arguments:**

    - `inner`: the strategy that relaxes the weighted energy (`DiscreteInference`,
      `ODEInference`, `ErrorInference`, your own); its `batch_mean` sets the convention.
    - `precisions`: $\\pi_\\ell > 0$, one per node, in ``model.iter_vodes()`` order (the clamped
      output's included).

    **Example:**

    ```python
    model = PCMLP([784, 128, 128, 10])                  # nodes: two hidden, the clamped output
    inference = PrecisionWeighted(DiscreteInference(step_size=0.1, steps=20), (0.5, 1.0, 2.0))
    train_supervised(model, optim_w, x, y, inference=inference)
    ```
    """

    inner: AbstractInference
    precisions: tuple[float, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.inner, AbstractInference):
            raise TypeError(
                "PrecisionWeighted needs the strategy that relaxes the weighted energy, e.g. "
                f"PrecisionWeighted(DiscreteInference(step_size=0.1, steps=20), (0.5, 1.0, 1.0)); got {self.inner!r}."
            )
        values = self.precisions
        if not isinstance(values, (tuple, list)) or not values:
            raise TypeError(f"PrecisionWeighted precisions must be a tuple of numbers, one per node; got {values!r}.")
        floats = []
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"PrecisionWeighted precisions[{i}] must be a positive number, got {value!r}.")
            floats.append(float(value))
        self.precisions = tuple(floats)

    @property
    def uses_batch_mean(self) -> bool:
        """The inner strategy's convention."""
        return self.inner.uses_batch_mean

    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """Relax `energy` weighted by the precisions with `inner`; returns `inner`'s result."""
        nodes = len(list(energy.model.iter_vodes()))
        if len(self.precisions) != nodes:
            raise ValueError(
                f"PrecisionWeighted has {len(self.precisions)} precisions but {type(energy.model).__name__} has "
                f"{nodes} nodes (Vodes, the clamped output included): give one per node, in model.iter_vodes() order."
            )
        return self.inner.solve(PrecisionWeightedEnergy(energy, self.precisions))
