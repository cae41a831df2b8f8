"""`Config`: an immutable description whose float and array fields are traced when passed to a transform."""

from __future__ import annotations

from typing import Any

import equinox as eqx


def is_hyperparameter(value: Any) -> bool:
    """Whether a leaf of a `Config` is traced: an array, or a float (not a bool or an int)."""
    return eqx.is_array(value) or isinstance(value, float)


class Config(eqx.Module):
    """An immutable description (an equinox module) of how a computation runs: a strategy, a training mode.

    Passed by keyword to a stateful transform (``pxf.jit(step)(x, inference=...)``), its
    float and array fields are traced *hyperparameters* and every other field (ints, bools,
    functions, optax and diffrax objects) is static, part of what the compiled function is
    cached under. So a sweep over a step size, or a new `Config` of the same structure built
    every step, compiles nothing new, while a new number of steps does. A `Config` object is
    immutable: the transform reuses what it read from one for as long as it sees the same object.

    **Example:**

    ```python
    class Descent(Config):
        step_size: float                 # traced
        steps: int = 10                  # static

    @pxf.jit
    def relax(x, *, model, how):
        ...
    relax(x, model=model, how=Descent(0.1))
    relax(x, model=model, how=Descent(0.2))   # no new compilation
    ```
    """
