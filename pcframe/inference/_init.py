"""Initialising activities: feedforward (see `init_forward`) or random."""

from __future__ import annotations

from typing import Any

import jax

from ..core._random import RKG, RandomKeyGenerator
from ..pc._energy_module import EnergyModule
from ..utils._mask import as_predicate
from ._energy import FREE, init_forward


def init_random(
    model: EnergyModule, x: Any = None, y: Any = None, *, sigma: float = 0.05, rkg: RandomKeyGenerator = RKG
) -> None:
    """Initialise the free activities from $\\mathcal{N}(0, \\sigma^2)$ (the output stays clamped to `y`).

    Shapes come from a feedforward pass, so call it with the same batch as training.

    **Arguments:**

    - `model`, `x`, `y`: as for `init_forward` (`x` is `None` for a free input layer).
    - `sigma`: standard deviation $\\sigma$.
    - `rkg`: the key generator to draw from (pass it to the enclosing `jit` as a keyword
      argument if it is not the global `RKG`).

    **Example:** ``init_random(model, None, images, sigma=0.05)``
    """
    if not sigma >= 0:
        raise ValueError(f"init_random: sigma must be a non-negative number, got {sigma!r}.")
    init_forward(model, x, y)
    free = as_predicate(FREE)
    for param in model.parameters(free):
        if param.value is not None:
            param.value = sigma * jax.random.normal(rkg(), param.value.shape, param.value.dtype)
