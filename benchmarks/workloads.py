"""The benchmark workloads (W0-W3) and the hand-written pure-JAX reference step ("the limit").

This module imports only JAX, equinox, optax and NumPy (not pcframe), so the
PCX comparison can import it from a virtual environment with PCX's JAX pin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

Batch = tuple[jax.Array, jax.Array]
Weights = list[tuple[ArrayLike, ArrayLike]]


@dataclass(frozen=True)
class Workload:
    """A PC training step to benchmark: an MLP, its optimisers and its data.

    `scale_h_grads` multiplies the activity gradients (of the batch-mean energy)
    by the batch size before the activity optimiser, as pcax's
    ``scale_by_batch_size``. `ce_output` makes the last layer's energy a
    cross entropy instead of a squared error. `h_lr` is the activity optimiser's
    learning rate (`optax.sgd`).
    """

    name: str
    description: str
    sizes: tuple[int, ...]
    act_fn: Callable[[jax.Array], jax.Array]
    ce_output: bool
    batch: int
    T: int
    h_lr: float
    w_optimiser: Callable[[], optax.GradientTransformation]
    scale_h_grads: bool
    make_data: Callable[[int, int, np.random.Generator], Batch]

    def h_optimiser(self) -> optax.GradientTransformation:
        """The activity optimiser (re-created for every batch)."""
        return optax.sgd(self.h_lr)

    def with_(self, **changes) -> Workload:
        """A copy with some fields changed (e.g. ``w.with_(T=128)``)."""
        return dataclasses.replace(self, **changes)


def two_moons(n: int, batch: int, rng: np.random.Generator) -> Batch:
    """`n` batches of `batch` noisy two-moons points (noise 0.2) with one-hot labels."""
    labels = rng.integers(0, 2, (n, batch))
    angle = rng.uniform(0.0, np.pi, (n, batch))
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    lower = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=-1)
    points = np.where(labels[..., None] == 0, upper, lower) + rng.normal(0.0, 0.2, (n, batch, 2))
    return jnp.asarray(points, jnp.float32), jax.nn.one_hot(labels, 2)


def mnist_like(n: int, batch: int, rng: np.random.Generator) -> Batch:
    """`n` batches of random 784-pixel images in [0, 1] with random one-hot labels (timing ignores the values)."""
    images = rng.uniform(0.0, 1.0, (n, batch, 784))
    return jnp.asarray(images, jnp.float32), jax.nn.one_hot(rng.integers(0, 10, (n, batch)), 10)


W1 = Workload(
    name="W1 mlp",
    description="MNIST-shaped, MLP 784-128-128-10 tanh, SE energies, batch 64, T=20",
    sizes=(784, 128, 128, 10),
    act_fn=jnp.tanh,
    ce_output=False,
    batch=64,
    T=20,
    h_lr=0.1,
    w_optimiser=lambda: optax.adam(1e-3),
    scale_h_grads=True,
    make_data=mnist_like,
)

WORKLOADS = {
    "W0": Workload(
        name="W0 tiny",
        description="two moons, MLP 2-32-32-2 leaky_relu, CE output, batch 32, T=8",
        sizes=(2, 32, 32, 2),
        act_fn=jax.nn.leaky_relu,
        ce_output=True,
        batch=32,
        T=8,
        h_lr=1e-2 * 32,
        w_optimiser=lambda: optax.adamw(1e-2),
        scale_h_grads=True,
        make_data=two_moons,
    ),
    "W1": W1,
    "W2": W1.with_(
        name="W2 wide",
        description="MNIST-shaped, MLP 784-512x5-10 tanh, SE energies, batch 256, T=20",
        sizes=(784, 512, 512, 512, 512, 512, 10),
        batch=256,
    ),
}


def initial_weights(sizes: Sequence[int], seed: int = 0) -> Weights:
    """Weights and biases of each layer, initialised as `equinox.nn.Linear` does."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    layers = [eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)]
    return [(layer.weight, layer.bias) for layer in layers]


def batches(w: Workload, n: int = 4) -> list[Batch]:
    """`n` fixed batches of the workload's data."""
    xs, ys = w.make_data(n, w.batch, np.random.default_rng(0))
    return [(xs[i], ys[i]) for i in range(n)]


@dataclass
class Variant:
    """One implementation of a workload's training step.

    `step(x, y)` runs one training step and returns a pytree to block on;
    `weights()` reads the current weights; `lower(x, y)` (optional) returns the
    `jax.stages.Lowered` step, for XLA's memory analysis.
    """

    name: str
    step: Callable[[jax.Array, jax.Array], object]
    weights: Callable[[], Weights]
    lower: Callable[[jax.Array, jax.Array], object] | None = None


Layer = eqx.nn.Linear | tuple[jax.Array, jax.Array]


def affine(layer: Layer, z: jax.Array) -> jax.Array:
    """``W z + b`` for a batch `z`, with the layer an `eqx.nn.Linear` or a raw ``(W, b)`` pair."""
    if isinstance(layer, eqx.nn.Linear):
        return jax.vmap(layer)(z)
    W, b = layer
    return z @ W.T + b


def reference_energy(w: Workload, layers: list[Layer], hs: list[jax.Array], x, y) -> jax.Array:
    """Batch-mean PC energy: per sample, the sum over layers of 0.5 ||z_l - f(W_l z_{l-1} + b_l)||^2."""
    total = jnp.zeros(x.shape[0])
    below = x
    for i, (layer, above) in enumerate(zip(layers, [*hs, y])):
        pre = affine(layer, below)
        if i < len(layers) - 1:
            total = total + 0.5 * jnp.sum((above - w.act_fn(pre)) ** 2, axis=-1)
        elif w.ce_output:
            total = total - jnp.sum(above * jax.nn.log_softmax(pre, axis=-1), axis=-1)
        else:
            total = total + 0.5 * jnp.sum((above - pre) ** 2, axis=-1)
        below = above
    return jnp.mean(total)


def reference_equilibrium(w: Workload, layers: list[Layer], x, y) -> list[jax.Array]:
    """Feedforward init, then `w.T` activity steps in a `lax.fori_loop`; returns the hidden activities."""
    hs = []
    for layer in layers[:-1]:
        hs.append(w.act_fn(affine(layer, hs[-1] if hs else x)))
    tx_h = w.h_optimiser()
    scale = x.shape[0] if w.scale_h_grads else 1

    def inference_step(_, carry):
        hs, state_h = carry
        grads = jax.grad(lambda hs: reference_energy(w, layers, hs, x, y))(hs)
        updates, state_h = tx_h.update([g * scale for g in grads], state_h, hs)
        return optax.apply_updates(hs, updates), state_h

    hs, _ = jax.lax.fori_loop(0, w.T, inference_step, (hs, tx_h.init(hs)))
    return hs


def _all_finite(tree) -> jax.Array:
    return jnp.isfinite(sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


def reference_train_step(w: Workload, layers: list[Layer], opt_state, x, y, guard: str = ""):
    """Inference (`reference_equilibrium`), then one weight step; returns the new weights and optimiser state.

    `guard` keeps the update only where its tests hold (the packaged step's promise is ``"Egws"``):
    ``E`` the energy, ``g`` every gradient, ``w`` every new weight, ``s`` every new optimiser-state
    value finite; ``x`` a predicate ready at the start, ``1`` one gradient element (timing studies).
    """
    hs = reference_equilibrium(w, layers, x, y)
    energy, grads = jax.value_and_grad(lambda layers: reference_energy(w, layers, hs, x, y))(layers)
    updates, new_state = w.w_optimiser().update(grads, opt_state, layers)
    new_layers = optax.apply_updates(layers, updates)
    if not guard:
        return new_layers, new_state
    tests = {
        "E": lambda: jnp.isfinite(energy),
        "g": lambda: _all_finite(grads),
        "w": lambda: _all_finite(new_layers),
        "s": lambda: _all_finite(new_state),
        "x": lambda: jnp.isfinite(x[0, 0]),
        "1": lambda: jnp.isfinite(grads[0][0][0, 0]),
    }
    keep = jnp.logical_and.reduce(jnp.stack([tests[part]() for part in guard]))
    select = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, old)  # noqa: E731
    return select(new_layers, layers), select(new_state, opt_state)


def linear_from(W: jax.Array, b: jax.Array) -> eqx.nn.Linear:
    """An `eqx.nn.Linear` holding the given weight and bias."""
    layer = eqx.nn.Linear(W.shape[1], W.shape[0], key=jax.random.PRNGKey(0))
    return eqx.tree_at(lambda l: (l.weight, l.bias), layer, (W, b))


class Reference:
    """The hand-written training loop; the model (a list of layers) and the optimiser state are passed explicitly."""

    def __init__(self, w: Workload, layers: list[Layer], guard: str = "") -> None:
        self.layers = layers
        self.opt_state = w.w_optimiser().init(layers)
        self._train = jax.jit(lambda layers, state, x, y: reference_train_step(w, layers, state, x, y, guard))

    def step(self, x: jax.Array, y: jax.Array):
        """One training step on the batch."""
        self.layers, self.opt_state = self._train(self.layers, self.opt_state, x, y)
        return self.layers

    def lower(self, x: jax.Array, y: jax.Array):
        """The lowered step (for XLA's cost and memory analysis)."""
        return self._train.lower(self.layers, self.opt_state, x, y)

    def weights(self) -> Weights:
        """Current weights."""
        pairs = [(l.weight, l.bias) if isinstance(l, eqx.nn.Linear) else l for l in self.layers]
        return [(np.asarray(W), np.asarray(b)) for W, b in pairs]


def build_reference(w: Workload, weights: Weights) -> Variant:
    """The reference ("the limit"): weights as raw ``(W, b)`` arrays, so a call flattens only lists and tuples."""
    reference = Reference(w, [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights])
    return Variant("reference (pure JAX)", reference.step, reference.weights, reference.lower)


def build_reference_guarded(w: Workload, weights: Weights, guard: str = "Egws", name: str | None = None) -> Variant:
    """The reference keeping its update only where the packaged step's guard would (see `reference_train_step`)."""
    reference = Reference(w, [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights], guard)
    return Variant(name or "reference (pure JAX, guarded)", reference.step, reference.weights, reference.lower)


def build_reference_eqx(w: Workload, weights: Weights) -> Variant:
    """The same step with the weights in `eqx.nn.Linear` modules (what equinox code usually passes to `jax.jit`)."""
    reference = Reference(w, [linear_from(W, b) for W, b in weights])
    return Variant("reference (eqx.nn.Linear)", reference.step, reference.weights, reference.lower)
