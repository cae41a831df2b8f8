"""Training curves: energy, loss, accuracy per epoch or batch, train against test."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._backend import given_axes, wants_log
from ._data import as_array, chosen, x_values

SPLIT = re.compile(r"^(train|test|val|valid|validation|eval)_(.+)$|^(.+)_(train|test|val|valid|validation|eval)$")
"""A history key naming its split: ``train_loss``, ``test_accuracy``, ``loss_val``, ..."""

HELD_OUT = ("test", "val", "valid", "validation", "eval")
"""The splits drawn dashed."""

UNITS = {
    "accuracy": "accuracy (fraction correct)",
    "acc": "accuracy (fraction correct)",
    "energy": "energy (batch mean)",
    "loss": "loss (batch mean)",
    "time": "time (s)",
    "steps": "inference steps",
}
"""The default y label of a metric, by name."""


def training_curves(
    history: Mapping[str, Any],
    metrics: Sequence[str] | None = None,
    *,
    ax: Any = None,
    x: Any = None,
    xlabel: str = "epoch",
    label: str | None = None,
    log: bool | None = None,
    ylabels: Mapping[str, str] | None = None,
    **plot_kwargs: Any,
) -> list[Any]:
    """Draw a history of training metrics, one panel per metric, train and test of a metric on one panel.

    A key ``train_loss`` / ``test_loss`` (or ``loss_train``, ``val_loss``, ...) is the metric ``loss``
    of the split ``train`` / ``test``; a nested history ``{"train": {"loss": [...]}, "test": {...}}``
    reads the same. Entries that are not sequences (a total time, a final accuracy) are skipped
    unless `metrics` names them.

    **Arguments:**

    - `history`: ``{key: list of numbers}``, e.g. ``{"energy": [...], "train_accuracy": [...],
      "test_accuracy": [...]}``, one value per epoch (or per batch).
    - `metrics`: the metrics to draw, in order (default: every metric in the history).
    - `ax`: one Axes per metric (one Axes for one metric); a new figure when `None`.
    - `x`: the x values: one sequence for every series, or ``{key: sequence}`` by history key, metric
      or split (e.g. the training iterations at which the test accuracy was measured); default ``1, 2, ...``.
    - `xlabel`: the x axis label (``"epoch"``, ``"training batch"``, ...).
    - `label`: a prefix for the legend entries (``"PC"``, ``"BP"``: draw two runs on the same Axes).
    - `log`: a log y axis for every panel; `None`: for the panels (not accuracies) whose values are
      positive and span a factor of 10 or more.
    - `ylabels`: y labels by metric name (default: the name with its unit, e.g. ``accuracy (fraction correct)``).
    - `**plot_kwargs`: passed to every ``Axes.plot`` call (``lw=0.8``, ``color="0.5"``, ``marker="s"``, ...).

    Test, validation and evaluation series are dashed; series of up to 30 points get markers.

    Returns the list of Axes, one per metric.

    **Example:**

    ```python
    history = {"energy": [0.9, 0.3, 0.1], "train_accuracy": [0.7, 0.9, 0.95], "test_accuracy": [0.7, 0.88, 0.9]}
    ax_energy, ax_accuracy = pcframe.plots.training_curves(history)
    ```
    """
    series = _series(history)
    available = list(dict.fromkeys(metric for metric, _, _, _ in series))
    metrics = chosen(
        metrics,
        available,
        [m for m in available if any(not _scalar(v) for mm, _, v, _ in series if mm == m)],
        "metrics",
        "history has no metric",
        f"history holds no list of numbers to plot (keys {sorted(history)}): give each metric "
        "one value per epoch or step, e.g. {'energy': [0.9, 0.3, 0.1]}.",
    )
    axes = given_axes(ax, len(metrics), f"{len(metrics)} metrics {metrics}")
    ylabels = dict(ylabels or {})
    for axis, metric in zip(axes, metrics):
        drawn = []
        for name, split, values, where in series:
            if name != metric:
                continue
            values = as_array(values, where, (1,))
            steps = x_values(_x_for(x, name, split), len(values), f"x for {where}", start=1)
            words = [w for w in (label, split) if w]
            line_label = " ".join(words) if words else name
            style = {"ls": "--" if split in HELD_OUT else "-", "marker": "o" if len(values) <= 30 else None, "ms": 3}
            axis.plot(steps, values, **{**style, "label": line_label, **plot_kwargs})
            drawn.append(values)
        accuracy = metric.endswith("acc") or "accuracy" in metric
        if (log is True) or (log is None and not accuracy and wants_log(np.concatenate(drawn), None)):
            axis.set_yscale("log")
        axis.set(xlabel=xlabel, ylabel=ylabels.get(metric, UNITS.get(metric, metric)))
        if len(axis.get_lines()) > 1 or label or any(split for m, split, _, _ in series if m == metric):
            axis.legend(fontsize=8)
    return axes


def _series(history: Any) -> list[tuple[str, str | None, Any, str]]:
    """``(metric, split, values, where)`` for every entry of a flat or nested (``{split: {metric: values}}``) history."""
    if not isinstance(history, Mapping):
        raise ValueError(f"history: expected a dict of lists such as {{'loss': [...]}}, got {type(history).__name__}.")
    if not history:
        raise ValueError("history is empty: give it one list per metric, e.g. {'energy': [0.9, 0.3, 0.1]}.")
    series = []
    for key, values in history.items():
        if isinstance(values, Mapping):
            if not values:
                raise ValueError(f"history[{key!r}] is empty: give it one list per metric.")
            series.extend((str(m), str(key), v, f"history[{key!r}][{m!r}]") for m, v in values.items())
            continue
        match = SPLIT.match(str(key))
        if match:
            split, metric = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
            series.append((metric, split, values, f"history[{key!r}]"))
        else:
            series.append((str(key), None, values, f"history[{key!r}]"))
    return series


def _scalar(values: Any) -> bool:
    """Whether `values` is a single number (skipped unless asked for); ragged or odd values are not, and fail later."""
    try:
        return np.ndim(values) == 0
    except ValueError:
        return False


def _key(metric: str, split: str | None) -> str:
    return f"{split}_{metric}" if split else metric


def _x_for(x: Any, metric: str, split: str | None) -> Any:
    """The x values given for one series: the shared sequence, or its entry of a ``{key: sequence}`` mapping."""
    if not isinstance(x, Mapping):
        return x
    for key in (_key(metric, split), f"{metric}_{split}", metric, split):
        if key in x:
            return x[key]
    return None
