"""Dropout driven by pcframe's random key generator."""

from __future__ import annotations

from typing import Any

import equinox as eqx

from ..core._random import RKG, RandomKeyGenerator
from ._layer import Layer


class Dropout(Layer):
    """Zeroes each element with probability `p` in training mode, scaling the rest by $1/(1-p)$.

    In evaluation mode (`model.eval()`) it is the identity. Keys come from
    `rkg`, so inside `vmap` every sample gets its own mask.

    **Arguments:**

    - `p`: drop probability.
    - `rkg`: random key generator (default: the global `RKG`).

    **Example:** ``self.drop = Dropout(0.1); y = self.drop(x)``
    """

    def __init__(self, p: float = 0.5, *, rkg: RandomKeyGenerator = RKG) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout p is the drop probability, a number in [0, 1); got {p!r}.")
        super().__init__(eqx.nn.Dropout(p))
        self._rkg = rkg

    def __call__(self, x: Any) -> Any:
        if not self.is_training:
            return x
        return self.module()(x, key=self._rkg(), inference=False)
