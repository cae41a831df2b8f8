"""The energy of each layer over the inference steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._backend import given_axes, wants_log
from ._data import as_array, legend_label, names_for, x_values


def inference_energies(
    energies: Any,
    *,
    ax: Any = None,
    layer_names: Sequence[str] | None = None,
    total: bool = True,
    x: Any = None,
    every: int = 1,
    xlabel: str = "inference step $t$",
    ylabel: str = "energy (batch mean)",
    label: str | None = None,
    log: bool | None = None,
    **plot_kwargs: Any,
) -> Any:
    """Draw each layer's energy against the inference step, and their sum.

    **Arguments:**

    - `energies`: the recorded energies, shape ``(T, L)`` (one row per recorded step, one column per
      layer, as `DiscreteInference(record_energies=True)` and `ODEInference(record_energies=True)`
      return them in ``stats["energies"]``, and a training step in ``out["inference_energies"]``) or
      ``(T,)`` (the total energy only). A mapping (the stats or the step's output) is read at
      ``"inference_energies"``, else at ``"energies"``. Unless `x` is given, trailing rows that are
      all NaN (the unused end of an ODE recording buffer) are dropped.
    - `ax`: the matplotlib Axes to draw on; a new figure when `None`.
    - `layer_names`: one legend name per column (default ``layer 1 ... layer L``).
    - `total`: also draw the sum over the layers (a dashed black line), when there are two or more.
    - `x`: the x value of each row (e.g. the ODE times); default ``0, every, 2 * every, ...``.
    - `every`: the recording interval, `record_every` of the strategy (row `t` is the energy after
      ``t * every`` updates).
    - `xlabel`, `ylabel`: the axis labels.
    - `label`: a prefix for the legend entries (to compare several runs on one Axes); with a single
      column, the legend entry itself.
    - `log`: a log energy axis; `None`: when the energies are positive and span a factor of 10 or more.
    - `**plot_kwargs`: passed to every ``Axes.plot`` call (``lw=0.8``, ``marker="o"``, ...).

    Returns the Axes.

    **Example:**

    ```python
    stats = pxi.DiscreteInference(step_size=0.1, steps=50, record_energies=True).run(model, x)
    ax = pcframe.plots.inference_energies(stats["energies"], layer_names=["hidden", "output"])
    ```
    """
    if isinstance(energies, Mapping):
        key = "inference_energies" if "inference_energies" in energies else "energies"
        if key not in energies:
            raise ValueError(
                f"energies: the mapping has no 'inference_energies' or 'energies' entry (keys {sorted(energies)}); "
                "record them with DiscreteInference(record_energies=True)."
            )
        energies = energies[key]
    trace = as_array(energies, "energies", (1, 2))
    if trace.ndim == 1:
        trace = trace[:, None]
    recorded = np.flatnonzero(~np.all(np.isnan(trace), axis=1))
    if recorded.size == 0:
        raise ValueError(f"energies: every value is NaN (shape {trace.shape}): nothing was recorded.")
    if x is None:
        trace = trace[: recorded[-1] + 1]
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive int (the recording interval), got {every!r}.")
    steps = x_values(x, len(trace), "x") if x is not None else every * np.arange(len(trace))
    layers = trace.shape[1]
    default = "layer {}" if layers > 1 else "energy"
    names = names_for(layer_names, layers, default, "layer_names")
    (ax,) = given_axes(ax, 1, "inference_energies")
    for column, name in enumerate(names):
        ax.plot(steps, trace[:, column], **{"label": legend_label(label, name, layers), **plot_kwargs})
    drawn = trace
    if total and layers > 1:
        summed = trace.sum(axis=1)
        ax.plot(steps, summed, **{"color": "k", "ls": "--", **plot_kwargs, "label": legend_label(label, "total", 2)})
        drawn = np.concatenate([trace, summed[:, None]], axis=1)
    if wants_log(drawn, log):
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if layers > 1 or label:
        ax.legend(fontsize=8)
    return ax
