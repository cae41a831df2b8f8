"""How close PC's weight step is to backprop's, layer by layer, on a small `PCResNet` with and without `BatchNorm`.

At an equilibrium weakly nudged towards the target (centred nudging, small $\\beta$), PC's weight
gradient divided by $\\beta$ approaches backprop's. The script takes one SGD step of 1.0 by each
rule from the same weights on 64 digits (scikit-learn's 8x8) and prints, for every weight
array, the cosine between the two steps and the ratio of their norms.

    python benchmarks/bp_alignment.py --norm        # PCResNet(norm=True)
    python benchmarks/bp_alignment.py               # without BatchNorm
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCResNet


def weight_step(train: str, norm: bool, x, y, beta: float, steps: int) -> list[jax.Array]:
    """The change of every weight array after one step of `train` ("pc" or "backprop"), SGD 1.0."""
    px.RKG.seed(0)
    model = PCResNet(1, 10, image_size=8, stages=(1, 1), widths=(8, 16), norm=norm)
    weights = pxu.Mask(pxnn.LayerParam)(model)
    optim_w = pxu.Optim(optax.sgd(1.0), weights)
    before = [p.value for p in weights.parameters()]
    if train == "backprop":
        pxi.train_backprop(model, optim_w, x, y)
    else:
        inference = pxi.DiscreteInference(optax.sgd(0.1), steps)
        pxi.train_supervised(model, optim_w, x, y, inference=inference, nudging=pxi.Nudging(beta, centred=True))
    return [b - p.value for b, p in zip(before, weights.parameters())]


def main(argv: list[str] | None = None) -> None:
    from sklearn.datasets import load_digits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--norm", action="store_true", help="BatchNorm after every convolution")
    parser.add_argument("--beta", type=float, default=0.01, help="centred nudging strength")
    parser.add_argument("--steps", type=int, default=300, help="inference steps of 0.1")
    args = parser.parse_args(argv)
    digits = load_digits()
    x = jnp.asarray((digits.images[:64] / 16.0).astype(np.float32)[:, None])
    y = jax.nn.one_hot(digits.target[:64], 10)
    bp = weight_step("backprop", args.norm, x, y, args.beta, args.steps)
    pc = weight_step("pc", args.norm, x, y, args.beta, args.steps)
    print(
        f"| weight array (stem first) | shape | cosine | norm ratio PC / backprop | (norm={args.norm}, beta={args.beta}) |"
    )
    print("|---:|---|---:|---:|---|")
    for i, (a, b) in enumerate(zip(pc, bp)):
        cosine = float(jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))
        print(f"| {i} | {tuple(a.shape)} | {cosine:.3f} | {float(jnp.linalg.norm(a) / jnp.linalg.norm(b)):.2f} | |")


if __name__ == "__main__":
    main()
