"""Run by tests/scale/test_data_parallel.py in a process that sees 8 CPU devices.

Trains the same networks twice from the same initial weights, on one device and with the batch sharded
over a mesh of 8, and prints the largest weight difference and the shardings it saw, as JSON.
"""

import json
import sys

import jax
import numpy as np
import optax
from jax.sharding import PartitionSpec

import pcframe as px
import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP

BATCHED = pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0))
FREE = pxu.m(pxc.VodeParam).has_not(frozen=True)
SIZES, BATCH, STEPS, T = [12, 32, 32, 4], 64, 5, 6
INFERENCE = pxi.DiscreteInference(optax.sgd(0.2), T)  # one object: a new optax optimiser would recompile the step


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model):
    return model(x, y)


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=None, axis_name="batch")
def energy(x, *, model):
    model(x)
    return jax.lax.pmean(model.energy(), "batch")


@pxf.jit()
def hand_written_step(x, y, *, model, optim_w, optim_h):
    """The README's loop: feedforward init, T activity steps (pcframe scan), one weight step."""
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
    optim_h.init(pxu.Mask(FREE)(model))

    def inference_step(t, carry, *, model, optim_h):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            g = pxf.grad(pxu.Mask(FREE, (False, True)))(energy)(x, model=model)
        optim_h.step(model, g["model"])
        return carry, None

    pxf.scan(inference_step, length=T)(None, model=model, optim_h=optim_h)
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        g = pxf.grad(pxu.Mask(pxnn.LayerParam, (False, True)))(energy)(x, model=model)
    optim_w.step(model, g["model"])


class NormMLP(pxc.EnergyModule):
    """Linear -> BatchNorm -> tanh -> node -> Linear -> clamped output node."""

    def __init__(self):
        self.layers = [pxnn.Linear(SIZES[0], SIZES[1], bias=False), pxnn.Linear(SIZES[1], SIZES[-1])]
        self.norm = pxnn.BatchNorm(SIZES[1])
        self.vodes = [pxc.Vode(), pxc.Vode()]
        self.vodes[1].h.frozen = True

    def __call__(self, x, y=None):
        h = self.vodes[0](jax.numpy.tanh(self.norm(self.layers[0](x))))
        self.vodes[1](self.layers[1](h))
        if y is not None:
            self.vodes[1].set("h", y)
        return self.vodes[1].get("u")


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS, BATCH, SIZES[0])).astype(np.float32)
    y = rng.normal(size=(STEPS, BATCH, SIZES[-1])).astype(np.float32)
    return x, y


def train(kind, mesh):
    """Train from seed 0; with a mesh, batches are sharded and the state replicated. Returns weights and shardings."""
    px.RKG.seed(0)
    model = NormMLP() if kind == "batchnorm" else PCMLP(SIZES, act_fn=jax.nn.tanh)
    if mesh is not None:
        pxu.replicate([model, px.RKG], mesh)
    optim_w = pxu.Optim(optax.adam(1e-2), pxu.Mask(pxnn.LayerParam)(model))
    optim_h = pxu.Optim(optax.sgd(0.2))
    xs, ys = data()
    for x, y in zip(xs, ys):
        if mesh is not None:
            x, y = pxu.shard_batch((x, y), mesh)
        if kind in ("engine", "batchnorm"):
            pxi.train_supervised(model, optim_w, x, y, inference=INFERENCE)
        else:
            hand_written_step(x, y, model=model, optim_w=optim_w, optim_h=optim_h)
    layer_params = pxu.Mask(pxnn.LayerParam | pxnn.RunningStat)(model).parameters()
    hidden = model.vodes[0].h.value
    split = mesh is not None and hidden.sharding.is_equivalent_to(
        jax.sharding.NamedSharding(mesh, PartitionSpec("batch")), hidden.ndim
    )
    shardings = {
        "hidden_spec": str(getattr(hidden.sharding, "spec", None)),
        "hidden_batch_split": bool(split),
        "hidden_shard_rows": sorted({s.data.shape[0] for s in hidden.addressable_shards}),
        "hidden_devices": len({s.device for s in hidden.addressable_shards}),
        "weights_replicated": all(p.value.sharding.is_fully_replicated for p in layer_params),
        "running_stats": len(pxu.Mask(pxnn.RunningStat)(model).parameters()),
        "weight_devices": len(model.layers[0].nn.weight.value.sharding.device_set),
    }
    weights = [np.asarray(p.value) for p in layer_params]
    return weights, shardings


def main():
    mesh = pxu.data_mesh()
    report = {"devices": jax.device_count()}
    x = data()[0][0]
    local, whole = pxu.shard_batch(x, mesh, process_local=True), pxu.shard_batch(x, mesh)
    report["process_local_same"] = bool(np.array_equal(local, whole)) and local.sharding == whole.sharding
    for kind in sys.argv[1:]:
        single, single_info = train(kind, None)
        sharded, sharded_info = train(kind, mesh)
        report[kind] = {
            "max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(single, sharded)),
            "max_abs_weight": max(float(np.max(np.abs(a))) for a in single),
            "single": single_info,
            "sharded": sharded_info,
        }
    print("REPORT=" + json.dumps(report))


if __name__ == "__main__":
    main()
