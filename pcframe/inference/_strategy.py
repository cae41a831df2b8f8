"""The open base class of inference strategies, and the energy a strategy descends.

A strategy is a `pcframe.core.Config` (an equinox module, like a diffrax solver): its float and array
fields are *hyperparameters*, traced when the strategy is used by a compiled
training step, so a sweep over step sizes or tolerances, or a new strategy of the
same structure built every step, compiles nothing new; its other fields (ints,
bools, optax or diffrax objects) are static and part of the compiled structure.

**Per-sample convention.** A sample's inference does not depend on the batch it
sits in: every engine descends, for each sample $i$, that sample's own energy,

$$\\dot z_i = -\\partial F_i/\\partial z_i, \\qquad F_i = \\sum_\\ell E_\\ell(z_{\\ell,i}, u_{\\ell,i}),$$

the gradient of the batch *sum* $\\sum_i F_i$; step sizes, ODE times and tolerances
are per sample, and the steady-state test asks every sample to be steady. Weight
gradients are batch means, $\\partial_\\theta \\frac1N\\sum_i F_i$. With
``batch_mean=True`` a strategy uses JPC's convention instead: activities descend
the batch mean $\\frac1N\\sum_i F_i$ (each sample moves $1/N$ as fast) and the
steady-state test and error norm look at the whole batch at once.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ..core._config import Config, is_hyperparameter
from ..functional._jit import jit
from ..pc._energy_module import EnergyModule
from ..pc._vode import VodeParam
from ._energy import FREE, EnergyFunction


def split_hyperparameters(strategy: Any) -> tuple[Any, Any]:
    """``(hyperparameters, structure)``: the float/array fields of `strategy`, and the rest.

    ``eqx.combine(hyperparameters, structure)`` gives the strategy back. A compiled step does
    this split itself when the strategy is passed by keyword (see `pcframe.core.Config`).

    **Arguments:**

    - `strategy`: an `AbstractInference`.

    **Returns:** the two halves, as from `equinox.partition`.

    **Example:** ``hyper, structure = split_hyperparameters(DiscreteInference(step_size=0.1))``
    """
    return eqx.partition(strategy, is_hyperparameter)


def sample_rms(tree: Any) -> Any:
    """The root mean square of each sample's part of `tree` (leaves batched on axis 0).

    $$\\lVert z_i \\rVert_\\mathrm{rms} = \\sqrt{\\tfrac1D \\textstyle\\sum_{\\text{leaves}, j} z_{i,j}^2}$$

    **Arguments:**

    - `tree`: a pytree of arrays with one shared leading batch axis.

    **Returns:** a vector with one value per sample.

    **Example:** ``sample_rms([jnp.ones((4, 3))])  # [1, 1, 1, 1]``
    """
    leaves = jax.tree_util.tree_leaves(tree)
    size = sum(leaf[0].size for leaf in leaves)
    squares = sum(jnp.sum(jnp.reshape(leaf, (leaf.shape[0], -1)) ** 2, axis=1) for leaf in leaves)
    return jnp.sqrt(squares / size)


def batch_rms(tree: Any) -> Any:
    """The root mean square of all elements of `tree`: the error norm of JPC's convention.

    **Arguments:**

    - `tree`: a pytree of arrays.

    **Returns:** a scalar.

    **Example:** ``batch_rms([jnp.ones((4, 3))])  # 1.0``
    """
    leaves = jax.tree_util.tree_leaves(tree)
    size = sum(leaf.size for leaf in leaves)
    return jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in leaves) / size)


def worst_sample_rms(tree: Any) -> Any:
    """$\\max_i \\lVert z_i\\rVert_\\mathrm{rms}$: an error norm under which every sample meets the tolerance.

    Used as the norm of the default step-size controller, so that an adaptive step is
    accepted only when each sample's own error is within tolerance, whatever the batch.

    **Arguments:**

    - `tree`: a pytree of arrays batched on axis 0 (a diffrax error estimate).

    **Returns:** a scalar.

    **Example:** ``diffrax.PIDController(rtol=1e-3, atol=1e-3, norm=worst_sample_rms)``
    """
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves or leaves[0].ndim == 0:
        return batch_rms(tree)
    return jnp.max(sample_rms(tree))


class ActivityEnergy:
    """The energy a strategy descends, under the per-sample (default) or batch-mean convention.

    $$\\mathcal{E}(z) = \\sum_i F_i(z_i) \\quad\\text{(per sample)}, \\qquad
      \\mathcal{E}(z) = \\tfrac1N \\sum_i F_i(z_i) \\quad\\text{(batch mean, JPC)}.$$

    **Arguments:**

    - `energy_fn`: the model's `EnergyFunction` over the free activities.
    - `batch_mean`: use the batch-mean convention.

    **Example:**

    ```python
    energy = ActivityEnergy(EnergyFunction(model, x), batch_mean=False)
    (value, per_layer), grads = energy.value_and_grad(energy.initial())
    ```
    """

    def __init__(self, energy_fn: EnergyFunction, batch_mean: bool = False) -> None:
        self.energy_fn = energy_fn
        self.batch_mean = batch_mean

    @property
    def model(self) -> EnergyModule:
        """The model whose activities are inferred."""
        return self.energy_fn.model

    def initial(self) -> list[Any]:
        """The current free activities (where inference starts)."""
        return self.energy_fn.initial()

    def with_layers(self, z: list[Any]) -> tuple[Any, Any]:
        """``(E, per_layer)`` at `z`: the descended energy and the batch mean of each node's energy."""
        if self.batch_mean:
            return self.energy_fn.with_layers(z)
        per_sample, per_layer = self.energy_fn.per_sample(z)
        return jnp.sum(per_sample), per_layer

    def value_and_grad(self, z: list[Any]) -> tuple[tuple[Any, Any], list[Any]]:
        """``((E, per_layer), dE/dz)``: under the default convention, each sample's own gradient."""
        return jax.value_and_grad(self.with_layers, has_aux=True)(z)

    def vector_field(self, t: Any, z: list[Any], args: Any) -> list[Any]:
        """The inference dynamics $\\dot z = -\\partial\\mathcal{E}/\\partial z$, as a diffrax vector field."""
        return jax.tree_util.tree_map(jnp.negative, jax.grad(lambda z: self.with_layers(z)[0])(z))

    def norm(self, tree: Any) -> Any:
        """The norm steady-state tests compare: per sample (a vector) or of the whole batch (JPC)."""
        return batch_rms(tree) if self.batch_mean else sample_rms(tree)


def _is_traced(model: EnergyModule, x: Any) -> bool:
    values = [p.value for p in model.parameters(VodeParam)] + [x]
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(values))


class AbstractInference(Config):
    """Base class of inference strategies: subclass it and implement `solve`.

    A strategy moves the free activities of a model (initialised, output clamped)
    towards a minimum of the energy. Built-ins: `DiscreteInference`, `ODEInference`.
    Float and array fields are traced hyperparameters; see the module docstring for the
    per-sample convention every strategy follows through `ActivityEnergy`.

    **Example:**

    ```python
    class Descent(AbstractInference):
        step_size: float
        steps: int = 10

        def solve(self, energy):
            def body(_, z):
                _, g = energy.value_and_grad(z)
                return [a - self.step_size * b for a, b in zip(z, g)]
            z = jax.lax.fori_loop(0, self.steps, body, energy.initial())
            return z, {"steps": jnp.asarray(self.steps)}
    ```
    """

    @abc.abstractmethod
    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """Infer: return the new free activities (aligned with ``energy.initial()``) and a dict of stats.

        Runs inside a compiled computation (pure JAX). The stats must hold ``steps``.

        **Arguments:**

        - `energy`: the `ActivityEnergy` of the model, under this strategy's convention.

        **Returns:** ``(z, stats)``.
        """

    @property
    def uses_batch_mean(self) -> bool:
        """Whether this strategy follows JPC's batch-mean convention (a ``batch_mean`` field)."""
        return bool(getattr(self, "batch_mean", False))

    def infer(self, model: EnergyModule, x: Any = None) -> dict[str, Any]:
        """Inference as part of a computation being traced: activities updated in place.

        **Arguments:** as for `run`.

        **Returns:** the stats of `solve`.
        """
        energy = ActivityEnergy(EnergyFunction(model, x, FREE), self.uses_batch_mean)
        z, stats = checked_solution(self, energy.energy_fn, self.solve(energy))
        energy.energy_fn.write(z)
        return stats

    def run(self, model: EnergyModule, x: Any = None) -> dict[str, Any]:
        """Run inference on `model` (activities initialised, output clamped); activities updated in place.

        Called eagerly it runs one compiled function, compiled once per model structure,
        batch shape and strategy structure (hyperparameter values are traced); inside
        `pcframe.functional.jit` it is traced into the enclosing computation.

        **Arguments:**

        - `model`: an `EnergyModule` following the engines' protocol.
        - `x`: the input batch (`None` for a free input layer).

        **Returns:** a dict with ``steps`` and the strategy's other stats.

        **Example:** ``stats = DiscreteInference(step_size=0.1, steps=20).run(model, x)``
        """
        if _is_traced(model, x):
            return self.infer(model, x)
        return _run_compiled(x, model=model, inference=self)


class StepwiseInference(AbstractInference):
    """A strategy made of repeated updates of one rule: besides `solve`, it can take one update at a time.

    Incremental PC (`pcframe.training.train_incremental`) interleaves these updates with weight
    steps, as many as the strategy's ``steps`` field (a Python int). Implement `init_state` and
    `apply` (and `solve`, which usually runs `apply` ``steps`` times).

    **Example:** ``z, state = strategy.apply(grads, z, strategy.init_state(z))``
    """

    @abc.abstractmethod
    def init_state(self, z: list[Any]) -> Any:
        """The update rule's state for the activities `z` (e.g. an optax state), made afresh for every batch.

        **Arguments:**

        - `z`: the free activities.

        **Returns:** the state.
        """

    @abc.abstractmethod
    def apply(self, grads: list[Any], z: list[Any], state: Any) -> tuple[list[Any], Any]:
        """One update of the activities `z` from their gradients `grads` (in this strategy's convention).

        **Arguments:**

        - `grads`: $\\partial\\mathcal{E}/\\partial z$, aligned with `z`.
        - `z`: the free activities.
        - `state`: from `init_state` or the previous `apply`.

        **Returns:** ``(z, state)`` after the update.
        """


def checked_solution(strategy: AbstractInference, energy_fn: EnergyFunction, result: Any) -> tuple[Any, dict]:
    """`result` of ``strategy.solve``, refused unless it is ``(z, stats)`` as `AbstractInference.solve` promises.

    `z` must hold one array per free activity, each of the activity's shape (batch axis included)
    and dtype (a float of another precision is cast back, see `EnergyFunction.check`), and `stats`
    must be a dict with ``steps``. Checked on shapes and dtypes only, while tracing: a short list
    would otherwise leave the missing activities at their feedforward values, and a wrong shape
    would fail later as an unrelated shape error inside a layer.
    """
    where = f"{type(strategy).__name__}.solve"
    fix = "End solve with: return z, {'steps': jnp.asarray(number_of_steps)}."
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else f"a {type(result).__name__}"
        raise TypeError(
            f"{where} must return the pair (z, stats): z the list of new free activities (aligned with "
            f"energy.initial()), stats a dict with 'steps'; it returned {got}. {fix}"
        )
    z, stats = result
    if not isinstance(z, (list, tuple)):
        first = f"an array of shape {tuple(z.shape)}" if hasattr(z, "shape") else f"a {type(z).__name__}"
        raise TypeError(
            f"{where} must return the pair (z, stats), z a list of arrays, one per free activity; its first "
            f"element is {first} (was z returned without stats, or one array instead of a list?). {fix}"
        )
    energy_fn.check(z, where)
    if not isinstance(stats, dict):
        raise TypeError(f"{where} must return the pair (z, stats), stats a dict; got a {type(stats).__name__}. {fix}")
    if "steps" not in stats:
        raise ValueError(
            f"{where} returned stats without 'steps' (keys: {list(stats) or 'none'}); every strategy reports "
            f"the number of inference steps it took. {fix}"
        )
    return z, stats


@jit()
def _run_compiled(x: Any, *, model: EnergyModule, inference: AbstractInference) -> dict[str, Any]:
    return inference.infer(model, x)
