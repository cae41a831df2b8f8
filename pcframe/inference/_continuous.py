"""Continuous-time inference: integrate $\\dot z_i = -\\partial F_i/\\partial z_i$ with diffrax."""

from __future__ import annotations

from typing import Any

import diffrax
import jax
import jax.numpy as jnp

from ._finite import error_if_not_finite
from ._strategy import AbstractInference, ActivityEnergy, batch_rms, worst_sample_rms


class ODEInference(AbstractInference):
    """Integrate each sample's inference dynamics $\\dot z_i = -\\partial F_i/\\partial z_i$ from $t=0$ to at most `max_t1`.

    Any diffrax solver and step-size controller can be used; by default Heun's method
    with a PID controller (``rtol = atol = 1e-3``) whose error norm is the worst
    sample's (`worst_sample_rms`), so every sample meets the tolerance whatever its
    batch. Integration stops early at a steady state, when *every* sample's rate of
    change is under the tolerance,
    $\\lVert\\dot z_i\\rVert_\\mathrm{rms} < \\mathrm{atol} + \\mathrm{rtol}\\,\\lVert z_i\\rVert_\\mathrm{rms}$,
    using the controller's tolerances unless `steady_rtol` / `steady_atol` are given.
    `max_t1`, `dt` and the tolerances are traced hyperparameters.

    **Arguments:**

    - `solver`: a `diffrax.AbstractSolver` (default `diffrax.Heun()`).
    - `stepsize_controller`: an adaptive diffrax controller, or `None` for the default PID controller.
    - `max_t1`: the latest end time.
    - `dt`: a fixed step size (then a `diffrax.ConstantStepSize` is used), or `None` for adaptive steps.
    - `steady_state`: stop at a steady state.
    - `steady_rtol`, `steady_atol`: tolerances of the steady-state test.
    - `max_steps`: the most solver steps.
    - `record_energies` / `record_activities`: return the per-layer energies / activities
      at every `record_every`-th solver step (buffers of ``ceil(max_steps / record_every)``,
      NaN after the last step). Energies alone are computed as the solve goes (diffrax
      ``SaveAt(fn=...)``), without storing activities.
    - `check_finite`: stop with an error naming the node whose energy is NaN/inf at the end
      of inference (checked inside the compiled computation with `equinox.error_if`; off by default).
    - `record_every`: the recording interval in solver steps.
    - `batch_mean`: JPC's convention (the vector field of the batch-mean energy, whole-batch
      norms; see `pcframe.inference.AbstractInference`).

    **Example:**

    ```python
    stats = ODEInference(max_t1=20).run(model, x)
    stats["steps"]   # solver steps taken
    ```
    """

    solver: diffrax.AbstractSolver = diffrax.Heun()
    stepsize_controller: diffrax.AbstractStepSizeController | None = None
    max_t1: float = 20.0
    dt: float | None = None
    steady_state: bool = True
    steady_rtol: float | None = None
    steady_atol: float | None = None
    max_steps: int = 4096
    record_energies: bool = False
    record_activities: bool = False
    check_finite: bool = False
    record_every: int = 1
    batch_mean: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.solver, diffrax.AbstractSolver):
            raise TypeError(f"ODEInference solver must be a diffrax solver (e.g. diffrax.Heun()), got {self.solver!r}.")
        if self.stepsize_controller is not None and not isinstance(
            self.stepsize_controller, diffrax.AbstractStepSizeController
        ):
            raise TypeError(
                "ODEInference stepsize_controller must be a diffrax step-size controller "
                f"(e.g. diffrax.PIDController(rtol=1e-3, atol=1e-3)), got {self.stepsize_controller!r}."
            )
        if (
            self.dt is None
            and self.stepsize_controller is not None
            and not isinstance(self.stepsize_controller, diffrax.AbstractAdaptiveStepSizeController)
        ):
            raise ValueError("ODEInference: give a fixed dt, or an adaptive stepsize_controller such as PIDController.")
        if not self.max_t1 > 0:
            raise ValueError(f"ODEInference max_t1 must be positive, got {self.max_t1!r}.")
        for name in ("dt", "steady_rtol", "steady_atol"):
            value = getattr(self, name)
            if value is not None and not _positive(value):
                raise ValueError(f"ODEInference {name} must be a positive number or None, got {value!r}.")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"ODEInference max_steps must be a positive int, got {self.max_steps!r}.")
        rtol, atol = self._tolerances()
        if not (rtol >= 0 and atol >= 0 and rtol + atol > 0):
            raise ValueError(
                f"ODEInference: the tolerances must be non-negative and not both zero, got rtol={rtol!r}, atol={atol!r}."
            )
        if not isinstance(self.record_every, int) or self.record_every < 1:
            raise ValueError(f"ODEInference record_every must be a positive int, got {self.record_every!r}.")

    def controller(self) -> diffrax.AbstractStepSizeController:
        """The step-size controller used: constant with `dt`, else the given or default PID controller."""
        if self.dt is not None:
            return diffrax.ConstantStepSize()
        if self.stepsize_controller is not None:
            return self.stepsize_controller
        norm = batch_rms if self.batch_mean else worst_sample_rms
        return diffrax.PIDController(rtol=1e-3, atol=1e-3, norm=norm)

    def _tolerances(self) -> tuple[Any, Any]:
        controller = self.stepsize_controller or diffrax.PIDController(rtol=1e-3, atol=1e-3)
        rtol = self.steady_rtol if self.steady_rtol is not None else getattr(controller, "rtol", 1e-3)
        atol = self.steady_atol if self.steady_atol is not None else getattr(controller, "atol", 1e-3)
        return rtol, atol

    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """Integrate from ``energy.initial()``; stats ``steps``, ``t1``, ``steady`` and the recorded traces."""
        rtol, atol = self._tolerances()

        def at_steady_state(t: Any, z: Any, args: Any, **kwargs: Any) -> Any:
            return jnp.all(energy.norm(energy.vector_field(t, z, args)) < atol + rtol * energy.norm(z))

        def recorded(t: Any, z: Any, args: Any) -> dict[str, Any]:
            return {
                "energies": energy.with_layers(z)[1] if self.record_energies else None,
                "activities": z if self.record_activities else None,
            }

        recording = self.record_energies or self.record_activities
        saves = [diffrax.SubSaveAt(t1=True)]
        if recording:
            saves.append(diffrax.SubSaveAt(steps=True if self.record_every == 1 else self.record_every, fn=recorded))
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(energy.vector_field),
            self.solver,
            t0=0.0,
            t1=self.max_t1,
            dt0=self.dt,
            y0=energy.initial(),
            stepsize_controller=self.controller(),
            event=diffrax.Event(at_steady_state) if self.steady_state else None,
            saveat=diffrax.SaveAt(subs=saves),
            max_steps=self.max_steps,
            throw=False,
        )
        final_ts, final = solution.ts[0], solution.ys[0]
        z = jax.tree_util.tree_map(lambda a: a[-1], final)
        if self.check_finite:
            z = error_if_not_finite(energy.model, energy.with_layers(z)[1], "ODEInference", z)
        stats: dict[str, Any] = {
            "steps": solution.stats["num_steps"],
            "t1": final_ts[-1],
            "steady": solution.event_mask if self.steady_state else jnp.asarray(False),
        }
        if recording:
            valid = jnp.isfinite(solution.ts[1])
            for name, trace in solution.ys[1].items():
                if trace is not None:
                    stats[name] = jax.tree_util.tree_map(lambda a: _where_valid(valid, a), trace)
        return z, stats


def _where_valid(valid: Any, trace: Any) -> Any:
    return jnp.where(valid.reshape(valid.shape + (1,) * (trace.ndim - 1)), trace, jnp.nan)


def _positive(value: Any) -> bool:
    """Whether a concrete hyperparameter is a positive number (a traced one is checked by its user)."""
    if isinstance(value, (bool, str, bytes)):
        return False
    if isinstance(value, jax.core.Tracer):
        return True
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False
