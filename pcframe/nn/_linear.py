"""Fully connected layer."""

from __future__ import annotations

import equinox as eqx

from ..core._random import RKG, RandomKeyGenerator
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
        super().__init__(eqx.nn.Linear(in_features, out_features, use_bias=bias, key=rkg()))
