"""W3: continuous-time inference (diffrax Heun + PID controller) on W1's network.

Compares, on the same batches and initial weights:

- the discrete T=20 pure-JAX reference of W1 (the time baseline);
- a hand-written pure-JAX + diffrax step that integrates dz/dt = -dF/dz the way
  JPC does (Heun, PID controller, stop at a steady state), as the ODE reference;
- pcframe's `train_supervised` with `ODEInference` (Heun + PID, and Euler with a
  fixed step), whose weights must agree with the hand-written ODE step.

The number of vector-field evaluations is counted by running the hand-written
solver once more with a host callback in the vector field (not timed).

The steady-state test uses rtol = atol = 1e-4, not the controller's 1e-3: W1's
energy is a batch mean, so at the feed-forward initialisation the vector field's
RMS (6e-4) already passes a 1e-3 test and every solver would stop after 0 steps.
With 1e-4 no solver reaches the steady state by t = 20 (it takes t ~ 105), so
the steady-state comparison of Heun + PID with Euler runs to max_t1 = 200.
pcframe's engines are per sample by default; here they run with ``batch_mean=True``
(JPC's convention) so that their weights can be compared with the hand-written step.
"""

from __future__ import annotations

import statistics

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from measure import Row, first_steps
from timing import time_interleaved
from variants import build_packaged
from workloads import W1, Reference, Variant, Workload, batches, build_reference, initial_weights, reference_energy

W3 = W1.with_(name="W3 ode", description="W1's network, diffrax Heun + PID (rtol=atol=1e-3), max_t1=20")
TOL = 1e-3
STEADY_TOL = 1e-4
LONG_ATOL = 5e-5
"""Agreement tolerance after up to 200 solver steps and one Adam step: Adam turns float rounding in
near-zero gradients into steps of the order of its learning rate (1e-3), on a few of 100k weights."""
CONFIGS = [  # (label, solver, fixed dt or None, max_t1)
    ("Heun + PID, max_t1=20 (W3)", diffrax.Heun(), None, 20.0),
    ("Euler dt=0.1, max_t1=20", diffrax.Euler(), 0.1, 20.0),
    ("Heun + PID, max_t1=200", diffrax.Heun(), None, 200.0),
    ("Euler dt=1, max_t1=200", diffrax.Euler(), 1.0, 200.0),
]


def _rms(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(a**2) for a in leaves) / sum(a.size for a in leaves))


def solve(w: Workload, layers, x, y, solver, dt, max_t1, counter=None, tol=TOL, steady_tol=STEADY_TOL):
    """Integrate the activities from their feedforward values to a steady state; returns ``(hs, num_steps)``."""
    hs = []
    for layer in layers[:-1]:
        W, b = layer
        hs.append(w.act_fn((hs[-1] if hs else x) @ W.T + b))

    def field(t, hs, args):
        if counter is not None:
            jax.debug.callback(counter)
        return jax.tree_util.tree_map(jnp.negative, jax.grad(lambda h: reference_energy(w, layers, h, x, y))(hs))

    def steady(t, hs, args, **kwargs):
        return _rms(field(t, hs, args)) < steady_tol + steady_tol * _rms(hs)

    controller = diffrax.ConstantStepSize() if dt else diffrax.PIDController(rtol=tol, atol=tol)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        solver,
        0.0,
        max_t1,
        dt,
        hs,
        stepsize_controller=controller,
        event=diffrax.Event(steady),
        max_steps=4096,
        throw=False,
    )
    return [z[0] for z in solution.ys], (solution.stats["num_steps"], solution.event_mask)


def ode_train_step(w: Workload, layers, opt_state, x, y, solver, dt, max_t1):
    """The hand-written ODE training step: solve, then one weight step at the equilibrium."""
    hs, steps = solve(w, layers, x, y, solver, dt, max_t1)
    grads = jax.grad(lambda layers: reference_energy(w, layers, hs, x, y))(layers)
    updates, opt_state = w.w_optimiser().update(grads, opt_state, layers)
    return optax.apply_updates(layers, updates), opt_state, steps


def build_ode_reference(w: Workload, weights, solver, dt, max_t1, name: str) -> Variant:
    """The hand-written diffrax step as a `Variant` (weights as raw arrays)."""
    ref = Reference(w, [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights])
    train = jax.jit(lambda layers, state, x, y: ode_train_step(w, layers, state, x, y, solver, dt, max_t1))

    def step(x, y):
        ref.layers, ref.opt_state, steps = train(ref.layers, ref.opt_state, x, y)
        return ref.layers, steps

    return Variant(name, step, ref.weights, lambda x, y: train.lower(ref.layers, ref.opt_state, x, y))


def count_evaluations(w: Workload, weights, x, y, solver, dt, max_t1) -> tuple[int, int, bool]:
    """``(solver steps, vector-field evaluations, steady)`` of one hand-written solve, counted with a host callback."""
    calls = []
    layers = [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights]
    count = lambda: calls.append(1)  # noqa: E731
    _, (steps, steady) = jax.jit(lambda x, y: solve(w, layers, x, y, solver, dt, max_t1, counter=count))(x, y)
    jax.effects_barrier()
    return int(steps), len(calls), bool(steady)


def recording(variant: Variant) -> tuple[Variant, list]:
    """The variant with its step's outputs appended to the returned list (to read the first call's metrics)."""
    outputs: list = []
    step = variant.step
    variant.step = lambda x, y: outputs.append(step(x, y)) or outputs[-1]
    return variant, outputs


def run_w3(warmup: int, reps: int, quick: bool) -> tuple[list[Row], str]:
    """Time W3's variants against the discrete T=20 reference; returns the rows and a table of steps/evaluations.

    `quick` leaves out the slow Euler dt=0.1 configuration.
    """
    configs = [c for c in CONFIGS if not (quick and c[2] == 0.1)]
    data = batches(W3)
    weights = initial_weights(W3.sizes)
    baseline = build_reference(W3, weights)
    baseline.name = "reference (pure JAX, discrete T=20)"
    first, diffs = first_steps([baseline], data[0], weights, W3.name)
    pairs, outputs = [], []
    for label, solver, dt, max_t1 in configs:
        options = {
            "solver": solver,
            "dt": dt,
            "max_t1": max_t1,
            "steady_rtol": STEADY_TOL,
            "steady_atol": STEADY_TOL,
            "batch_mean": True,  # the hand-written step integrates the batch-mean flow, as JPC does
        }
        pair = [
            build_ode_reference(W3, weights, solver, dt, max_t1, f"reference (pure JAX + diffrax, {label})"),
            build_packaged(W3, weights, ode=True, name=f"pcframe train_supervised (ODEInference, {label})", **options),
        ]
        pair[1], recorded = recording(pair[1])
        outputs.append(recorded)
        f, d = first_steps(pair, data[0], weights, W3.name, atol=LONG_ATOL)
        first.update(f)
        diffs.update(d)
        pairs.append(pair)
    variants = [baseline, *(v for pair in pairs for v in pair)]
    times = time_interleaved(variants, data, warmup, reps)
    rows = [Row(W3.name, v.name, times[v.name], first[v.name], diffs[v.name]) for v in variants]

    lines = [
        "| solver | steps (pcframe) | steps (hand-written) | vector-field evaluations | steady state reached "
        "| pcframe median per call (ms) | ratio to discrete T=20 | ratio to hand-written |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for (label, solver, dt, max_t1), (ref, mine), recorded in zip(configs, pairs, outputs):
        pcframe_steps = int(np.asarray(recorded[0]["steps"]))
        steps, evaluations, steady = count_evaluations(W3, weights, *data[0], solver, dt, max_t1)
        ratio = statistics.median(t / b for t, b in zip(times[mine.name], times[baseline.name]))
        to_ref = statistics.median(t / b for t, b in zip(times[mine.name], times[ref.name]))
        median = statistics.median(times[mine.name]) * 1e3
        lines.append(
            f"| {label} | {pcframe_steps} | {steps} | {evaluations} | {'yes' if steady else 'no'} "
            f"| {median:.3f} | {ratio:.2f}x | {to_ref:.2f}x |"
        )
    return rows, "\n".join(lines)
