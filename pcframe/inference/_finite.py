"""Opt-in detection of non-finite energies and gradients, naming the layer where they appear.

The training steps always compute a ``finite`` flag and skip the weight update
when it is false. With ``check_finite=True`` they also return, from inside the
compiled step, which node's energy and which parameter's gradient is NaN/inf;
the host then reads that report (the one extra wait for the device, only when
asked for) and raises `FloatingPointError` naming the first culprit. Inference
engines given ``check_finite=True`` stop inside the compiled code with
`equinox.error_if`, which works inside any `jit`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core._param import Param
from ..core._tree import is_param, param_paths
from ..functional._lift import note_runtime_check
from ..pc._energy_module import EnergyModule

REPORT = "nonfinite"
"""The metrics key holding the report of `nonfinite_report`."""


def vode_names(model: EnergyModule) -> list[str]:
    """The attribute path of every `Vode` of `model` (e.g. ``vodes[1]``), in `iter_vodes` order."""
    paths = param_paths(model)
    return [paths.get(id(vode.h), "?").removesuffix(".h") or type(vode).__name__ for vode in model.iter_vodes()]


def nonfinite_report(model: EnergyModule, stages: list[Any], grads: Any) -> dict[str, Any]:
    """Which node energies (per stage) and which parameter gradients are not finite (traceable).

    **Arguments:**

    - `model`: the model the gradients belong to.
    - `stages`: per-layer energies (in `iter_vodes` order) at successive stages of a step.
    - `grads`: the gradient tree of `pcframe.functional.value_and_grad` for `model`.

    **Returns:** ``{"energies": bool[S, L], "grads": {path: bool}}``, `True` marking NaN or inf.
    """
    paths = param_paths(model)
    model_params = dict(jax.tree_util.tree_flatten_with_path(model, is_leaf=is_param)[0])
    flags = {}
    for path, grad in jax.tree_util.tree_flatten_with_path(grads, is_leaf=is_param)[0]:
        if isinstance(grad, Param) and grad.value is not None:
            name = paths.get(id(model_params.get(path)), str(path))
            leaves = jax.tree_util.tree_leaves(grad.value)
            flags[name] = ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
    energies = jnp.stack([~jnp.isfinite(jnp.asarray(per_layer)) for per_layer in stages])
    return {"energies": energies, "grads": flags}


def raise_if_not_finite(metrics: dict[str, Any], model: EnergyModule, stages: tuple[str, ...], where: str) -> dict:
    """Remove the report from `metrics`; raise `FloatingPointError` naming the first non-finite layer.

    **Arguments:**

    - `metrics`: the metrics of a training step run with ``check_finite=True``.
    - `model`: the model of the step.
    - `stages`: the names of the stages of the report, e.g. ``("the feedforward pass", "inference")``.
    - `where`: the name of the step, for the message.

    **Returns:** `metrics` without the report, when everything is finite.

    **Raises:** `FloatingPointError` naming the node (``vodes[1]``) whose energy, or the
    parameter (``layers[1].nn.weight``) whose gradient, is NaN or inf, earliest first.
    """
    report = metrics.pop(REPORT)
    energies = np.asarray(report["energies"])
    if energies.any():
        names = vode_names(model)
        stage = int(np.flatnonzero(energies.any(axis=1))[0])
        bad = [name for name, flag in zip(names, energies[stage]) if flag]
        raise FloatingPointError(
            f"{where}: the energy of the node {bad[0]} is NaN or inf after {stages[stage]} (nodes not finite: "
            f"{', '.join(bad)}); the weights were not updated. Check the layer feeding {bad[0]} (its "
            "weights, inputs and activation) or lower the learning rates."
        )
    bad = [name for name, flag in report["grads"].items() if bool(flag)]
    if bad:
        order = list(param_paths(model).values())
        bad.sort(key=lambda name: order.index(name) if name in order else len(order))
        raise FloatingPointError(
            f"{where}: the gradient of {bad[0]} is NaN or inf (not finite: {', '.join(bad)}); the weights "
            "were not updated. Lower the learning rates or check that layer's inputs."
        )
    return metrics


def error_if_not_finite(model: EnergyModule, per_layer: Any, where: str, value: Any) -> Any:
    """Stop the computation (inside `jit` too) if a node's energy is not finite.

    The check is attached to `value` (which must be used later, e.g. the next
    activities), so that the compiler keeps it.

    **Arguments:**

    - `model`: the model (for the names).
    - `per_layer`: the energy of each node, in `iter_vodes` order.
    - `where`: what computed the energies, for the message.
    - `value`: a pytree of arrays the computation goes on with.

    **Returns:** `value`, unchanged.

    **Example:** ``z = error_if_not_finite(model, per_layer, "DiscreteInference", z)``
    """
    note_runtime_check()
    for i, name in enumerate(vode_names(model)):
        value = eqx.error_if(
            value,
            ~jnp.isfinite(per_layer[i]),
            f"{where}: the energy of the node {name} is NaN or inf. Check the layer feeding {name} "
            "(its weights, inputs and activation) or lower the inference learning rate.",
        )
    return value
