"""The guarded weight update: a step whose energy, gradients or new weights are not finite changes nothing."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import Param
from ..core._tree import is_param
from ..utils._optim import Optim


def gradient_values(grads: Any) -> list[Any]:
    """The gradient arrays held by the `Param`s of a gradient tree."""
    return [g.value for g in jax.tree_util.tree_leaves(grads, is_leaf=is_param) if isinstance(g, Param)]


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


def guarded_update(updates: list[tuple[Optim, Any, Any]], finite: Any) -> Any:
    r"""Take every ``optim.step(module, grads)``; undo them all unless everything stays finite.

    The update is kept when `finite` (energy and gradients finite) holds and every new
    weight is finite: $\theta' = \theta_\text{new}$ if all finite, else $\theta$ (the optimiser
    states likewise), so a float16 weight that overflows under Adam is caught too. A
    `jnp.where` per array; finiteness is one sum per array (see `all_finite`).

    Measured on XLA's CPU backend with the same guard written into a hand-written pure-JAX
    step (``benchmarks/guard_cost.py``): it costs 1.2-1.46x on W0 (2-32-32-2) across runs and
    1.04-1.08x on W1 (784-128-128-10). The selects themselves cost nothing measurable; a
    predicate computed by reductions, on which every update then depends, does, through how
    XLA's CPU runtime schedules the step (see ``benchmarks/README.md``). A `lax.cond`
    around the update measured slower (XLA copies the branch outputs), and a check of the
    updates only (optax's `apply_if_finite`) would miss a float16 weight that overflows.

    **Arguments:**

    - `updates`: ``(optim, module, grads)`` triples, as for `Optim.step`.
    - `finite`: a boolean scalar, `False` to skip the update whatever the new weights.

    **Returns:** the boolean scalar actually applied (`finite` and new weights finite).

    **Example:** ``finite = guarded_update([(optim_w, model, grads)], all_finite(energy, grads))``
    """
    saved = snapshot([optim for optim, _, _ in updates])
    for optim, module, grads in updates:
        optim.step(module, grads)
    finite = finite & all_finite([p.value for optim, _, _ in updates for p in optim.params])
    keep_only_if(finite, saved)
    return finite


def snapshot(optims: list[Optim]) -> list[tuple[Param, Any]]:
    """``(param, value)`` for every weight and optimiser state of `optims`, to undo their updates with `keep_only_if`."""
    return [(p, p.value) for optim in optims for p in (*optim.params, optim.state)]


def keep_only_if(finite: Any, saved: list[tuple[Param, Any]]) -> None:
    r"""Put the `saved` values back unless `finite`: $\theta \leftarrow \theta_\text{new}$ if finite, else $\theta_\text{saved}$."""
    for param, old in saved:
        param.value = jax.tree_util.tree_map(lambda new, o: jnp.where(finite, new, o), param.value, old)
