"""Fully connected layer."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp

from ..core._random import RKG, RandomKeyGenerator
from ._checks import positive_int
from ._layer import Layer


class Linear(Layer):
    """Affine map $y = W x + b$ of one sample (batch with `vmap`), weights in `LayerParam`s.

    Initialised like `equinox.nn.Linear`: $W, b \\sim U(-1/\\sqrt{n_{in}}, 1/\\sqrt{n_{in}})$.

    **Arguments:**

    - `in_features`, `out_features`: sizes (ints, or ``"scalar"``).
    - `bias`: whether to add $b$.
    - `rkg`: random key generator for the initialisation (default: the global `RKG`).

    **Example:** ``layer = Linear(784, 128); y = layer(x)`` with ``x.shape == (784,)``.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, rkg: RandomKeyGenerator = RKG
    ) -> None:
        sizes = [
            f if f == "scalar" else positive_int(f, f"Linear {n}")
            for f, n in ((in_features, "in_features"), (out_features, "out_features"))
        ]
        super().__init__(eqx.nn.Linear(*sizes, use_bias=bias, key=rkg()))

    def __call__(self, x: Any) -> Any:
        """$W x + b$ for one sample `x` (its shape is checked when traced)."""
        n_in, n_out = self.nn.in_features, self.nn.out_features
        expected = () if n_in == "scalar" else (n_in,)
        if jnp.shape(x) != expected:
            raise ValueError(
                f"Linear({n_in} -> {n_out}) was given an input of shape {tuple(jnp.shape(x))}; it takes one "
                f"sample of shape {expected}. Check the layer or data feeding it (batch with vmap)."
            )
        return super().__call__(x)
