"""Per-layer norms over training: activities (or errors), weights, gradients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._backend import given_axes, wants_log
from ._data import as_array, chosen, legend_label, names_for, x_values

NORM_KEYS = ("activity_norms", "param_norms", "grad_norms")
"""The norms `pcframe.inference.Metrics` adds to a training step's output, in the order `metrics_norms` draws them."""

TITLES = {
    "activity_norms": ("free activities after inference", "layer {}"),
    "param_norms": ("parameters after the update", "parameter {}"),
    "grad_norms": ("parameter gradients", "parameter {}"),
}
"""The panel title and the default legend names of each norm."""


def layer_norms(
    norms: Any,
    *,
    ax: Any = None,
    names: Sequence[str] | None = None,
    x: Any = None,
    xlabel: str = "training step",
    ylabel: str = "L2 norm",
    title: str | None = None,
    label: str | None = None,
    log: bool | None = None,
    **plot_kwargs: Any,
) -> Any:
    """Draw one line per layer (or parameter) of a norm recorded at every training step.

    **Arguments:**

    - `norms`: shape ``(S, L)``: one row per step, one column per layer, e.g. the stacked
      ``out["activity_norms"]`` of `S` training steps, or norms of the prediction errors you computed;
      a list of `S` vectors of length `L` works too.
    - `ax`: the matplotlib Axes to draw on; a new figure when `None`.
    - `names`: one legend name per column (default ``layer 1 ... layer L``).
    - `x`: the x value of each row; default ``1, 2, ..., S``.
    - `xlabel`, `ylabel`, `title`: the labels.
    - `label`: a prefix for the legend entries (to compare several runs on one Axes).
    - `log`: a log y axis; `None`: when the norms are positive and span a factor of 10 or more.
    - `**plot_kwargs`: passed to every ``Axes.plot`` call.

    Returns the Axes.

    **Example:**

    ```python
    outs = [pxi.train_supervised(model, optim_w, x, y, metrics=pxi.Metrics(activity_norms=True)) for x, y in batches]
    ax = pcframe.plots.layer_norms([out["activity_norms"] for out in outs], title="activities")
    ```
    """
    (ax,) = given_axes(ax, 1, "layer_norms")
    _draw(ax, as_array(norms, "norms", (2,)), "norms", names, "layer {}", x, label, log, plot_kwargs)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title)
    return ax


def metrics_norms(
    outputs: Any,
    keys: Sequence[str] | None = None,
    *,
    ax: Any = None,
    names: Mapping[str, Sequence[str]] | None = None,
    x: Any = None,
    xlabel: str = "training step",
    label: str | None = None,
    log: bool | None = None,
    **plot_kwargs: Any,
) -> list[Any]:
    """Draw the norms of `pcframe.inference.Metrics` over training, one panel per kind of norm.

    ``Metrics(activity_norms=True, param_norms=True, grad_norms=True)`` makes every training step
    return the L2 norm of each free activity after inference (``activity_norms``), of each trained
    parameter after the update (``param_norms``) and of each parameter's gradient (``grad_norms``).

    **Arguments:**

    - `outputs`: the training steps' outputs, a list of dicts (one per step), or a dict of stacked
      arrays ``{key: (S, L)}``.
    - `keys`: the norms to draw (default: those of `NORM_KEYS` present in `outputs`).
    - `ax`: one Axes per key; a new figure when `None`.
    - `names`: legend names by key, e.g. ``{"activity_norms": ["hidden 1", "hidden 2"]}``.
    - `x`: the x value of each step; default ``1, 2, ..., S``.
    - `xlabel`: the x axis label.
    - `label`: a prefix for the legend entries (to compare several runs on the same Axes).
    - `log`: a log y axis; `None`: per panel, when its norms are positive and span a factor of 10 or more.
    - `**plot_kwargs`: passed to every ``Axes.plot`` call.

    Returns the list of Axes, one per key.

    **Example:**

    ```python
    metrics = pxi.Metrics(activity_norms=True, param_norms=True, grad_norms=True)
    outs = [pxi.train_supervised(model, optim_w, x, y, metrics=metrics) for x, y in batches]
    ax_activities, ax_params, ax_grads = pcframe.plots.metrics_norms(outs)
    ```
    """
    stacked = _stack(outputs)
    keys = chosen(
        keys,
        sorted(stacked),
        [k for k in NORM_KEYS if k in stacked],
        "keys",
        "outputs have no",
        f"outputs hold none of {list(NORM_KEYS)} (keys {sorted(stacked)}): train with "
        "metrics=pxi.Metrics(activity_norms=True, param_norms=True, grad_norms=True).",
    )
    axes = given_axes(ax, len(keys), f"{len(keys)} norms {keys}")
    names = dict(names or {})
    for axis, key in zip(axes, keys):
        title, default = TITLES.get(key, (key, "column {}"))
        values = as_array(stacked[key], f"outputs[{key!r}]", (2,))
        _draw(axis, values, f"outputs[{key!r}]", names.get(key), default, x, label, log, plot_kwargs)
        axis.set(xlabel=xlabel, ylabel="L2 norm", title=title)
    return axes


def _stack(outputs: Any) -> dict[str, Any]:
    """A list of step outputs (dicts) as one dict of stacked values; a dict is returned as it is."""
    if isinstance(outputs, Mapping):
        if not outputs:
            raise ValueError("outputs is empty: give the training steps' outputs (a list of dicts) or {key: (S, L)}.")
        return dict(outputs)
    if not isinstance(outputs, Sequence) or isinstance(outputs, str):
        raise ValueError(f"outputs: expected a list of step outputs (dicts) or a dict, got {type(outputs).__name__}.")
    if not outputs:
        raise ValueError("outputs is empty: give the training steps' outputs (a list of dicts) or {key: (S, L)}.")
    for i, out in enumerate(outputs):
        if not isinstance(out, Mapping):
            raise ValueError(f"outputs[{i}]: expected a training step's output (a dict), got {type(out).__name__}.")
    keys = set.intersection(*(set(out) for out in outputs))
    stacked = {}
    for key in keys:
        try:
            stacked[key] = np.stack([np.asarray(out[key], dtype=float) for out in outputs])
        except ValueError as error:
            raise ValueError(f"outputs: the steps' {key!r} differ in shape ({error}).") from None
    return stacked


def _draw(
    ax: Any, values: np.ndarray, what: str, names: Any, default: str, x: Any, label: Any, log: Any, kw: Any
) -> None:
    """One line per column of `values` (S, L) against `x` on `ax`, with a legend and, if wanted, a log axis."""
    steps = x_values(x, len(values), "x", start=1)
    columns = values.shape[1]
    for column, name in enumerate(names_for(names, columns, default, f"names for {what}")):
        ax.plot(steps, values[:, column], **{"label": legend_label(label, name, columns), **kw})
    if wants_log(values, log):
        ax.set_yscale("log")
    if values.shape[1] > 1 or label:
        ax.legend(fontsize=8)
