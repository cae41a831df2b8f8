"""Discrete inference: T steps of gradient descent (or any optax optimiser) on the activities."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._finite import error_if_not_finite
from ._strategy import ActivityEnergy, StepwiseInference

UNROLL_UP_TO = 16
"""On a CPU, `DiscreteInference(unroll=None)` writes out loops of at most this many updates."""


class DiscreteInference(StepwiseInference):
    """Minimise the energy over the free activities with `steps` updates, each sample its own:

    $$z_{i,t+1} = z_{i,t} + \\eta\\,\\mathrm{update}(\\partial F_i/\\partial z_{i,t}),$$

    plain gradient descent $z_{i,t+1} = z_{i,t} - \\eta\\,\\partial F_i/\\partial z_{i,t}$ when no
    `optimizer` is given, run as one `jax.lax.scan`. The optimiser state is created
    afresh for every batch. `step_size` $\\eta$ is a traced hyperparameter: a sweep over
    it compiles once. An optax optimiser is static (built with ``optax.sgd(0.1)``, its
    learning rate is baked in): build it once, outside the training loop.

    **Arguments:**

    - `optimizer`: an optax transformation (e.g. ``optax.sgd(0.1)``, ``optax.adam(0.05)``),
      or `None` for plain gradient descent.
    - `steps`: number of updates $T$: a Python int (a `scan`, static), or a 0-d integer array, then
      traced (a `while` loop: a sweep over $T$ compiles once; no recording, and not reverse-differentiable).
    - `record_energies`: return the per-layer energies before every recorded update.
    - `record_activities`: return the activities before every recorded update.
    - `record_every`: record every `record_every`-th update (buffers of ``steps // record_every``).
    - `check_finite`: stop with an error naming the node whose energy became NaN/inf
      (checked inside the compiled loop with `equinox.error_if`; off by default).
    - `remat`: wrap each update in `jax.checkpoint`. Results are the same; when the
      inference itself is differentiated (e.g. ``jax.grad`` through `run` in a
      bilevel objective), the loop then keeps only the carried activities of each
      step and recomputes the rest on the backward pass.
    - `step_size`: $\\eta$, multiplying the optimiser's update (1.0 keeps the optimiser's own).
    - `batch_mean`: JPC's convention, activities descend the batch-mean energy (see
      `pcframe.inference.AbstractInference`).
    - `unroll`: how many updates one iteration of the compiled loop holds, as `jax.lax.scan`'s
      `unroll` (`True`: the whole loop written out, `1`: a rolled loop). `None` (the default)
      writes out up to `UNROLL_UP_TO` = 16 updates on a CPU and rolls the loop otherwise:
      XLA's CPU backend runs convolutions inside a loop several times slower than the same
      convolutions written out (``benchmarks/README.md``), while a rolled loop compiles in a
      time independent of $T$ (a 128-layer network with T = 128 would otherwise compile for minutes).
      Results are the same either way (to float rounding); unrolling costs compile time
      roughly proportional to the updates written out.

    **Example:**

    ```python
    stats = DiscreteInference(step_size=0.1, steps=20).run(model, x)
    stats = DiscreteInference(optax.sgd(0.1), steps=20).run(model, x)   # the same updates
    ```
    """

    optimizer: optax.GradientTransformation | None = None
    steps: int = 20
    record_energies: bool = False
    record_activities: bool = False
    check_finite: bool = False
    remat: bool = False
    step_size: float = 1.0
    record_every: int = 1
    batch_mean: bool = False
    unroll: int | bool | None = None

    def __post_init__(self) -> None:
        if self.optimizer is not None and not isinstance(self.optimizer, optax.GradientTransformation):
            raise TypeError(
                f"DiscreteInference needs an optax optimiser such as optax.sgd(0.1), got {self.optimizer!r} "
                "(or None: gradient descent with step_size)."
            )
        if _traced_steps(self.steps):
            if self.record_energies or self.record_activities:
                raise ValueError(
                    "DiscreteInference: recording needs a Python int `steps` (the record buffers are sized by it); "
                    f"got the array {self.steps!r}."
                )
        elif isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(
                f"DiscreteInference steps must be a non-negative int, got {self.steps!r} "
                "(or a 0-d integer array: then the number of steps is traced)."
            )
        if not (
            self.unroll is None or isinstance(self.unroll, bool) or (isinstance(self.unroll, int) and self.unroll >= 1)
        ):
            raise ValueError(
                f"DiscreteInference unroll must be None (the backend's choice), True, False or a positive int, "
                f"got {self.unroll!r}."
            )
        if not isinstance(self.record_every, int) or self.record_every < 1:
            raise ValueError(f"DiscreteInference record_every must be a positive int, got {self.record_every!r}.")

    def transformation(self) -> optax.GradientTransformation:
        """The optax transformation of the activities' gradients (before the `step_size` scaling)."""
        return self.optimizer if self.optimizer is not None else optax.sgd(1.0)

    def loop_unroll(self) -> int | bool:
        """The `unroll` given to `jax.lax.scan`: `unroll`, or the backend's choice when it is `None` (see above)."""
        if self.unroll is not None:
            return self.unroll
        if jax.default_backend() == "cpu" and isinstance(self.steps, int) and self.steps <= UNROLL_UP_TO:
            return True
        return 1

    def init_state(self, z: list[Any]) -> Any:
        """The optimiser's state for the activities `z`."""
        return self.transformation().init(z)

    def apply(self, grads: list[Any], z: list[Any], state: Any) -> tuple[list[Any], Any]:
        """$z + \\eta\\,\\mathrm{update}(\\partial\\mathcal{E}/\\partial z)$ and the optimiser's new state."""
        updates, state = self.transformation().update(grads, state, z)
        updates = jax.tree_util.tree_map(lambda u: self.step_size * u, updates)
        return optax.apply_updates(z, updates), state

    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """`steps` updates from ``energy.initial()``; stats ``steps`` and the recorded traces."""
        unroll = self.loop_unroll()
        recording = self.record_energies or self.record_activities

        def update(carry: tuple, _: Any) -> tuple[tuple, Any]:
            z, state = carry
            (_, per_layer), grads = energy.value_and_grad(z)
            if self.check_finite:
                z = error_if_not_finite(energy.model, per_layer, "DiscreteInference", z)
            record = (per_layer if self.record_energies else None, z if self.record_activities else None)
            return self.apply(grads, z, state), record

        body = jax.checkpoint(update) if self.remat else update

        def advance(carry: tuple, _: Any) -> tuple[tuple, None]:  # an update that records nothing
            return body(carry, None)[0], None

        def recorded_block(carry: tuple, _: Any) -> tuple[tuple, Any]:
            carry, record = body(carry, None)
            carry, _ = jax.lax.scan(advance, carry, None, self.record_every - 1, unroll=unroll)
            return carry, record

        z0 = energy.initial()
        carry = (z0, self.init_state(z0))
        if _traced_steps(self.steps):  # a traced number of steps: a while loop, T changes compile nothing
            carry = jax.lax.fori_loop(0, self.steps, lambda _, c: advance(c, None)[0], carry)
            return carry[0], {"steps": jnp.asarray(self.steps)}
        if recording and self.record_every > 1:
            blocks, rest = divmod(self.steps, self.record_every)
            carry, (energies, activities) = jax.lax.scan(recorded_block, carry, None, blocks, unroll=unroll)
            carry, _ = jax.lax.scan(advance, carry, None, rest, unroll=unroll)
        elif recording:
            carry, (energies, activities) = jax.lax.scan(body, carry, None, self.steps, unroll=unroll)
        else:
            carry, _ = jax.lax.scan(advance, carry, None, self.steps, unroll=unroll)
        stats: dict[str, Any] = {"steps": jnp.asarray(self.steps)}
        if self.record_energies:
            stats["energies"] = energies
        if self.record_activities:
            stats["activities"] = activities
        return carry[0], stats


def _traced_steps(steps: Any) -> bool:
    """Whether `steps` is an integer array (traced) rather than a Python int."""
    return hasattr(steps, "dtype") and jnp.ndim(steps) == 0 and jnp.issubdtype(steps.dtype, jnp.integer)
