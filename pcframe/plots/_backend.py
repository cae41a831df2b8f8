"""matplotlib, imported when `pcframe.plots` is, with an error that says how to install it."""

from __future__ import annotations

from typing import Any

MISSING_MATPLOTLIB = 'pcframe.plots draws with matplotlib, which is not installed: pip install "pcframe[plots]"'
"""The message of the `ImportError` raised by ``import pcframe.plots`` without matplotlib."""

try:
    import matplotlib  # noqa: F401  (pyplot itself is imported only when a new figure is made)
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(MISSING_MATPLOTLIB) from error


def new_axes(panels: int = 1, width: float = 5.0, height: float = 3.5) -> list[Any]:
    """A new figure of `panels` Axes side by side (``width`` x ``height`` inches each); the Axes as a list."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False)
    return list(axes[0])


def given_axes(ax: Any, panels: int, what: str) -> list[Any]:
    """`ax` (one Axes, or one per panel) as a list of `panels` Axes; new ones when `ax` is None."""
    if ax is None:
        return new_axes(panels)
    if hasattr(ax, "ravel"):  # a NumPy array of Axes, as plt.subplots returns
        axes = list(ax.ravel())
    else:
        axes = list(ax) if isinstance(ax, (list, tuple)) else [ax]
    if len(axes) != panels:
        raise ValueError(f"ax: {what} need {panels} Axes (one per panel), got {len(axes)}.")
    return axes


def wants_log(values: Any, log: bool | None) -> bool:
    """`log`, or when it is None: whether the finite values are non-negative and the positive ones span a factor of 10.

    Zeros (e.g. the hidden energies right after a feedforward initialisation) are then left off the log axis.
    """
    import numpy as np

    if log is not None:
        return bool(log)
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    positive = finite[finite > 0]
    return positive.size > 0 and bool(np.all(finite >= 0)) and positive.max() >= 10 * positive.min()
