"""Argument checks shared by layer, node and model constructors: sizes are positive ints, shapes are tuples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(value: Any, what: str) -> int:
    """`value` as an int, refused unless it is an integer of at least 1.

    **Arguments:**

    - `value`: the argument.
    - `what`: how to name it in the error, e.g. ``"Linear out_features"``.

    **Returns:** ``int(value)``.

    **Example:** ``positive_int(4, "Linear out_features") == 4``
    """
    if not _is_int(value):
        raise TypeError(f"{what} must be a positive int, got {value!r} ({type(value).__name__}).")
    if value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}.")
    return int(value)


def positive_ints(value: Any, what: str, count: int | None = None) -> tuple[int, ...]:
    """`value` (an int, or a sequence of `count` ints) as a tuple of positive ints.

    **Arguments:**

    - `value`: an int (repeated `count` times) or a sequence.
    - `what`: how to name it in the error.
    - `count`: the required length (`None`: any length of at least 1, and an int is refused).

    **Returns:** the tuple.

    **Example:** ``positive_ints(3, "Conv kernel_size", 2) == (3, 3)``
    """
    if _is_int(value) and count is not None:
        return (positive_int(value, what),) * count
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        expected = f"an int or a tuple of {count} ints" if count else "a tuple of ints such as (3,)"
        raise TypeError(f"{what} must be {expected}, got {value!r}.")
    if count is not None and len(value) != count:
        raise ValueError(f"{what} must have {count} entries (one per dimension), got {value!r}.")
    return tuple(positive_int(v, f"{what} entry {i}") for i, v in enumerate(value))
