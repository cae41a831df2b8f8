"""Continuous-time inference: integrate $\\dot z_i = -\\partial F_i/\\partial z_i$ with diffrax."""

from __future__ import annotations

from typing import Any

import diffrax
import jax
import jax.numpy as jnp

from ._finite import error_if_not_finite
from ._strategy import AbstractInference, ActivityEnergy, batch_rms, worst_sample_rms

_TOLERANCE = 1e-4
_STEADY_FACTOR = 10
_JPC_TOLERANCE = 1e-3


class ODEInference(AbstractInference):
    """Integrate each sample's inference dynamics $\\dot z_i = -\\partial F_i/\\partial z_i$ from $t=0$ to at most `max_t1`.

    Any diffrax solver and step-size controller can be used. By default: the Tsit5
    Runge-Kutta method with a PID controller (``rtol = atol = 1e-4``) whose error norm is
    the worst sample's (`worst_sample_rms`), so every sample meets the tolerance whatever
    its batch. Integration stops early at a steady state, when *every* sample's rate of
    change is under the steady-state tolerance,
    $\\lVert\\dot z_i\\rVert_\\mathrm{rms} < \\mathrm{atol}_s + \\mathrm{rtol}_s\\,\\lVert z_i\\rVert_\\mathrm{rms}$,
    with $\\mathrm{rtol}_s = 10\\,\\mathrm{rtol}$ and $\\mathrm{atol}_s = 10\\,\\mathrm{atol}$ of the
    controller (so ``1e-3`` by default) unless `steady_rtol` / `steady_atol` are given.
    `max_t1`, `dt` and the tolerances are traced hyperparameters.

    Why these defaults: a steady-state test as tight as the controller sits at the solver's
    own error, so it fires or not by chance; one ten times looser is reached while the weight
    gradient there stays close to the gradient at the exact equilibrium
    (``benchmarks/ode_defaults.py`` measures both; the numbers are in ``benchmarks/README.md``).

    The steady-state test evaluates the vector field once more after every step, as
    `diffrax.steady_state_event` does: a diffrax event sees the solver's state, not the
    evaluations the step already made. That is one evaluation in seven per Tsit5 step (six
    stages), one in three per Heun step; ``steady_state=False`` saves it.

    **Arguments:**

    - `solver`: a `diffrax.AbstractSolver`, or `None` for the default: `diffrax.Tsit5()`
      (`diffrax.Heun()` with `batch_mean=True`).
    - `stepsize_controller`: an adaptive diffrax controller, or `None` for the default PID controller.
    - `max_t1`: the latest end time.
    - `dt`: a fixed step size (then a `diffrax.ConstantStepSize` is used), or `None` for adaptive steps.
    - `steady_state`: stop at a steady state.
    - `steady_rtol`, `steady_atol`: tolerances of the steady-state test (default: ten times the
      controller's; the controller's own with `batch_mean=True`, as JPC does).
    - `max_steps`: the most solver steps.
    - `record_energies` / `record_activities`: return the per-layer energies / activities
      after every `record_every`-th accepted solver step (buffers of ``ceil(max_steps / record_every)``,
      NaN after the last one; ``stats["accepted_steps"]`` says how many steps were accepted). Energies alone are computed as the solve goes (diffrax
      ``SaveAt(fn=...)``), without storing activities.
    - `check_finite`: stop with an error naming the node whose energy is NaN/inf at the end
      of inference (checked inside the compiled computation with `equinox.error_if`; off by default).
    - `record_every`: the recording interval in solver steps.
    - `batch_mean`: JPC's convention and JPC's `make_pc_step` defaults: the vector field of the
      batch-mean energy, Heun, a PID controller with ``rtol = atol = 1e-3`` on the RMS of the
      whole batch, and a steady-state test with the controller's tolerances (see
      `pcframe.inference.AbstractInference`).

    **Example:**

    ```python
    stats = ODEInference(max_t1=20).run(model, x)
    stats["steps"], stats["steady"]   # solver steps taken; whether every sample reached its steady state
    ```
    """

    solver: diffrax.AbstractSolver | None = None
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
        if self.solver is not None and not isinstance(self.solver, diffrax.AbstractSolver):
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
        rtol, atol = self._controller_tolerances()
        if not (rtol >= 0 and atol >= 0 and rtol + atol > 0):
            raise ValueError(
                f"ODEInference: the tolerances must be non-negative and not both zero, got rtol={rtol!r}, atol={atol!r}."
            )
        if not isinstance(self.record_every, int) or self.record_every < 1:
            raise ValueError(f"ODEInference record_every must be a positive int, got {self.record_every!r}.")

    def solver_used(self) -> diffrax.AbstractSolver:
        """The solver used: the given one, else Tsit5 (Heun with `batch_mean`, as JPC)."""
        if self.solver is not None:
            return self.solver
        return diffrax.Heun() if self.batch_mean else diffrax.Tsit5()

    def controller(self) -> diffrax.AbstractStepSizeController:
        """The step-size controller used: constant with `dt`, else the given or default PID controller."""
        if self.dt is not None:
            return diffrax.ConstantStepSize()
        if self.stepsize_controller is not None:
            return self.stepsize_controller
        if self.batch_mean:
            return diffrax.PIDController(rtol=_JPC_TOLERANCE, atol=_JPC_TOLERANCE, norm=batch_rms)
        return diffrax.PIDController(rtol=_TOLERANCE, atol=_TOLERANCE, norm=worst_sample_rms)

    def _controller_tolerances(self) -> tuple[Any, Any]:
        """The ``(rtol, atol)`` of the given controller, else of the default one."""
        default = _JPC_TOLERANCE if self.batch_mean else _TOLERANCE
        controller = self.stepsize_controller
        return getattr(controller, "rtol", default), getattr(controller, "atol", default)

    def _tolerances(self) -> tuple[Any, Any]:
        """The steady-state test's ``(rtol, atol)``: given, else ten times the controller's (JPC: the controller's)."""
        factor = 1 if self.batch_mean else _STEADY_FACTOR
        rtol, atol = self._controller_tolerances()
        return (
            self.steady_rtol if self.steady_rtol is not None else factor * rtol,
            self.steady_atol if self.steady_atol is not None else factor * atol,
        )

    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """Integrate from ``energy.initial()``; stats ``steps``, ``accepted_steps``, ``t1``, ``steady`` and the recorded traces.

        ``steps`` counts every step the solver tried (the work done); ``accepted_steps`` those it
        kept, one recorded entry each.
        """
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
            self.solver_used(),
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
            "accepted_steps": solution.stats["num_accepted_steps"],
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
