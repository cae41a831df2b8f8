"""Soak test: train a W1-sized PC MLP for many steps and check that memory stays flat and nothing recompiles.

Runs pcframe's packaged `train_supervised` step and a tutorial-style `pxf.jit` step
(feedforward init, T inference steps in a `pxf.scan`, one weight update) on the W1
workload (784-128-128-10, tanh, batch 64, T=20 SGD steps at lr 0.1, Adam 1e-3).
After a warm-up it counts XLA compilations (a `jax.monitoring` listener) and the
resident memory (VmRSS / VmHWM from /proc/self/status). Exits 1 if anything
compiles after warm-up or memory grows by more than `--max-growth` percent.

    python benchmarks/soak.py --steps 5000
    python benchmarks/soak.py --steps 10000 --distinct --kinds tutorial keyword

With `--distinct` every step gets a batch never seen before (made on the host each
step), so nothing may keep old batches alive; kind `keyword` passes the batch to the
jitted step by keyword (``step(T, x=x, y=y, model=...)``), where it is traced data.
With `--evaluate-every N` the feedforward accuracy on a test batch of another size (200)
is computed every N steps, as the tutorials do it: `evaluate_accuracy` for the packaged
step; for the others, activities cleared, a `pxf.jit` forward under `STATUS.INIT`,
activities cleared again.

    python benchmarks/soak.py --steps 3000 --evaluate-every 10 --kinds packaged tutorial
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP

sys.path.insert(0, str(Path(__file__).parent))
from variants import tutorial_predict  # noqa: E402

SIZES, BATCH, T = [784, 128, 128, 10], 64, 20
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
BATCHED = pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0))
FREE = pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), (False, True))
WEIGHTS = pxu.Mask(pxnn.LayerParam, (False, True))


class Counter:
    """Counts XLA backend compilations through `jax.monitoring`."""

    def __init__(self) -> None:
        self.compilations = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            self.compilations += 1


def memory_kib() -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process, in KiB."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(line.split()[1])
    return found


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
def _forward(x, y, *, model):
    return model(x, y)


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=None, axis_name="batch")
def _energy(x, *, model):
    model(x, None)
    return jax.lax.pmean(model.energy(), "batch")


def _tutorial_step(steps, x, y, *, model, optim_w, optim_h):
    """The two-moons tutorial's training step on W1."""
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        _forward(x, y, model=model)
    optim_h.init(pxu.Mask(pxc.VodeParam)(model))

    def inference_step(_, x, *, model, optim_h):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(FREE)(_energy)(x, model=model)
        optim_h.step(model, g["model"], True)
        return x, None

    pxf.scan(inference_step, xs=jnp.arange(steps))(x, model=model, optim_h=optim_h)
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        e, g = pxf.value_and_grad(WEIGHTS)(_energy)(x, model=model)
    optim_w.step(model, g["model"])
    return e


tutorial_step = pxf.jit(_tutorial_step, static_argnums=0, overwrites=pxc.VodeParam)


def tutorial_accuracy(model, x, y):
    """Accuracy of the tutorials' evaluation (`variants.tutorial_predict`: a feedforward pass on the test batch)."""
    return jnp.mean(jnp.argmax(tutorial_predict(model, x), -1) == jnp.argmax(y, -1))


@pxf.jit(static_argnums=0, overwrites=pxc.VodeParam)
def keyword_step(steps, *, x, y, model, optim_w, optim_h):
    """The same step with the batch passed by keyword."""
    return _tutorial_step(steps, x, y, model=model, optim_w=optim_w, optim_h=optim_h)


def make_runner(kind: str):
    """``(run(x, y), evaluate(x, y))``: one training step of the chosen kind (returns the energy), and its evaluation."""
    model = PCMLP(SIZES)
    optim_w = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    if kind == "packaged":
        inference = pxi.DiscreteInference(step_size=0.1, steps=T)
        run = lambda x, y: pxi.train_supervised(model, optim_w, x, y, inference=inference)["energy"]  # noqa: E731
        return run, lambda x, y: pxi.evaluate_accuracy(model, x, y)
    optim_h = pxu.Optim(optax.sgd(0.1))
    x0, y0 = jnp.zeros((BATCH, SIZES[0])), jnp.zeros((BATCH, SIZES[-1]))
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        _forward(x0, y0, model=model)
    optim_h.init(pxu.Mask(pxc.VodeParam)(model))
    evaluate = lambda x, y: tutorial_accuracy(model, x, y)  # noqa: E731
    if kind == "keyword":
        return lambda x, y: keyword_step(T, x=x, y=y, model=model, optim_w=optim_w, optim_h=optim_h), evaluate
    return lambda x, y: tutorial_step(T, x, y, model=model, optim_w=optim_w, optim_h=optim_h), evaluate


def soak(
    kind: str, steps: int, warmup: int, counter: Counter, distinct: bool, evaluate_every: int = 0, n_batches: int = 16
) -> dict:
    """Train for `steps` steps (evaluating every `evaluate_every`); returns compilations and memory after warm-up and at the end."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((n_batches, BATCH, SIZES[0])).astype(np.float32)
    ys = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], (n_batches, BATCH))]

    def batch(i: int) -> tuple[jax.Array, jax.Array]:
        if distinct:  # a new batch on the host and on the device every step
            noise = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
            return jnp.asarray(xs[i % n_batches] + 0.01 * noise), jnp.asarray(ys[i % n_batches])
        return jnp.asarray(xs[i % n_batches]), jnp.asarray(ys[i % n_batches])

    x_test = jnp.asarray(rng.standard_normal((200, SIZES[0])).astype(np.float32))
    y_test = jnp.asarray(np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], 200)])
    run, evaluate = make_runner(kind)

    def step(i: int) -> jax.Array:
        energy = run(*batch(i))
        if evaluate_every and i % evaluate_every == evaluate_every - 1:
            evaluate(x_test, y_test)
        return energy

    for i in range(warmup):
        step(i).block_until_ready()
    compiled, warm = counter.compilations, memory_kib()
    energy = None
    for i in range(warmup, steps):
        energy = step(i)
        if i % 100 == 0:
            energy.block_until_ready()  # keep the dispatch queue bounded
    energy = float(energy.block_until_ready()) if energy is not None else float("nan")
    end = memory_kib()
    return {
        "steps": steps,
        "recompiles": counter.compilations - compiled,
        "rss_warm_kib": warm["VmRSS"],
        "rss_end_kib": end["VmRSS"],
        "peak_warm_kib": warm["VmHWM"],
        "peak_end_kib": end["VmHWM"],
        "growth_pct": 100.0 * (end["VmRSS"] - warm["VmRSS"]) / warm["VmRSS"],
        "energy": energy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="training steps per kind (default 5000)")
    parser.add_argument("--warmup", type=int, default=50, help="steps before measuring (default 50)")
    parser.add_argument("--max-growth", type=float, default=3.0, help="allowed RSS growth in percent (default 3)")
    parser.add_argument(
        "--kinds", nargs="+", default=["packaged", "tutorial"], choices=["packaged", "tutorial", "keyword"]
    )
    parser.add_argument("--distinct", action="store_true", help="a batch never seen before at every step")
    parser.add_argument("--evaluate-every", type=int, default=0, help="evaluate every N steps (default: never)")
    args = parser.parse_args(argv)
    counter = Counter()
    failed = False
    for kind in args.kinds:
        r = soak(kind, args.steps, args.warmup, counter, args.distinct, args.evaluate_every)
        print(
            f"{kind:9s} distinct={args.distinct} evaluate_every={args.evaluate_every} steps={r['steps']} recompiles_after_warmup={r['recompiles']} "
            f"rss_warm={r['rss_warm_kib'] / 1024:.1f}MiB rss_end={r['rss_end_kib'] / 1024:.1f}MiB "
            f"peak_warm={r['peak_warm_kib'] / 1024:.1f}MiB peak_end={r['peak_end_kib'] / 1024:.1f}MiB "
            f"growth={r['growth_pct']:+.2f}% final_energy={r['energy']:.4f}",
            flush=True,
        )
        failed |= r["recompiles"] > 0 or r["growth_pct"] > args.max_growth
    print("FAIL" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
