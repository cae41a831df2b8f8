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


def chosen(requested: Any, available: Sequence[str], default: Sequence[str], argument: str, missing: str, none: str):
    """The names to draw: `requested` (one name or several, each in `available`), else `default`.

    `missing` names what lacks a requested name (``"history has no metric"``); `none` is the error
    message when nothing was requested and `default` is empty.
    """
    if requested is None:
        if not default:
            raise ValueError(none)
        return list(default)
    names = [requested] if isinstance(requested, str) else list(requested)
    for name in names:
        if name not in available:
            raise ValueError(f"{argument}: {missing} {name!r} (it has {list(available)}).")
    return names


def _dims(ndims: Sequence[int]) -> str:
    return " or ".join(f"a {d}-d array" for d in ndims)


def _describe(values: Any) -> str:
    return f"{type(values).__name__} {values!r}"[:120]
