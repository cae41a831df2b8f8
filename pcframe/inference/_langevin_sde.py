"""Monte Carlo PC in continuous time: each sample's Langevin SDE through a diffrax solver (see `_langevin`)."""

from __future__ import annotations

from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jax.flatten_util import ravel_pytree

from ._continuous import _positive
from ._langevin import _check_common, _inference_key
from ._strategy import AbstractInference, ActivityEnergy


class _SampleBrownianPaths(diffrax.AbstractPath):
    """One `diffrax.VirtualBrownianTree` per free activity and sample, raveled like the activities.

    The path of leaf $\\ell$, sample $i$ has key ``fold_in(fold_in(key, l), i)``: a sample's path
    depends on its position in the batch, not on the batch size.
    """

    t0: Any
    t1: Any
    tol: Any
    key: Any
    shapes: tuple = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)

    def evaluate(self, t0: Any, t1: Any = None, left: bool = True) -> Any:
        parts = []
        for leaf, shape in enumerate(self.shapes):
            leaf_key = jax.random.fold_in(self.key, leaf)
            keys = jax.vmap(lambda i, k=leaf_key: jax.random.fold_in(k, i))(jnp.arange(shape[0]))
            struct = jax.ShapeDtypeStruct(shape[1:], self.dtype)

            def increment(k: Any, struct: Any = struct) -> Any:
                tree = diffrax.VirtualBrownianTree(self.t0, self.t1, self.tol, struct, key=k)
                return tree.evaluate(t0, t1, left)

            parts.append(jax.vmap(increment)(keys).reshape(-1))
        return jnp.concatenate(parts)


class LangevinSDEInference(AbstractInference):
    """Integrate each sample's Langevin SDE with a diffrax solver, from $t=0$ to $t_1 = T\\,\\Delta t$:

    $$\\mathrm dz_i = -\\partial F_i/\\partial z_i\\,\\mathrm dt + \\sqrt{2/\\beta}\\;\\mathrm dW_i(t),$$

    whose stationary distribution is $p(z_i) \\propto \\exp(-\\beta F_i(z_i))$ (the continuous-time
    limit of `LangevinInference`; with `diffrax.Euler`, i.e. Euler–Maruyama, one step of size
    $\\Delta t$ is a `LangevinInference` update with $\\eta = \\Delta t$ and another draw of the noise).
    Each sample $i$ and free activity $\\ell$ has its own Brownian motion $W$, a
    `diffrax.VirtualBrownianTree` (tolerance $\\Delta t/2$) keyed by ``fold_in(fold_in(k, l), i)``
    with $k$ one key per inference from `pcframe.RKG` (or the fixed `key`): a sample's path depends
    on its position in the batch, not on the batch size.

    **Fixed steps only.** The steps are constant ($\\Delta t$ = `dt`, `steps` of them): diffrax's
    adaptive step-size control for SDEs and `ODEInference`'s steady-state stop do not apply (a
    sampler has no steady state; its activities keep moving).

    **Arguments:**

    - `solver`: a diffrax solver that needs only Brownian increments (`diffrax.Euler()`, the
      default: Euler–Maruyama; `diffrax.Heun()`, `diffrax.Midpoint()`, ...: the noise is additive,
      so Itô and Stratonovich solutions agree). Solvers that need Lévy areas (`diffrax.SEA`,
      `diffrax.ShARK`, ...) are not supported.
    - `dt`: the step $\\Delta t$ (traced).
    - `steps`: number of steps (a Python int); $t_1 = $ `steps` $\\cdot$ `dt`.
    - `beta`: the inverse temperature $\\beta$ (traced); ``float("inf")`` integrates the gradient flow.
    - `key`: a fixed PRNG key, or `None` (default): a new key from `RKG` each time.

    **Example:**

    ```python
    stats = LangevinSDEInference(dt=0.05, steps=200).run(model, x)   # activities: one posterior sample
    ```
    """

    solver: diffrax.AbstractSolver | None = None
    dt: float = 0.05
    steps: int = 100
    beta: float = 1.0
    key: Any = None

    def __post_init__(self) -> None:
        _check_common("LangevinSDEInference", self)
        if self.steps < 1:
            raise ValueError(f"LangevinSDEInference steps must be a positive int, got {self.steps!r}.")
        if not _positive(self.dt):
            raise ValueError(f"LangevinSDEInference dt must be positive, got {self.dt!r}.")
        if self.solver is not None and not isinstance(self.solver, diffrax.AbstractSolver):
            raise TypeError(
                f"LangevinSDEInference solver must be a diffrax solver such as diffrax.Euler(), got {self.solver!r}."
            )

    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """Integrate the SDE over ``steps * dt`` from ``energy.initial()``; stats ``steps`` and ``t1``."""
        z0 = energy.initial()
        flat0, unravel = ravel_pytree(z0)
        t1 = self.dt * self.steps
        path = _SampleBrownianPaths(
            0.0, t1, self.dt / 2, _inference_key(self), tuple(tuple(a.shape) for a in z0), flat0.dtype
        )
        scale = jnp.sqrt(2.0 / self.beta).astype(flat0.dtype)

        def drift(t: Any, y: Any, args: Any) -> Any:
            return ravel_pytree(energy.vector_field(t, unravel(y), args))[0]

        def diffusion(t: Any, y: Any, args: Any) -> Any:
            return lx.DiagonalLinearOperator(jnp.full(y.shape, scale, y.dtype))

        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, path))
        solution = diffrax.diffeqsolve(
            terms,
            self.solver if self.solver is not None else diffrax.Euler(),
            t0=0.0,
            t1=t1,
            dt0=self.dt,
            y0=flat0,
            stepsize_controller=diffrax.ConstantStepSize(),
            saveat=diffrax.SaveAt(t1=True),
            max_steps=self.steps + 1,
            throw=False,
        )
        z = unravel(solution.ys[-1])
        return z, {"steps": solution.stats["num_steps"], "t1": solution.ts[-1]}
