"""Error-parametrised inference (ePC): infer the prediction errors instead of the activities.

Goemaere et al., "Error Optimization: Overcoming Exponential Signal Decay in Deep
Predictive Coding Networks". Every free activity is written as its prediction plus an
error, $z_\\ell = u_\\ell(z_{<\\ell}) + \\epsilon_\\ell$, so one forward pass maps the errors
to the activities and the PC energy becomes a function of the errors,

$$\\tilde F(\\epsilon) = F(z(\\epsilon)) = \\sum_{\\ell<L} \\tfrac12\\lVert\\epsilon_\\ell\\rVert^2
  + E_L\\big(y, u_L(z(\\epsilon))\\big)$$

for squared-error hidden nodes. Its gradient reaches every layer in one step (it is
backpropagation through the forward pass), where PC's activity gradient travels one layer
per step and decays on the way. The map $\\epsilon \\mapsto z$ is a bijection, so both
energies have the same minima.
"""

from __future__ import annotations

from typing import Any

from ..functional._vmap import vmap
from ..pc._energy_module import EnergyModule
from ..pc._status import STATUS
from ..pc._vode import VodeParam
from ..utils._step import step
from ._energy import BATCHED, _batch_energy, _forward, _sample_energies
from ._finite import vode_names
from ._strategy import AbstractInference, ActivityEnergy


def _under_errors(fn: Any, x: Any) -> Any:
    def run(*, model: Any) -> Any:
        with step(model, STATUS.ERRORS, clear_params=VodeParam.Cache):
            return fn(x, None, model=model)

    return run


def _errors_at(model: Any, x: Any, params: list[Any]) -> list[Any]:
    """$z - u(z)$ for each activity parameter in `params` (`None` where its node receives no prediction)."""
    owners = {id(v.h): v for v in model.iter_vodes()}
    vodes = [owners.get(id(p)) for p in params]

    @vmap(BATCHED, in_axes=(0,), out_axes=0, axis_name="batch")
    def errors(x: Any, *, model: Any) -> list[Any]:
        model(x, None)
        caches = [(v.cache.value or {}) if v is not None else {} for v in vodes]
        return [p.value - c["u"] if "u" in c else None for p, c in zip(params, caches)]

    with step(model, clear_params=VodeParam.Cache):
        return errors(x, model=model)


def prediction_errors(model: EnergyModule, x: Any = None) -> dict[str, Any]:
    """The prediction error of every node at the current activities, $\\epsilon_\\ell = z_\\ell - u_\\ell(z)$.

    One forward pass at the activities the model holds (after inference, a training step or
    `init_forward`), batched like them. After `ErrorInference` these are the errors it
    inferred: it writes back $z(\\epsilon^*)$, whose errors are $\\epsilon^*$ (up to float
    rounding). The clamped output's entry is $y - u_L$; a node that receives no prediction
    (a free input) has no entry. Nothing of the model changes.

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol, its activities set.
    - `x`: the input batch (`None` for a free input layer).

    **Returns:** ``{node: errors}``, keyed by the node's attribute path (e.g. ``"vodes[0]"``).

    **Example:**

    ```python
    ErrorInference(DiscreteInference(step_size=0.1, steps=20)).run(model, x)
    eps = prediction_errors(model, x)          # {"vodes[0]": (batch, 128), ..., "vodes[2]": y - u_L}
    {name: float(jnp.mean(e**2)) for name, e in eps.items()}
    ```
    """
    vodes = list(model.iter_vodes())
    names = vode_names(model)
    for name, vode in zip(names, vodes):
        if vode.h.value is None:
            raise ValueError(
                f"prediction_errors: node {name} of {type(model).__name__} holds no activity; run "
                "init_forward(model, x, y), inference or a training step first."
            )
    errors = _errors_at(model, x, [vode.h for vode in vodes])
    return {name: error for name, error in zip(names, errors) if error is not None}


class ErrorEnergy(ActivityEnergy):
    """The energy as a function of the prediction errors $\\epsilon$ of the free nodes: $\\tilde F(\\epsilon)$.

    Built from an `ActivityEnergy` (same model, input and convention). Its variables are
    the errors of the free nodes, in the order of ``activity_energy.initial()``;
    `states` maps errors to activities with one forward pass under `STATUS.ERRORS`.

    **Arguments:**

    - `activity_energy`: the `ActivityEnergy` of the model (activities initialised, output clamped).

    **Example:**

    ```python
    energy = ErrorEnergy(ActivityEnergy(EnergyFunction(model, x)))
    (value, per_layer), grads = energy.value_and_grad(energy.initial())   # d F / d epsilon
    ```
    """

    def __init__(self, activity_energy: ActivityEnergy) -> None:
        super().__init__(activity_energy.energy_fn, activity_energy.batch_mean)

    def initial(self) -> list[Any]:
        """The errors of the current activities, $\\epsilon = z - u(z)$ (zero after a feedforward pass).

        A free node that receives no prediction (e.g. a free input) keeps its activity as its error.
        """
        params = self.energy_fn.params
        errors = _errors_at(self.model, self.energy_fn.x, params)
        return [p.value if e is None else e for p, e in zip(params, errors)]

    def states(self, errors: list[Any]) -> list[Any]:
        """The activities $z(\\epsilon)$: one forward pass with $z_\\ell = u_\\ell + \\epsilon_\\ell$."""
        return self.energy_fn.call(_under_errors(_forward, self.energy_fn.x), errors)[1]

    def with_layers(self, errors: list[Any]) -> tuple[Any, Any]:
        """``(E, per_layer)`` at the errors: $\\tilde F(\\epsilon)$ under the strategy's convention."""
        fn = _batch_energy if self.batch_mean else _sample_energies
        out, _ = self.energy_fn.call(_under_errors(fn, self.energy_fn.x), errors)
        if self.batch_mean:
            total, (per_layer, _) = out
            return total, per_layer
        per_sample, per_layer = out
        return per_sample.sum(), per_layer


class ErrorInference(AbstractInference):
    """ePC: run any inference strategy on the prediction errors $\\epsilon$, then set $z = z(\\epsilon)$.

    The errors start at $\\epsilon = z - u(z)$ of the initial activities (zero after the
    feedforward initialisation), `inner` minimises $\\tilde F(\\epsilon)$
    (`DiscreteInference`: $\\epsilon \\leftarrow \\epsilon - \\eta\\,\\partial\\tilde F/\\partial\\epsilon$;
    `ODEInference`: $\\dot\\epsilon = -\\partial\\tilde F/\\partial\\epsilon$), and the activities are
    written back as $z(\\epsilon^*)$. Works with any `EnergyModule` following the engines'
    protocol, with `train_supervised`, `train_unsupervised` (a free input node, which has no
    prediction, is inferred as itself) and `AbstractInference.run`. The weight update of
    the training steps is PC's, $\\partial F/\\partial\\theta$ at $z(\\epsilon^*)$.

    Differences from JPC's ePC (``init_epc_errors``, ``epc_energy_fn``):

    - JPC's error list includes an output error $\\epsilon_L$ that shifts the output
      prediction ($y - (f_L(z_{L-1}) - \\epsilon_L)$) but is never penalised: inference can
      absorb the whole output error into it, which leaves no error to learn from. Here the
      clamped output has no error variable.
    - JPC's unsupervised mode indexes past the end of its error list (IndexError); here a
      free input is one more variable, unpenalised like JPC's intended $z_0$.
    - JPC's weight gradient differentiates $\\tilde F$ at fixed errors (through the forward
      pass); pcframe's training steps use PC's local gradient at $z(\\epsilon^*)$. The two are
      equal at an exact equilibrium ($\\partial F/\\partial z = 0$) and differ before it.

    **Arguments:**

    - `inner`: the strategy run on the errors (`DiscreteInference`, `ODEInference` or your
      own); its `batch_mean` sets the convention. Recorded activities are errors.

    **Returns:** (`solve`) the activities $z(\\epsilon^*)$ and the inner strategy's stats.

    **Example:**

    ```python
    epc = ErrorInference(DiscreteInference(step_size=0.1, steps=8))
    train_supervised(model, optim_w, x, y, inference=epc)
    ErrorInference(ODEInference(max_t1=5.0)).run(model, x)
    ```
    """

    inner: AbstractInference

    def __post_init__(self) -> None:
        if not isinstance(self.inner, AbstractInference):
            raise TypeError(
                "ErrorInference needs the strategy to run on the errors, e.g. "
                f"ErrorInference(DiscreteInference(step_size=0.1, steps=20)); got {self.inner!r}."
            )
        if isinstance(self.inner, ErrorInference):
            raise TypeError(
                "ErrorInference(ErrorInference(...)) would reparametrise twice; give the inner strategy once."
            )

    @property
    def uses_batch_mean(self) -> bool:
        """The inner strategy's convention."""
        return self.inner.uses_batch_mean

    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """Minimise $\\tilde F$ over the errors with `inner`; return $z(\\epsilon^*)$ and `inner`'s stats."""
        errors = ErrorEnergy(energy)
        solution, stats = self.inner.solve(errors)
        return errors.states(solution), stats
