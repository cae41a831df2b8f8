"""PC against backprop on the benchmark models of "Benchmarking Predictive Coding Networks -- Made Simple".

Trains each model with PC-SE (squared-error output), PC-CE (cross-entropy output), iPC
(incremental PC), centred nudging and backprop (the same network, `train_backprop`), and on
request ePC (`ErrorInference`, SGD steps of ``--epc-step`` on the errors), from the same
initial weights, and prints the test accuracy (after the last epoch, and after each one,
evaluated outside the clock), the time per epoch (the first epoch, which compiles, left out)
and the PC/backprop epoch-time ratio. The paper's settings are the
defaults: batch 128, AdamW on the weights, SGD with momentum 0.9 on the activities, T = 7
inference steps (VGG-5, ResNet-18, MLP) and 11 (VGG-7). The data is MNIST-5k (4,000 / 1,000
real digits, offline) unless ``--data`` names an ``.npz`` with ``x_train``, ``y_train``,
``x_test``, ``y_test`` (images channels-last or channels-first, integer labels), e.g. a user's
CIFAR-10 on a GPU. ``--width`` scales every model's channels (the full widths take minutes per
epoch on a 2-core CPU).

    python benchmarks/pcx_table.py --models mlp,vgg5 --epochs 3 --width 0.25
    python benchmarks/pcx_table.py --data cifar10.npz --models vgg5,vgg7,resnet18 --epochs 25
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP, PCVGG, PCResNet

sys.path.insert(0, str(Path(__file__).parent))
from mnist5k import mnist_5k, train_epochs  # noqa: E402

METHODS = ("PC-SE", "PC-CE", "iPC", "nudging", "backprop")
EXTRA_METHODS = ("ePC",)  # run when asked for: `--methods ePC,backprop`
STEPS = {"mlp": 7, "vgg5": 7, "vgg7": 11, "resnet18": 7}


def load(path: str | None) -> tuple[np.ndarray, ...]:
    """The four arrays, images channels-first in [0, 1] (MNIST-5k without a path)."""
    if path is None:
        return mnist_5k()
    data = np.load(path)
    arrays = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    for i in (0, 2):
        x = arrays[i].astype(np.float32)
        x = x / 255.0 if x.max() > 1.5 else x
        if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        arrays[i] = x
    return tuple(arrays)


def build(
    name: str, shape: tuple[int, ...], classes: int, width: float, ce: bool, skip_nodes: bool = False
) -> pxc.EnergyModule:
    """The model `name` for images of `shape` (channels first), its channels scaled by `width`.

    `skip_nodes` puts a node on every skip path of ResNet-18 (`PCResNet(skip_nodes=True)`).
    """
    energy = pxc.ce_energy if ce else pxc.se_energy
    scale = lambda cs: tuple(max(1, round(c * width)) for c in cs)  # noqa: E731
    channels, size = shape[0], shape[1:]
    if name == "mlp":
        hidden = scale((128, 128))
        return PCMLP([int(np.prod(shape)), *hidden, classes], act_fn=jax.nn.gelu, output_energy=energy)
    if name in ("vgg5", "vgg7"):
        widths = (128, 256, 512, 512) if name == "vgg5" else (128, 128, 256, 256, 512, 512)
        return PCVGG((channels, *scale(widths)), classes, size, act_fn=jax.nn.gelu, output_energy=energy, norm=True)
    if name == "resnet18":
        widths = scale((64, 128, 256, 512))
        return PCResNet(channels, classes, size, widths=widths, output_energy=energy, skip_nodes=skip_nodes)
    raise ValueError(f"unknown model {name!r}; choose mlp, vgg5, vgg7 or resnet18")


def step_for(method: str, inference: Any) -> Callable:
    """``step(model, optim_w, x, y)`` training one batch with `method`."""
    if method == "backprop":
        return lambda model, optim, x, y: pxi.train_backprop(model, optim, x, y)
    if method == "iPC":
        return lambda model, optim, x, y: pxi.train_incremental(model, optim, x, y, inference=inference)
    nudging = pxi.Nudging(0.1, centred=True) if method == "nudging" else None
    return lambda model, optim, x, y: pxi.train_supervised(model, optim, x, y, inference=inference, nudging=nudging)


def run(name: str, method: str, data: tuple, args: argparse.Namespace) -> dict[str, float]:
    """Train `name` with `method` for ``args.epochs``; accuracy and seconds per epoch after the first."""
    x_train, y_train, x_test, y_test = data
    classes = int(max(y_train.max(), y_test.max())) + 1
    flat = name == "mlp"
    prepare = (lambda x: x.reshape(len(x), -1)) if flat else (lambda x: x)  # noqa: E731
    px.RKG.seed(args.seed)
    model = build(name, x_train.shape[1:], classes, args.width, ce=method != "PC-SE", skip_nodes=args.skip_nodes)
    optim_w = pxu.Optim(optax.adamw(args.lr, weight_decay=1e-4), pxu.Mask(pxnn.LayerParam)(model))
    if method == "ePC":  # ePC relaxes the prediction errors, with plain SGD steps of --epc-step
        inference = pxi.ErrorInference(pxi.DiscreteInference(optax.sgd(args.epc_step), STEPS[name]))
    else:
        inference = pxi.DiscreteInference(optax.sgd(args.h_lr, momentum=0.9), STEPS[name])
    step = step_for(method, inference)
    one_hot = np.eye(classes, dtype=np.float32)
    times, accuracies = train_epochs(
        lambda x, y: step(model, optim_w, prepare(x), y),
        lambda: float(pxi.evaluate_accuracy(model, prepare(x_test), one_hot[y_test])),
        x_train,
        y_train,
        classes=classes,
        epochs=args.epochs,
        batch=args.batch,
        seed=args.seed,
    )
    return {"accuracies": accuracies, "epoch": float(np.median(times[1:] if len(times) > 1 else times))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,vgg5,resnet18")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate of the weights")
    parser.add_argument("--h-lr", type=float, default=0.1, help="SGD (momentum 0.9) step of the activities")
    parser.add_argument("--epc-step", type=float, default=0.002, help="SGD step of ePC's errors (method ePC)")
    parser.add_argument("--width", type=float, default=1.0, help="scale of every model's channels")
    parser.add_argument("--data", default=None, help=".npz with x_train, y_train, x_test, y_test (default MNIST-5k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-nodes", action="store_true", help="a node on every skip path of ResNet-18")
    args = parser.parse_args(argv)
    data = load(args.data)
    print(
        f"| model | method | test accuracy | s / epoch | / backprop | by epoch (epochs {args.epochs}, width {args.width}) |"
    )
    print("|---|---|---:|---:|---:|---|")
    for name in args.models.split(","):
        results = {method: run(name, method, data, args) for method in args.methods.split(",")}
        base = results.get("backprop", {}).get("epoch")
        for method, r in results.items():
            ratio = f"{r['epoch'] / base:.2f}x" if base else "-"
            by_epoch = ", ".join(f"{a:.3f}" for a in r["accuracies"])
            print(
                f"| {name} | {method} | {r['accuracies'][-1]:.3f} | {r['epoch']:.2f} | {ratio} | {by_epoch} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
