"""Continuous-time inference: integrate $\\dot z = -\\partial\\mathcal{F}/\\partial z$ with diffrax."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import diffrax
import jax
import jax.numpy as jnp

from ..pc._energy_module import EnergyModule
from ._energy import EnergyFunction
from ._finite import error_if_not_finite


def _rms(tree: Any) -> Any:
    leaves = jax.tree_util.tree_leaves(tree)
    size = sum(leaf.size for leaf in leaves)
    return jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in leaves) / size)


@dataclasses.dataclass(frozen=True)
class ODEInference:
    """Integrate the inference dynamics $\\dot z = -\\partial\\mathcal{F}/\\partial z$ from $t=0$ to at most `max_t1`.

    Any diffrax solver and step-size controller can be used; by default Heun's
    method with a PID controller (``rtol = atol = 1e-3``). Integration stops
    early at a steady state: when the size of the vector field (the *rate of
    change* of the activities) falls under the tolerance,
    $\\lVert\\dot z\\rVert_\\mathrm{rms} < \\mathrm{atol} + \\mathrm{rtol}\\,\\lVert z\\rVert_\\mathrm{rms}$,
    using the controller's tolerances unless `steady_rtol` / `steady_atol` are given.

    **Arguments:**

    - `solver`: a `diffrax.AbstractSolver` (default `diffrax.Heun()`).
    - `stepsize_controller`: default ``diffrax.PIDController(rtol=1e-3, atol=1e-3)``.
    - `max_t1`: the latest end time.
    - `dt`: a fixed step size (then a `diffrax.ConstantStepSize` is used), or `None` for adaptive steps.
    - `steady_state`: stop at a steady state.
    - `steady_rtol`, `steady_atol`: tolerances of the steady-state test.
    - `max_steps`: the most solver steps.
    - `record_energies` / `record_activities`: return the per-layer energies / activities
      at every solver step (arrays of length `max_steps`, NaN after the last step).
    - `check_finite`: stop with an error naming the node whose energy is NaN/inf at the end
      of inference (checked inside the compiled computation with `equinox.error_if`; off by default).

    **Example:**

    ```python
    stats = ODEInference(max_t1=20).run(model, x)
    stats["steps"]   # solver steps taken
    ```
    """

    solver: diffrax.AbstractSolver = diffrax.Heun()
    stepsize_controller: diffrax.AbstractStepSizeController = diffrax.PIDController(rtol=1e-3, atol=1e-3)
    max_t1: float = 20.0
    dt: float | None = None
    steady_state: bool = True
    steady_rtol: float | None = None
    steady_atol: float | None = None
    max_steps: int = 4096
    record_energies: bool = False
    record_activities: bool = False
    check_finite: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.solver, diffrax.AbstractSolver):
            raise TypeError(f"ODEInference solver must be a diffrax solver (e.g. diffrax.Heun()), got {self.solver!r}.")
        if not isinstance(self.stepsize_controller, diffrax.AbstractStepSizeController):
            raise TypeError(
                "ODEInference stepsize_controller must be a diffrax step-size controller "
                f"(e.g. diffrax.PIDController(rtol=1e-3, atol=1e-3)), got {self.stepsize_controller!r}."
            )
        if self.dt is None and not isinstance(self.stepsize_controller, diffrax.AbstractAdaptiveStepSizeController):
            raise ValueError("ODEInference: give a fixed dt, or an adaptive stepsize_controller such as PIDController.")
        if not self.max_t1 > 0:
            raise ValueError(f"ODEInference max_t1 must be positive, got {self.max_t1!r}.")
        for name in ("dt", "steady_rtol", "steady_atol"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
            ):
                raise ValueError(f"ODEInference {name} must be a positive number or None, got {value!r}.")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"ODEInference max_steps must be a positive int, got {self.max_steps!r}.")
        rtol, atol = self._tolerances()
        if not (rtol >= 0 and atol >= 0 and rtol + atol > 0):
            raise ValueError(
                f"ODEInference: the tolerances must be non-negative and not both zero, got rtol={rtol!r}, atol={atol!r}."
            )

    def _tolerances(self) -> tuple[float, float]:
        rtol = self.steady_rtol if self.steady_rtol is not None else getattr(self.stepsize_controller, "rtol", 1e-3)
        atol = self.steady_atol if self.steady_atol is not None else getattr(self.stepsize_controller, "atol", 1e-3)
        return float(rtol), float(atol)

    def run(self, model: EnergyModule, x: Any = None) -> dict[str, Any]:
        """Run inference on `model` (activities initialised, output clamped); activities updated in place.

        **Returns:** a dict with ``steps`` (solver steps), ``t1`` (end time), ``steady``
        (whether the steady state was reached) and, when asked, ``energies`` / ``activities``.
        """
        energy_fn = EnergyFunction(model, x)

        def field(t: Any, z: Any, args: Any) -> Any:
            return jax.tree_util.tree_map(jnp.negative, jax.grad(energy_fn)(z))

        rtol, atol = self._tolerances()

        def at_steady_state(t: Any, z: Any, args: Any, **kwargs: Any) -> Any:
            return _rms(field(t, z, args)) < atol + rtol * _rms(z)

        controller = diffrax.ConstantStepSize() if self.dt is not None else self.stepsize_controller
        recording = self.record_energies or self.record_activities
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(field),
            self.solver,
            t0=0.0,
            t1=self.max_t1,
            dt0=self.dt,
            y0=energy_fn.initial(),
            stepsize_controller=controller,
            event=diffrax.Event(at_steady_state) if self.steady_state else None,
            saveat=diffrax.SaveAt(steps=True) if recording else diffrax.SaveAt(t1=True),
            max_steps=self.max_steps,
            throw=False,
        )
        steps = solution.stats["num_steps"]
        last = steps - 1 if recording else 0
        z = jax.tree_util.tree_map(lambda a: a[last], solution.ys)
        if self.check_finite:
            z = error_if_not_finite(model, energy_fn.with_layers(z)[1], "ODEInference", z)
        energy_fn.write(z)
        stats: dict[str, Any] = {
            "steps": steps,
            "t1": solution.ts[last],
            "steady": solution.event_mask if self.steady_state else jnp.asarray(False),
        }
        if self.record_activities:
            stats["activities"] = solution.ys
        if self.record_energies:
            valid = jnp.arange(self.max_steps) < steps
            safe = jax.tree_util.tree_map(lambda a: jnp.where(_expand(valid, a), a, 0.0), solution.ys)
            energies = jax.lax.map(lambda z: energy_fn.with_layers(z)[1], safe)
            stats["energies"] = jnp.where(valid[:, None], energies, jnp.nan)
        return stats


def _expand(mask: Any, like: Any) -> Any:
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))
