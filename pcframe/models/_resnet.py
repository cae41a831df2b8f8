"""`PCResNet`: a residual convolutional PC classifier built from basic blocks (ResNet-18 by default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._module import Module
from ..core._param import static
from ..core._random import RKG, RandomKeyGenerator
from ..nn._batchnorm import BatchNorm
from ..nn._checks import positive_int, positive_ints
from ..nn._conv import Conv
from ..nn._linear import Linear
from ..pc._energies import ce_energy
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode
from ._activations import activation


class _ConvNorm(Module):
    """A bias-free 3x3 (or 1x1) convolution followed by a `BatchNorm` (or nothing)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, norm: bool, rkg: RandomKeyGenerator) -> None:
        self.conv = Conv(2, c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not norm, rkg=rkg)
        self.norm = BatchNorm(c_out) if norm else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.conv(x)
        return y if self.norm is None else self.norm(y)


class _Block(Module):
    """A basic block: two 3x3 convolutions, each predicting a node; the block's input is added before the second.

    Its nodes are ``[a, b]``, or ``[a, s, b]`` with a node `s` on the skip path (`skip_node`).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, norm: bool, skip_node: bool, rkg: Any) -> None:
        self.skip_node = skip_node
        self.first = _ConvNorm(c_in, c_out, 3, stride, norm, rkg)
        self.second = _ConvNorm(c_out, c_out, 3, 1, norm, rkg)
        self.shortcut = _ConvNorm(c_in, c_out, 1, stride, norm, rkg) if stride != 1 or c_in != c_out else None

    def __call__(self, z: jax.Array, act_fn: Callable, vodes: Sequence[Vode]) -> jax.Array:
        a = vodes[0](act_fn(self.first(z)))
        skip = z if self.shortcut is None else self.shortcut(z)
        if self.skip_node:
            skip = vodes[1](skip)
        return vodes[-1](act_fn(self.second(a) + skip))


class PCResNet(EnergyModule):
    r"""A residual convolutional PC classifier of basic blocks; ResNet-18 with the defaults.

    A stem (3x3 convolution, normalisation, $f$) predicts the first node; each basic block
    predicts two nodes,

    $$u_a = f(\mathrm{BN}(W_1 * z)), \qquad u_b = f\big(\mathrm{BN}(W_2 * z_a) + s(z)\big),$$

    with $s$ the identity, or a strided 1x1 convolution with normalisation where the block
    halves the resolution or changes the width; the head predicts the class scores from the
    spatial mean of the last node, $u_{out} = W \, \mathrm{mean}_{hw}(z)$ + b. Every hidden node has
    the squared-error energy; the output node `output_energy` (cross-entropy by default), clamped
    to the target. With ``stages=(2, 2, 2, 2)`` and ``widths=(64, 128, 256, 512)`` the network
    has 17 3x3 convolutions, three 1x1 projections and a linear head (ResNet-18, with CIFAR's 3x3 stem and no
    max-pool: 11,173,962 weights for 10 classes).
    ``model(x, y)`` runs one channels-first sample of shape ``(C_0, H, W)``.

    The normalisation is `pcframe.nn.BatchNorm`: the statistics of the step's feedforward pass,
    frozen during inference.

    **Skip nodes.** In a residual network the energy of a block's output node reaches the
    block's input in one inference step through the skip, and in two through the main path, so
    the skips carry it down the network ahead of the main path ("Towards the Training of Deeper
    Predictive Coding Neural Networks" diagnoses this and slows the skips with auxiliary
    neurons). With ``skip_nodes=True`` every skip passes through a node of its own,

    $$u_s = s(z), \qquad u_b = f\big(\mathrm{BN}(W_2 * z_a) + z_s\big), \qquad E_s = \tfrac12\lVert z_s - u_s\rVert^2,$$

    so both paths of a block are two nodes long. The feedforward pass is unchanged ($z_s = u_s$
    there). This is pcframe's reading of the paper's abstract (one node per skip, squared error),
    not its equations, which the project does not have.

    **Arguments:**

    - `in_channels`: $C_0$.
    - `num_classes`: width of the output.
    - `image_size`: ``H`` (square) or ``(H, W)``.
    - `stages`: blocks per stage; every stage after the first halves the resolution.
    - `widths`: channels of each stage.
    - `act_fn`: $f$, a function or one of JPC's names.
    - `norm`: `BatchNorm` after every convolution (else biases).
    - `output_energy`: energy of the output node.
    - `skip_nodes`: a node on every skip path (see above); a block then has the nodes ``[a, s, b]``.
    - `rkg`: key generator for the weight initialisation.

    **Example:**

    ```python
    model = PCResNet(1, 10, image_size=28, stages=(1, 1), widths=(16, 32))
    train_supervised(model, optim_w, x, y, inference=DiscreteInference(optax.sgd(0.05, momentum=0.9), 7))
    ```
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int | Sequence[int] = 32,
        stages: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        act_fn: Callable[[jax.Array], jax.Array] | str = jax.nn.relu,
        norm: bool = True,
        output_energy: Callable[..., Any] = ce_energy,
        skip_nodes: bool = False,
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        if not isinstance(skip_nodes, bool):
            raise TypeError(f"PCResNet skip_nodes must be True or False, got {skip_nodes!r}.")
        stages = positive_ints(stages, "PCResNet stages")
        widths = positive_ints(widths, "PCResNet widths (one per stage)", len(stages))
        height, width = positive_ints(image_size, "PCResNet image_size (height, width)", 2)
        self.in_channels = positive_int(in_channels, "PCResNet in_channels")
        self.num_classes = positive_int(num_classes, "PCResNet num_classes")
        self.image_size = (height, width)
        self.nodes_per_block = 3 if skip_nodes else 2
        self.act_fn = static(activation(act_fn, "PCResNet"))
        self.stem = _ConvNorm(self.in_channels, widths[0], 3, 1, norm, rkg)
        self.vodes = [Vode((widths[0], height, width))]
        self.blocks = []
        c_in = widths[0]
        for s, (count, c_out) in enumerate(zip(stages, widths)):
            for b in range(count):
                stride = 2 if s > 0 and b == 0 else 1
                height, width = -(-height // stride), -(-width // stride)  # a "same"-padded stride rounds up
                self.blocks.append(_Block(c_in, c_out, stride, norm, skip_nodes, rkg))
                self.vodes += [Vode((c_out, height, width)) for _ in range(self.nodes_per_block)]
                c_in = c_out
        self.head = Linear(c_in, self.num_classes, rkg=rkg)
        self.vodes.append(Vode((self.num_classes,), output_energy))
        self.vodes[-1].h.frozen = True

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Run one sample ``x`` of shape ``(C_0, H, W)``; returns the class scores."""
        expected = (self.in_channels, *self.image_size)
        if x is None or jnp.shape(x) != expected:
            raise ValueError(
                f"PCResNet expects one channels-first sample of shape {expected} (batches are vmapped), got "
                f"{None if x is None else jnp.shape(x)}."
            )
        z = self.vodes[0](self.act_fn(self.stem(x)))
        n = self.nodes_per_block
        for i, block in enumerate(self.blocks):
            z = block(z, self.act_fn, self.vodes[1 + n * i : 1 + n * (i + 1)])
        self.vodes[-1](self.head(jnp.mean(z, axis=(1, 2))))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")
