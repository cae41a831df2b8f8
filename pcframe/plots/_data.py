"""Checking the plain data the plots are given: arrays of the expected shape, named in every error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def as_array(values: Any, name: str, ndims: Sequence[int]) -> np.ndarray:
    """`values` (array, jax array, list) as a float NumPy array with one of `ndims` dimensions, not empty."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected numbers of {_dims(ndims)}, got {_describe(values)} ({error}).") from None
    if array.ndim not in ndims:
        raise ValueError(f"{name}: expected {_dims(ndims)}, got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): there is nothing to plot.")
    return array


def x_values(x: Any, length: int, name: str, start: int = 0) -> np.ndarray:
    """`x` checked to hold `length` values, or ``start, start + 1, ...`` when it is None."""
    if x is None:
        return np.arange(start, start + length)
    array = as_array(x, name, (1,))
    if len(array) != length:
        raise ValueError(f"{name} has {len(array)} values but the data has {length}: they must match.")
    return array


def names_for(names: Sequence[str] | None, count: int, default: str, argument: str) -> list[str]:
    """`names` checked to hold `count` names, or ``default.format(i)`` for i = 1..count."""
    if names is None:
        return [default.format(i) for i in range(1, count + 1)]
    names = list(names)
    if len(names) != count:
        raise ValueError(f"{argument} has {len(names)} names but the data has {count} series.")
    return names


def legend_label(label: str | None, name: str, columns: int) -> str:
    """A line's legend entry: `name`, prefixed with a run's `label`; only the `label` when there is one column."""
    if not label:
        return name
    return label if columns == 1 else f"{label}: {name}"


def _dims(ndims: Sequence[int]) -> str:
    return " or ".join(f"a {d}-d array" for d in ndims)


def _describe(values: Any) -> str:
    return f"{type(values).__name__} {values!r}"[:120]
