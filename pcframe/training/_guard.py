"""The guard of a training step: a step whose energy, gradients or new weights are not finite changes nothing.

The step skeleton (`train_step`) takes a `snapshot` of every optimiser's weights and state and
of every running statistic (`BatchNorm`'s), lets the mode take its weight steps, and keeps them
only where everything is finite,
$\theta' = \theta_\text{new}$ if all finite, else $\theta$ (`keep_only_if`: one `jnp.where` per
array). Checking the new weights too catches a float16 weight that overflows under Adam, which a
check of the updates alone (optax's `apply_if_finite`) would miss. What the guard costs a
hand-written step is measured by ``benchmarks/guard_cost.py`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import Param
from ..core._tree import is_param
from ..nn._batchnorm import RunningStat
from ..pc._energy_module import EnergyModule
from ..utils._optim import Optim


def gradient_values(grads: Any) -> list[Any]:
    """The gradient arrays of a gradient tree (the values of its `Param`s; other leaves as they are)."""
    leaves = jax.tree_util.tree_leaves(grads, is_leaf=is_param)
    return [g.value if isinstance(g, Param) else g for g in leaves if not (isinstance(g, Param) and g.value is None)]


def all_finite(*values: Any) -> Any:
    r"""`True` when every element of every array in `values` is finite.

    Computed as the finiteness of one sum, $\mathrm{isfinite}(\sum_a \sum_i a_i)$ (each array summed
    in at least float32): a NaN or an infinity anywhere makes the sum NaN or infinite, so nothing
    non-finite passes; one reduction per array, which XLA runs as one kernel each, instead of an
    elementwise test, a boolean reduction and a stack. (The sum of finite values could only overflow
    past $3.4\cdot10^{38}$, which would then count as not finite.)
    """
    leaves = jax.tree_util.tree_leaves(values)
    sums = [jnp.sum(leaf, dtype=jnp.promote_types(jnp.result_type(leaf), jnp.float32)) for leaf in leaves]
    return jnp.isfinite(sum(sums))


def snapshot(optims: list[Optim], models: list[EnergyModule] = ()) -> list[tuple[Param, Any]]:
    """``(param, value)`` for every weight and optimiser state of `optims` and every running statistic of `models`.

    What a step changes beyond its activities, so that `keep_only_if` can undo all of it.
    """
    optimised = [p for optim in optims for p in (*optim.params, optim.state)]
    statistics = [p for model in models for p in model.parameters(RunningStat) if p.value is not None]
    return [(p, p.value) for p in optimised + statistics]


def keep_only_if(finite: Any, saved: list[tuple[Param, Any]]) -> None:
    r"""Put the `saved` values back unless `finite`: $\theta \leftarrow \theta_\text{new}$ if finite, else $\theta_\text{saved}$."""
    for param, old in saved:
        param.value = jax.tree_util.tree_map(lambda new, o: jnp.where(finite, new, o), param.value, old)
