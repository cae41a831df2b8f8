"""PCX (pcax's PyPI name, ``import pcx``) against the pure-JAX reference, in PCX's own environment.

PCX 0.6.3 pins ``jax<0.5`` and ``equinox<0.12``, so it cannot share pcframe's
environment. This script imports only the pcframe-free modules `workloads` and
`timing`; ``run.py --pcx-python PATH`` runs it with that interpreter and merges
its JSON output (times of the reference and of PCX, measured in the same
process, and PCX's weight difference to the reference after four steps).

Usage: ``/tmp/pcx-venv/bin/python benchmarks/pcx_compare.py W0,W1 WARMUP REPS``.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
from timing import max_abs_diff, time_interleaved, timed
from workloads import WORKLOADS, Variant, Workload, batches, build_reference, initial_weights


def build_pcx(w: Workload, weights) -> Variant:
    """PCX's version of the tutorial step (PCX's own API: `M` masks, `Optim` from a factory, Python loop)."""
    import pcx as ppx
    import pcx.functional as ppxf
    import pcx.nn as ppxnn
    import pcx.predictive_coding as ppxc
    import pcx.utils as ppxu

    class Model(ppxc.EnergyModule):
        def __init__(self) -> None:
            super().__init__()
            self.act_fn = ppx.static(w.act_fn)
            self.layers = [ppxnn.Linear(a, b) for a, b in zip(w.sizes[:-1], w.sizes[1:])]
            out_energy = ppxc.ce_energy if w.ce_output else ppxc.se_energy
            self.vodes = [ppxc.Vode() for _ in w.sizes[1:-1]] + [ppxc.Vode(out_energy)]
            self.vodes[-1].h.frozen = True

        def __call__(self, x, y):
            for v, layer in zip(self.vodes[:-1], self.layers[:-1]):
                x = v(self.act_fn(layer(x)))
            x = self.vodes[-1](self.layers[-1](x))
            if y is not None:
                self.vodes[-1].set("h", y)
            return self.vodes[-1].get("u")

    batched = ppxu.M(ppxc.VodeParam | ppxc.VodeParam.Cache).to((None, 0))

    @ppxf.vmap(batched, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @ppxf.vmap(batched, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model):
        y_ = model(x, None)
        return jax.lax.pmean(model.energy().sum(), "batch"), y_

    scale = w.batch if w.scale_h_grads else None

    def free():
        """A new mask of the free activities at every use: PCX's ``M.to`` changes the mask it is called on."""
        return ppxu.M_hasnot(ppxc.VodeParam, frozen=True)

    @ppxf.jit(static_argnums=0)
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        model.train()
        with ppxu.step(model, ppxc.STATUS.INIT, clear_params=ppxc.VodeParam.Cache):
            forward(x, y, model=model)
        optim_h.init(free()(model))
        for _ in range(T):
            with ppxu.step(model, clear_params=ppxc.VodeParam.Cache):
                _, g = ppxf.value_and_grad(free().to([False, True]), has_aux=True)(energy)(x, model=model)
            optim_h.step(model, g["model"], scale_by=scale, allow_none=True)
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

    def weights_now():
        return [(layer.nn.weight.get(), layer.nn.bias.get()) for layer in model.layers]

    def step(x, y):
        train_on_batch(w.T, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
        return weights_now()

    return Variant("PCX 0.6.3 (python loop)", step, weights_now)


def compare(w: Workload, warmup: int, reps: int) -> dict:
    """First call, agreement and interleaved per-call times of the reference and PCX on one workload."""
    data = batches(w)
    weights = initial_weights(w.sizes)
    reference, pcx = build_reference(w, weights), build_pcx(w, weights)
    first = {v.name: timed(lambda v=v: v.step(*data[0])) for v in (reference, pcx)}
    for x, y in data[1:]:  # agreement after several calls: a mask spent by its first use shows only from the second
        reference.step(x, y)
        pcx.step(x, y)
    diff = max_abs_diff(pcx.weights(), reference.weights())
    times = time_interleaved([reference, pcx], data, warmup, reps)
    return {"workload": w.name, "first": first, "max_diff": diff, "times": times, "jax": jax.__version__}


if __name__ == "__main__":
    names, warmup, reps = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps([compare(WORKLOADS[name], warmup, reps) for name in names]))
