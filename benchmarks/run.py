"""Benchmark pcframe's training step against a hand-written pure-JAX reference ("the limit").

For each workload the script

1. builds the reference (pure JAX + optax, the whole inference loop in one
   ``jax.jit``, weights as raw arrays; also with the weights in ``eqx.nn.Linear``)
   and pcframe's versions (the pcax-style tutorial step, with inference as a
   `pxf.scan` and as a Python ``for`` loop) from identical initial weights, and
   checks that one training step gives the same weights;
2. times them interleaved after a warm-up, every call ending in
   ``jax.block_until_ready``, and reports the median, the range, the ratio to the
   reference and the time of the first call (trace + compile + run);
3. measures the per-call dispatch overhead of ``pcframe.functional.jit`` on a
   stateful function of 20 parameters against a plain ``jax.jit``;
4. runs PCX (``import pcx``) the same way if it is installed.

Run ``python benchmarks/run.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu

Batch = tuple[jax.Array, jax.Array]
Weights = list[tuple[ArrayLike, ArrayLike]]

ATOL, RTOL = 1e-5, 1e-4
NUM_BATCHES = 4
DISPATCH_PARAMS = 20


# --------------------------------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A PC training step to benchmark: an MLP, its optimisers and its data.

    `scale_h_grads` multiplies the activity gradients (of the batch-mean energy)
    by the batch size before the activity optimiser, as pcax's
    ``scale_by_batch_size``. `ce_output` makes the last layer's energy a
    cross entropy instead of a squared error.
    """

    name: str
    description: str
    sizes: tuple[int, ...]
    act_fn: Callable[[jax.Array], jax.Array]
    ce_output: bool
    batch: int
    T: int
    h_optimiser: Callable[[], optax.GradientTransformation]
    w_optimiser: Callable[[], optax.GradientTransformation]
    scale_h_grads: bool
    make_data: Callable[[int, int, np.random.Generator], Batch]


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


WORKLOADS = {
    "W0": Workload(
        name="W0 tiny",
        description="two moons, MLP 2-32-32-2 leaky_relu, CE output, batch 32, T=8",
        sizes=(2, 32, 32, 2),
        act_fn=jax.nn.leaky_relu,
        ce_output=True,
        batch=32,
        T=8,
        h_optimiser=lambda: optax.sgd(1e-2 * 32),
        w_optimiser=lambda: optax.adamw(1e-2),
        scale_h_grads=True,
        make_data=two_moons,
    ),
    "W1": Workload(
        name="W1 mlp",
        description="MNIST-shaped, MLP 784-128-128-10 tanh, SE energies, batch 64, T=20",
        sizes=(784, 128, 128, 10),
        act_fn=jnp.tanh,
        ce_output=False,
        batch=64,
        T=20,
        h_optimiser=lambda: optax.sgd(0.1),
        w_optimiser=lambda: optax.adam(1e-3),
        scale_h_grads=False,
        make_data=mnist_like,
    ),
}


def initial_weights(sizes: Sequence[int], seed: int = 0) -> Weights:
    """Weights and biases of each layer, initialised as `equinox.nn.Linear` does."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    layers = [eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)]
    return [(layer.weight, layer.bias) for layer in layers]


# --------------------------------------------------------------------------------------------------------------------
# Variants: the reference, pcframe (scan and Python loop), PCX
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One implementation of a workload's training step.

    `step(x, y)` runs one training step and returns a pytree to block on;
    `weights()` reads the current weights.
    """

    name: str
    step: Callable[[jax.Array, jax.Array], object]
    weights: Callable[[], Weights]


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


def reference_train_step(w: Workload, layers: list[Layer], opt_state, x, y):
    """Feedforward init, `w.T` activity steps in a `lax.fori_loop`, one weight step; returns the new weights and state."""
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
    grads = jax.grad(lambda layers: reference_energy(w, layers, hs, x, y))(layers)
    updates, opt_state = w.w_optimiser().update(grads, opt_state, layers)
    return optax.apply_updates(layers, updates), opt_state


def linear_from(W: jax.Array, b: jax.Array) -> eqx.nn.Linear:
    """An `eqx.nn.Linear` holding the given weight and bias."""
    layer = eqx.nn.Linear(W.shape[1], W.shape[0], key=jax.random.PRNGKey(0))
    return eqx.tree_at(lambda l: (l.weight, l.bias), layer, (W, b))


class Reference:
    """The hand-written training loop; the model (a list of layers) and the optimiser state are passed explicitly."""

    def __init__(self, w: Workload, layers: list[Layer]) -> None:
        self.layers = layers
        self.opt_state = w.w_optimiser().init(layers)
        self._train = jax.jit(lambda layers, state, x, y: reference_train_step(w, layers, state, x, y))

    def step(self, x: jax.Array, y: jax.Array):
        """One training step on the batch."""
        self.layers, self.opt_state = self._train(self.layers, self.opt_state, x, y)
        return self.layers

    def weights(self) -> Weights:
        """Current weights."""
        pairs = [(l.weight, l.bias) if isinstance(l, eqx.nn.Linear) else l for l in self.layers]
        return [(np.asarray(W), np.asarray(b)) for W, b in pairs]


def build_reference(w: Workload, weights: Weights) -> Variant:
    """The reference ("the limit"): weights as raw ``(W, b)`` arrays, so a call flattens only lists and tuples."""
    reference = Reference(w, [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights])
    return Variant("reference (pure JAX)", reference.step, reference.weights)


def build_reference_eqx(w: Workload, weights: Weights) -> Variant:
    """The same step with the weights in `eqx.nn.Linear` modules (what equinox code usually passes to `jax.jit`)."""
    reference = Reference(w, [linear_from(W, b) for W, b in weights])
    return Variant("reference (eqx.nn.Linear)", reference.step, reference.weights)


class PCModel(pxc.EnergyModule):
    """The pcax tutorial's MLP: ``Linear -> act_fn -> Vode`` per hidden layer, a frozen output Vode."""

    def __init__(self, sizes: Sequence[int], act_fn: Callable, out_energy: Callable) -> None:
        super().__init__()
        self.act_fn = px.static(act_fn)
        self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode((s,)) for s in sizes[1:-1]] + [pxc.Vode((sizes[-1],), out_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y):
        for v, l in zip(self.vodes[:-1], self.layers[:-1]):
            x = v(self.act_fn(l(x)))
        x = self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


@pxf.vmap(pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0)), in_axes=(0, 0), out_axes=0)
def pc_forward(x, y, *, model):
    """Batched forward pass (activities batched, weights shared)."""
    return model(x, y)


@pxf.vmap(pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0)), in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def pc_energy(x, *, model):
    """Batch-mean energy and the output prediction."""
    y_ = model(x, None)
    return jax.lax.pmean(model.energy().sum(), "batch"), y_


def make_pcframe_train(scale_h_grads: bool, use_scan: bool):
    """pcframe's training step as in the tutorial; inference as a `pxf.scan` or a Python ``for`` loop."""

    @pxf.jit(static_argnums=0)
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            pc_forward(x, y, model=model)
        optim_h.init(pxu.Mask(pxc.VodeParam)(model))

        def h_step(i, x, *, model, optim_h):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, g = pxf.value_and_grad(
                    pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), [False, True]), has_aux=True
                )(pc_energy)(x, model=model)
            optim_h.step(model, g["model"], scale_by_batch_size=scale_h_grads)
            return x, None

        if use_scan:
            pxf.scan(h_step, xs=jnp.arange(T))(x, model=model, optim_h=optim_h)
        else:
            for i in range(T):
                h_step(i, x, model=model, optim_h=optim_h)
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.Mask(pxnn.LayerParam, [False, True]), has_aux=True)(pc_energy)(x, model=model)
        optim_w.step(model, g["model"])

    return train_on_batch


def build_pcframe(w: Workload, weights: Weights, use_scan: bool) -> Variant:
    """A pcframe variant: build the model, copy the weights in, set up the optimisers as the tutorial does."""
    px.RKG.seed(0)
    model = PCModel(w.sizes, w.act_fn, pxc.ce_energy if w.ce_output else pxc.se_energy)
    for layer, (W, b) in zip(model.layers, weights):
        layer.nn.weight.set(W)
        layer.nn.bias.set(b)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        pc_forward(jnp.zeros((w.batch, w.sizes[0])), None, model=model)
    optim_h = pxu.Optim(w.h_optimiser(), pxu.Mask(pxc.VodeParam)(model))
    optim_w = pxu.Optim(w.w_optimiser(), pxu.Mask(pxnn.LayerParam)(model))
    train = make_pcframe_train(w.scale_h_grads, use_scan)

    def weights_now() -> Weights:
        return [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]

    def step(x, y):
        train(w.T, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
        return weights_now()

    name = "pcframe (pxf.scan)" if use_scan else "pcframe (python loop)"
    return Variant(name, step, lambda: [(np.asarray(W), np.asarray(b)) for W, b in weights_now()])


def import_pcx():
    """The PCX modules ``(px, pxc, pxnn, pxf, pxu)``, or `None` when PCX is not installed."""
    try:
        names = ("pcx", "pcx.predictive_coding", "pcx.nn", "pcx.functional", "pcx.utils")
        return tuple(importlib.import_module(name) for name in names)
    except ImportError:
        return None


def build_pcx(w: Workload, weights: Weights, pcx_modules) -> Variant:
    """PCX's version of the tutorial step (PCX's own API: `M` masks, `Optim` from a factory, Python loop)."""
    ppx, ppxc, ppxnn, ppxf, ppxu = pcx_modules

    class Model(ppxc.EnergyModule):
        def __init__(self) -> None:
            super().__init__()
            self.act_fn = ppx.static(w.act_fn)
            self.layers = [ppxnn.Linear(a, b) for a, b in zip(w.sizes[:-1], w.sizes[1:])]
            out_energy = ppxc.ce_energy if w.ce_output else ppxc.se_energy
            self.vodes = [ppxc.Vode() for _ in w.sizes[1:-1]] + [ppxc.Vode(out_energy)]
            self.vodes[-1].h.frozen = True

        __call__ = PCModel.__call__

    batched = ppxu.M(ppxc.VodeParam | ppxc.VodeParam.Cache).to((None, 0))

    @ppxf.vmap(batched, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @ppxf.vmap(batched, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model):
        y_ = model(x, None)
        return jax.lax.pmean(model.energy().sum(), "batch"), y_

    scale = w.batch if w.scale_h_grads else None

    @ppxf.jit(static_argnums=0)
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        model.train()
        with ppxu.step(model, ppxc.STATUS.INIT, clear_params=ppxc.VodeParam.Cache):
            forward(x, y, model=model)
        optim_h.init(ppxu.M_hasnot(ppxc.VodeParam, frozen=True)(model))
        for _ in range(T):
            with ppxu.step(model, clear_params=ppxc.VodeParam.Cache):
                _, g = ppxf.value_and_grad(ppxu.M_hasnot(ppxc.VodeParam, frozen=True).to([False, True]), has_aux=True)(
                    energy
                )(x, model=model)
            optim_h.step(model, g["model"], scale_by=scale)
        with ppxu.step(model, clear_params=ppxc.VodeParam.Cache):
            _, g = ppxf.value_and_grad(ppxu.M(ppxnn.LayerParam).to([False, True]), has_aux=True)(energy)(x, model=model)
        optim_w.step(model, g["model"])

    ppx.RKG.seed(0)
    model = Model()
    for layer, (W, b) in zip(model.layers, weights):
        layer.nn.weight.set(W)
        layer.nn.bias.set(b)
    with ppxu.step(model, ppxc.STATUS.INIT, clear_params=ppxc.VodeParam.Cache):
        forward(jnp.zeros((w.batch, w.sizes[0])), None, model=model)
    optim_h = ppxu.Optim(w.h_optimiser)
    optim_w = ppxu.Optim(w.w_optimiser, ppxu.M(ppxnn.LayerParam)(model))

    def weights_now() -> Weights:
        return [(layer.nn.weight.get(), layer.nn.bias.get()) for layer in model.layers]

    def step(x, y):
        train_on_batch(w.T, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
        return weights_now()

    version = getattr(ppx, "__version__", "")
    return Variant(f"PCX {version} (python loop)" if version else "PCX (python loop)", step, weights_now)


# --------------------------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table (times in seconds)."""

    workload: str
    variant: str
    times: list[float]
    first_call: float
    max_diff: float | None
    unit: str = "ms"


def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by `fn()`, waiting for its result."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def max_abs_diff(a: Weights, b: Weights) -> float:
    """Largest absolute difference between two sets of weights."""
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for pa, pb in zip(a, b) for x, y in zip(pa, pb))


def check_agreement(other: Variant, ref_after: Weights) -> float:
    """Assert that `other`'s weights after its first step match the reference's; return the max abs difference."""
    other_after = other.weights()
    for (W, b), (W_ref, b_ref) in zip(other_after, ref_after):
        np.testing.assert_allclose(W, W_ref, rtol=RTOL, atol=ATOL, err_msg=f"{other.name}: weights differ")
        np.testing.assert_allclose(b, b_ref, rtol=RTOL, atol=ATOL, err_msg=f"{other.name}: biases differ")
    return max_abs_diff(other_after, ref_after)


def warm_process(w: Workload, weights: Weights, batch: Batch) -> None:
    """Run throwaway reference and pcframe steps so one-time costs of the process (first use of each JAX op,
    optax, pcframe's caches) are not charged to whichever variant happens to compile first."""
    for variant in (build_reference(w, weights), build_pcframe(w, weights, True)):
        jax.block_until_ready(variant.step(*batch))


def first_step_of_pcx(w: Workload, weights: Weights, batch: Batch, pcx_modules) -> tuple[Variant, float] | None:
    """PCX's variant and the time of its first call, or `None` (with the reason printed) if PCX's API does not fit."""
    try:
        variant = build_pcx(w, weights, pcx_modules)
        return variant, timed(lambda: variant.step(*batch))
    except Exception as error:  # PCX is optional and its API changes between releases: report, do not stop
        print(f"  PCX failed: {type(error).__name__}: {error}")
        return None


def run_workload(w: Workload, warmup: int, reps: int, pcx_modules) -> list[Row]:
    """Build every variant, check agreement after one step (the timed first call), then time them interleaved.

    pcframe must agree with the reference (an assertion); PCX's difference is only reported.
    """
    xs, ys = w.make_data(NUM_BATCHES, w.batch, np.random.default_rng(0))
    batches = [(xs[i], ys[i]) for i in range(NUM_BATCHES)]
    weights = initial_weights(w.sizes)
    warm_process(w, weights, batches[0])
    variants = [
        build_reference(w, weights),
        build_reference_eqx(w, weights),
        build_pcframe(w, weights, True),
        build_pcframe(w, weights, False),
    ]
    first = {v.name: timed(lambda v=v: v.step(*batches[0])) for v in variants}
    ref_after = variants[0].weights()
    moved = max_abs_diff(ref_after, weights)
    assert moved > 10 * ATOL, f"{w.name}: one step barely changed the weights ({moved:.1e}); the check would be void"
    diffs = {variants[0].name: None}
    for v in variants[1:]:
        diffs[v.name] = check_agreement(v, ref_after)
        print(f"  {v.name} agrees with the reference after one step: max |dw| = {diffs[v.name]:.1e}")
    pcx = first_step_of_pcx(w, weights, batches[0], pcx_modules) if pcx_modules else None
    if pcx is not None:
        variant, first[variant.name] = pcx
        diffs[variant.name] = max_abs_diff(variant.weights(), ref_after)
        print(f"  {variant.name}: max |dw| to the reference after one step = {diffs[variant.name]:.1e}")
        variants.append(variant)
    print(f"  (one step moved the weights by up to {moved:.1e}; tolerance atol={ATOL}, rtol={RTOL})")

    times = time_interleaved(variants, batches, warmup, reps)
    return [Row(w.name, v.name, times[v.name], first[v.name], diffs[v.name]) for v in variants]


def time_interleaved(variants: list[Variant], batches: list[Batch], warmup: int, reps: int) -> dict[str, list[float]]:
    """Per-call seconds of each variant; every round calls each variant once, in a rotating order."""
    for i in range(warmup):
        for v in variants:
            jax.block_until_ready(v.step(*batches[i % len(batches)]))
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for i in range(reps):
        x, y = batches[i % len(batches)]
        shift = i % len(variants)
        for v in variants[shift:] + variants[:shift]:
            times[v.name].append(timed(lambda v=v, x=x, y=y: v.step(x, y)))
    return times


class ParamBag(px.Module):
    """A module holding one parameter per array, for the dispatch benchmark."""

    def __init__(self, arrays: list[jax.Array]) -> None:
        self.params = [px.Param(a) for a in arrays]


@pxf.jit()
def bump_params(*, bag):
    """Add one to every parameter of `bag`, in place."""
    for p in bag.params:
        p.value = p.value + 1.0


@jax.jit
def bump_arrays(arrays):
    """Add one to every array (the functional twin of `bump_params`)."""
    return [a + 1.0 for a in arrays]


def repeat(fn: Callable[[], object], n: int) -> object:
    """Call `fn` `n` times without waiting in between; return the last result."""
    for _ in range(n - 1):
        fn()
    return fn()


def measure_dispatch(calls: int, rounds: int) -> list[Row]:
    """Per-call time of a pcframe-jitted stateful no-op-ish function vs plain ``jax.jit`` on the same arrays."""
    arrays = [jnp.full((16,), float(i)) for i in range(DISPATCH_PARAMS)]
    bag = ParamBag(arrays)
    state = {"arrays": arrays}

    def plain():
        state["arrays"] = bump_arrays(state["arrays"])
        return state["arrays"]

    def stateful():
        bump_params(bag=bag)
        return bag

    first = {"jax.jit": timed(plain), "pxf.jit": timed(stateful)}
    per_call: dict[str, list[float]] = {"jax.jit": [], "pxf.jit": []}
    for i in range(rounds):
        order = [("jax.jit", plain), ("pxf.jit", stateful)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            per_call[name].append(timed(lambda fn=fn: repeat(fn, calls)) / calls)
    workload = f"dispatch ({DISPATCH_PARAMS} params)"
    return [Row(workload, name, per_call[name], first[name], None, unit="us") for name in per_call]


# --------------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------------


def environment(argv: Sequence[str], load_at_start: float) -> str:
    """Date, machine, versions and command, as one markdown paragraph."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{datetime.date.today().isoformat()}; {os.cpu_count()} CPU cores ({cpu}); "
        f"jax {jax.__version__} ({jax.default_backend()}), equinox {eqx.__version__}, optax {optax.__version__}, "
        f"pcframe {px.__version__}, Python {platform.python_version()}; "
        f"1-min load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
        f"command: `{' '.join(['python benchmarks/run.py', *argv])}`"
    )


def format_time(seconds: float, unit: str) -> str:
    """`seconds` in milliseconds or microseconds."""
    return f"{seconds * 1e3:.3f} ms" if unit == "ms" else f"{seconds * 1e6:.1f} µs"


def table(rows: list[Row]) -> str:
    """The results as a markdown table.

    The baseline of a workload is its first row. Ratio and difference are paired: the median over rounds of
    (this variant's time / or - the baseline's time in the same round), which cancels most of the load that a
    busy machine adds to both.
    """
    lines = [
        "| workload | variant | median per call | min - max | ratio to baseline | extra per call "
        "| first call (s) | max abs dw |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    baselines: dict[str, Row] = {}
    for row in rows:
        base = baselines.setdefault(row.workload, row).times
        ratio = statistics.median(t / b for t, b in zip(row.times, base))
        extra = statistics.median(t - b for t, b in zip(row.times, base))
        diff = "-" if row.max_diff is None else f"{row.max_diff:.1e}"
        lines.append(
            f"| {row.workload} | {row.variant} | {format_time(statistics.median(row.times), row.unit)} | "
            f"{format_time(min(row.times), row.unit)} - {format_time(max(row.times), row.unit)} | "
            f"{ratio:.2f}x | {format_time(extra, row.unit)} | {row.first_call:.2f} | {diff} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute in all)")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.workloads.split(",") if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    return args


def main(argv: Sequence[str]) -> None:
    """Run the chosen workloads and the dispatch benchmark, then print the table."""
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    warmup, reps, calls, rounds = (3, 30, 200, 7) if args.quick else (20, 1000, 2000, 31)
    timed(lambda: jax.jit(lambda a: a + 1)(jnp.zeros(3)))
    pcx_modules = import_pcx()
    if pcx_modules is None:
        print("PCX not installed: skipped")
    rows: list[Row] = []
    for name in args.workloads.split(","):
        print(f"{name}: {WORKLOADS[name].description}")
        rows += run_workload(WORKLOADS[name], warmup, reps, pcx_modules)
    rows += measure_dispatch(calls, rounds)
    print()
    print(environment(argv, load_at_start))
    print()
    print(table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
