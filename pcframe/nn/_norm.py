"""Layer normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx

from ._checks import positive_int, positive_ints
from ._layer import Layer


class LayerNorm(Layer):
    """Layer normalisation of one sample: $y = \\gamma \\odot (x - \\mu)/\\sqrt{\\sigma^2 + \\epsilon} + \\beta$.

    **Arguments:**

    - `shape`: the normalised (trailing) shape.
    - `eps`: $\\epsilon$.
    - `elementwise_affine`: learn $\\gamma$ and $\\beta$ (`LayerParam`s).

    **Example:** ``norm = LayerNorm(128)``
    """

    def __init__(self, shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True) -> None:
        if isinstance(shape, Sequence):
            shape = positive_ints(shape, "LayerNorm shape")
        else:
            shape = positive_int(shape, "LayerNorm shape")
        if not eps > 0:
            raise ValueError(f"LayerNorm eps must be positive, got {eps!r}.")
        super().__init__(eqx.nn.LayerNorm(shape, eps=eps, use_weight=elementwise_affine, use_bias=elementwise_affine))
