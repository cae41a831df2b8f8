"""Monte Carlo predictive coding: Langevin dynamics on the activities, discrete or as an SDE.

From "Learning probability distributions of sensory inputs with Monte Carlo predictive
coding" (Oliviers, Tang and Bogacz, 2024): instead of descending the energy to its minimum,
the activities follow the (unadjusted) Langevin dynamics of each sample's energy $F_i$,

$$z_{i,t+1} = z_{i,t} - \\eta\\,\\partial F_i/\\partial z_{i,t} + \\sqrt{2\\eta/\\beta}\\;\\xi_{i,t},
  \\qquad \\xi_{i,t} \\sim \\mathcal N(0, I),$$

whose stationary distribution is $p(z_i \\mid \\text{clamped}) \\propto \\exp(-\\beta F_i(z_i))$
(exactly so as $\\eta \\to 0$; for a finite step the chain's covariance is off by $O(\\eta)$).
$\\beta$ is an inverse temperature, 1 by default, where $\\exp(-F)$ is the model's own joint
density: the activities then *sample* the posterior instead of finding its mode, and a weight
step along $-\\partial F/\\partial\\theta$ at the samples is a stochastic gradient step of the
log likelihood, $\\partial_\\theta \\log p(x) = -\\mathbb E_{p(z\\mid x)}[\\partial_\\theta F]$.

- `LangevinInference` (discrete, a `StepwiseInference`): usable with every training mode.
  Used by `train_supervised` / `train_unsupervised`, the weight gradient is taken at the last
  sample; `train_monte_carlo` averages it over the last `samples` states of the chain.
- `LangevinSDEInference`: the continuous-time SDE
  $\\mathrm dz_i = -\\partial F_i/\\partial z_i\\,\\mathrm dt + \\sqrt{2/\\beta}\\,\\mathrm dW_i$
  through diffrax (Euler–Maruyama by default), with one Brownian path per sample.
- `sample`: draws from a trained generative model by running the chain with the output free.

**Randomness.** The noise comes from the global `pcframe.RKG` (tracked by every pcframe `jit`,
so the training steps advance it): each inference draws one key $k$ from it (one per batch),
unless the strategy was given a fixed ``key``. ``RKG.seed(s)`` makes a run reproducible. The
noise of free activity $\\ell$ (in the order of ``ActivityEnergy.initial()``) of sample $i$ at step
$t$ is ``jax.random.normal(fold_in(fold_in(fold_in(k, t), l), i), shape_of_one_sample)``: it
depends on the key, the step, the node and the sample's *position* $i$ in the batch, not on the
batch size (sample $i$ of a batch of 8 and of a batch of 64 get the same noise from the same key).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from ..core._random import RKG
from ._continuous import _positive
from ._finite import error_if_not_finite
from ._strategy import ActivityEnergy, StepwiseInference


def langevin_noise(key: Any, t: Any, z: list[Any]) -> list[Any]:
    """The standard normal draws $\\xi_t$ of step `t` for the activities `z` (batched on axis 0).

    Leaf $\\ell$, sample $i$: ``jax.random.normal(fold_in(fold_in(fold_in(key, t), l), i), z[l].shape[1:])``,
    so a sample's noise depends on its position in the batch, not on the batch size.

    **Arguments:**

    - `key`: the inference's key.
    - `t`: the step (an int or a 0-d integer array).
    - `z`: the free activities, each an array with a leading batch axis.

    **Returns:** a list aligned with `z`.

    **Example:** ``xi = langevin_noise(jax.random.PRNGKey(0), 0, [jnp.zeros((4, 3))])``
    """
    step_key = jax.random.fold_in(key, t)
    noise = []
    for leaf, a in enumerate(z):
        leaf_key = jax.random.fold_in(step_key, leaf)
        keys = jax.vmap(lambda i, k=leaf_key: jax.random.fold_in(k, i))(jnp.arange(a.shape[0]))
        noise.append(jax.vmap(lambda k, a=a: jax.random.normal(k, a.shape[1:], a.dtype))(keys))
    return noise


def _inference_key(strategy: Any) -> Any:
    """The strategy's fixed key, else a new one from the global `RKG` (inside a pcframe transform)."""
    return RKG() if strategy.key is None else strategy.key


def _check_common(name: str, strategy: Any) -> None:
    if isinstance(strategy.steps, bool) or not isinstance(strategy.steps, int) or strategy.steps < 0:
        raise ValueError(f"{name} steps must be a non-negative int, got {strategy.steps!r}.")
    if not _positive(strategy.beta):
        raise ValueError(
            f"{name} beta (the inverse temperature) must be positive (or inf: no noise), got {strategy.beta!r}."
        )
    if strategy.key is not None and not (hasattr(strategy.key, "dtype") and hasattr(strategy.key, "shape")):
        raise TypeError(
            f"{name} key must be a jax PRNG key such as jax.random.PRNGKey(0), or None; got {strategy.key!r}."
        )


class LangevinInference(StepwiseInference):
    """Sample the free activities with `steps` Langevin updates (Monte Carlo PC), each sample its own:

    $$z_{i,t+1} = z_{i,t} - \\eta\\,\\partial F_i/\\partial z_{i,t} + \\sqrt{2\\eta/\\beta}\\;\\xi_{i,t},
      \\qquad \\xi_{i,t}\\sim\\mathcal N(0, I),$$

    run as one `jax.lax.scan`; $z_T$ is (approximately, for small $\\eta$ and large $T$) a sample of
    $p(z_i) \\propto \\exp(-\\beta F_i(z_i))$, the posterior of the free activities given the clamped
    ones. With ``beta=float("inf")`` (no noise) the updates are `DiscreteInference`'s gradient descent
    (the same numbers to float rounding: XLA may fuse the two programs' additions differently). The
    noise is drawn as the module docstring says (`langevin_noise`): one key per inference from the
    global `pcframe.RKG`, or the fixed `key`.

    **Weight updates.** With `train_supervised`, `train_unsupervised` or `train_hybrid` the weights
    step along $-\\partial_\\theta\\mathcal F(z_T)$, a one-sample estimate of the log-likelihood gradient
    $-\\mathbb E_{p(z\\mid x)}[\\partial_\\theta \\mathcal F]$ (the first `steps` updates are the burn-in);
    `train_monte_carlo` averages it over more states of the chain. `train_incremental` takes one
    weight step per Langevin update.

    **Arguments:**

    - `step_size`: $\\eta$ (traced). Stability needs $\\eta < 2/\\lambda_\\max$ of the energy's curvature.
    - `steps`: number of updates $T$ (a Python int).
    - `beta`: the inverse temperature $\\beta$ (traced); ``float("inf")`` removes the noise.
    - `key`: a fixed PRNG key (traced) for every call, or `None` (default): a new key from `RKG`
      each time. A fixed key repeats the same noise on every batch: for tests and reproducing one call.
    - `record_energies`, `record_activities`: return the per-layer energies / the activities before
      every update (``stats["energies"]``, ``stats["activities"]``, leading axis $T$): the chain.
    - `check_finite`: stop with an error naming the node whose energy became NaN/inf.

    **Example:**

    ```python
    stats = LangevinInference(step_size=0.05, steps=200).run(model, x)    # activities: one posterior sample
    train_unsupervised(model, optim_w, images, inference=LangevinInference(step_size=0.05, steps=100))
    ```
    """

    step_size: float = 0.05
    steps: int = 100
    beta: float = 1.0
    key: Any = None
    record_energies: bool = False
    record_activities: bool = False
    check_finite: bool = False

    def __post_init__(self) -> None:
        _check_common("LangevinInference", self)
        if not _positive(self.step_size):
            raise ValueError(f"LangevinInference step_size must be positive, got {self.step_size!r}.")

    def noise_scale(self) -> Any:
        """$\\sqrt{2\\eta/\\beta}$: the standard deviation of each update's noise."""
        return jnp.sqrt(2.0 * self.step_size / self.beta)

    def init_state(self, z: list[Any]) -> Any:
        """``(key, t)``: the inference's key (from `RKG` unless fixed) and the step counter 0."""
        return _inference_key(self), jnp.asarray(0, jnp.int32)

    def apply(self, grads: list[Any], z: list[Any], state: Any) -> tuple[list[Any], Any]:
        """One Langevin update (see the class docstring), noise from `langevin_noise`; the step $t$ advances."""
        key, t = state
        scale = self.noise_scale()
        noise = langevin_noise(key, t, z)
        updates = [-self.step_size * g + scale * xi for g, xi in zip(grads, noise)]
        return optax.apply_updates(z, updates), (key, t + 1)

    def solve(self, energy: ActivityEnergy) -> tuple[list[Any], dict[str, Any]]:
        """`steps` updates from ``energy.initial()``; stats ``steps`` and the recorded chain."""

        def update(carry: tuple, _: Any) -> tuple[tuple, Any]:
            z, state = carry
            (_, per_layer), grads = energy.value_and_grad(z)
            if self.check_finite:
                z = error_if_not_finite(energy.model, per_layer, "LangevinInference", z)
            record = (per_layer if self.record_energies else None, z if self.record_activities else None)
            return self.apply(grads, z, state), record

        z0 = energy.initial()
        (z, _), (energies, activities) = jax.lax.scan(update, (z0, self.init_state(z0)), None, self.steps)
        stats: dict[str, Any] = {"steps": jnp.asarray(self.steps)}
        if self.record_energies:
            stats["energies"] = energies
        if self.record_activities:
            stats["activities"] = activities
        return z, stats
