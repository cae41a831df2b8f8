"""`PCVGG`: a ready-made convolutional predictive coding classifier (VGG style)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import static
from ..core._random import RKG, RandomKeyGenerator
from ..nn._batchnorm import BatchNorm
from ..nn._checks import positive_int, positive_ints
from ..nn._conv import Conv
from ..nn._linear import Linear
from ..nn._pool import AvgPool2d, MaxPool2d
from ..pc._energies import ce_energy
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode
from ._activations import activation

_POOLS = {"max": MaxPool2d, "avg": AvgPool2d}


class PCVGG(EnergyModule):
    """A convolutional PC classifier: conv blocks with a node after each, then a linear head.

    Block $\\ell = 1..B$ predicts the activity map above it from the one below,

    $$u_\\ell = \\mathrm{pool}\\big(f(W_\\ell * z_{\\ell-1} + b_\\ell)\\big), \\qquad z_0 = x,$$

    with a "same"-padded convolution (odd kernel sizes) and a 2x2 pooling of stride 2 (in the blocks `pools` chooses),
    and the head predicts the class scores $u_{B+1} = W\\,\\mathrm{vec}(z_B) + b$. Every
    node $z_\\ell$ (shape ``(C_l, H_l, W_l)``) has the squared-error energy
    $\\tfrac12\\lVert z_\\ell - u_\\ell\\rVert^2$ and the output node `output_energy`
    (cross-entropy by default). With ``channels=(3, 128, 256, 512, 512)`` and 32x32
    images this is the VGG-5 of Pinchetti et al., "Benchmarking Predictive Coding
    Networks -- Made Simple". ``model(x, y)`` runs one channels-first sample ``x`` of
    shape ``(C_0, H, W)``; `y`, when given, is clamped at the output node.

    **Arguments:**

    - `channels`: ``(C_0, C_1, ..., C_B)``: input channels, then the channels of each block.
    - `num_classes`: width of the output.
    - `image_size`: ``H`` (square) or ``(H, W)`` of the input.
    - `kernel_sizes`: odd kernel size of every block, or one per block.
    - `act_fn`: $f$, a function or one of JPC's names (as `PCMLP`).
    - `pool`: ``"max"`` or ``"avg"``.
    - `output_energy`: energy of the output node (`ce_energy` or `se_energy`).
    - `norm`: a `BatchNorm` after each convolution, $u_\\ell = \\mathrm{pool}(f(\\mathrm{BN}(W_\\ell * z_{\\ell-1})))$,
      see `pcframe.nn.BatchNorm`; the convolutions then have no bias (the normalisation would remove it).
    - `pools`: which blocks end with the pooling, one bool per block (default: every block); a
      deep network of many blocks pools after a few of them, e.g. ``pools=(True,) + (False,) * 6 + (True,) + ...``.
    - `rkg`: key generator for the weight initialisation.

    **Example:**

    ```python
    model = PCVGG(channels=(1, 16, 32), num_classes=10, image_size=8)
    out = train_supervised(model, optim_w, x, one_hot_y, inference=DiscreteInference(optax.sgd(0.1), 10))
    ```
    """

    def __init__(
        self,
        channels: Sequence[int] = (3, 128, 256, 512, 512),
        num_classes: int = 10,
        image_size: int | Sequence[int] = 32,
        kernel_sizes: int | Sequence[int] = 3,
        act_fn: Callable[[jax.Array], jax.Array] | str = jax.nn.gelu,
        pool: str = "max",
        output_energy: Callable[..., Any] = ce_energy,
        norm: bool = False,
        pools: Sequence[bool] | None = None,
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        channels = positive_ints(channels, "PCVGG channels")
        if len(channels) < 2:
            raise ValueError(f"PCVGG channels must be (C_in, C_1, ...) with at least one block, got {channels!r}.")
        blocks = len(channels) - 1
        kernels = positive_ints(kernel_sizes, "PCVGG kernel_sizes (one per block)", blocks)
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"PCVGG kernel_sizes must be odd (same padding), got {kernels!r}.")
        if pool not in _POOLS:
            raise ValueError(f"PCVGG pool must be 'max' or 'avg', got {pool!r}.")
        height, width = positive_ints(image_size, "PCVGG image_size (height, width)", 2)
        pooled = (True,) * blocks if pools is None else tuple(pools)
        if len(pooled) != blocks or not all(isinstance(p, bool) for p in pooled):
            raise ValueError(f"PCVGG pools must hold one True/False per block ({blocks}), got {pools!r}.")
        halvings = [sum(pooled[: i + 1]) for i in range(blocks)]
        if height >> halvings[-1] < 1 or width >> halvings[-1] < 1:
            raise ValueError(
                f"PCVGG: {halvings[-1]} poolings halve a {height}x{width} image to nothing; pool less (pools=...) "
                "or use larger images."
            )
        self.channels, self.image_size = channels, (height, width)
        self.num_classes = positive_int(num_classes, "PCVGG num_classes")
        self.act_fn = static(activation(act_fn, "PCVGG"))
        self.convs = [
            Conv(2, c_in, c_out, k, padding=k // 2, bias=not norm, rkg=rkg)  # BatchNorm removes a bias
            for c_in, c_out, k in zip(channels[:-1], channels[1:], kernels)
        ]
        self.norms = [BatchNorm(c) for c in channels[1:]] if norm else None
        self.pool = _POOLS[pool](2)
        self.pooled = pooled
        self.vodes = [Vode((c, height >> n, width >> n)) for c, n in zip(channels[1:], halvings)]
        features = channels[-1] * (height >> halvings[-1]) * (width >> halvings[-1])
        self.head = Linear(features, self.num_classes, rkg=rkg)
        self.vodes.append(Vode((self.num_classes,), output_energy))
        self.vodes[-1].h.frozen = True

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Run one sample ``x`` of shape ``(C_0, H, W)``; returns the class scores $u_{B+1}$."""
        expected = (self.channels[0], *self.image_size)
        if x is None or jnp.shape(x) != expected:
            got = None if x is None else jnp.shape(x)
            raise ValueError(
                f"PCVGG expects one channels-first sample of shape {expected} (batches are vmapped), got {got}."
            )
        z = x
        for i, (conv, vode) in enumerate(zip(self.convs, self.vodes)):
            z = conv(z)
            if self.norms is not None:
                z = self.norms[i](z)
            z = self.act_fn(z)
            z = vode(self.pool(z) if self.pooled[i] else z)
        self.vodes[-1](self.head(z.reshape(-1)))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")
