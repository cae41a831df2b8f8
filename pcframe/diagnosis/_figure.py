"""The report as a matplotlib figure (matplotlib is imported only here, when a figure is asked for)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._balance import FLOOR

_RED, _GREY = "#c0392b", "#7f8c8d"


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            'pcframe.diagnosis draws its figures with matplotlib, which is not installed: pip install "pcframe[plots]" '
            "(or pip install matplotlib). The text report, str(report), needs nothing more."
        ) from error
    return plt


def plot_report(report: Any, axes: Any = None) -> Any:
    """Draw a `Report` on three axes: energy over inference, per-layer energies, relative weight changes.

    1. the total energy $F_t$ over the inference steps (log scale) and each layer's $E_{\\ell,t}$ (thin);
    2. the per-layer energies at the end of inference (log scale; the layer a finding names in red), with
       the span allowed by `Thresholds.orders` below the largest shaded;
    3. each layer's $\\lVert\\Delta W_\\ell\\rVert/\\lVert W_\\ell\\rVert$ (log scale), a line at the `frozen`
       fraction of the largest, the layers named by findings in red.

    The figure's title lists the findings, or says there are none.

    **Arguments:**

    - `report`: a `Report` from `diagnose`.
    - `axes`: three matplotlib axes to draw on, or `None` for a new figure.

    **Returns:** the matplotlib figure.

    **Raises:** `ImportError` when matplotlib is not installed (``pip install "pcframe[plots]"``).

    **Example:** ``plot_report(report).savefig("diagnosis.png")``
    """
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    else:
        axes = list(axes)
        if len(axes) != 3:
            raise ValueError(f"plot_report draws on three axes, got {len(axes)}.")
        fig = axes[0].figure
    m = report.measurements
    named = {name for f in report.findings if f.layer for name in f.layer.split(", ")}
    _plot_trace(axes[0], m, {f.kind for f in report.findings})
    _plot_layers(axes[1], m, named, report.thresholds.orders)
    _plot_weights(axes[2], m, named, report.thresholds)
    if report.findings:
        title = f"{len(report.findings)} finding(s): " + ", ".join(_label(f) for f in report.findings)
    else:
        title = "no findings"
    fig.suptitle(title, color=_RED if report.findings else "black", fontsize=10)
    fig.tight_layout()
    return fig


def _plot_trace(ax: Any, m: Any, kinds: set[str]) -> None:
    trace = np.maximum(np.asarray(m.trace, np.float64), FLOOR)
    steps = np.arange(len(trace))
    for i, name in enumerate(m.nodes):
        ax.plot(steps, trace[:, i], lw=0.7, alpha=0.6, label=name if len(m.nodes) <= 6 else None)
    bad = kinds & {"inference_diverging", "inference_not_converged", "nonfinite"}
    ax.plot(steps, trace.sum(axis=1), color=_RED if bad else "black", lw=2, label="total $F_t$")
    ax.set(yscale="log", xlabel="inference step" if m.trace_kind == "recorded" else "run", ylabel="energy")
    shown = trace[np.isfinite(trace) & (trace > FLOOR)]
    if shown.size:  # energies of exactly 0 are drawn at the bottom edge, not 30 orders down
        ax.set_ylim(bottom=max(shown.min() / 10, shown.max() * 1e-20))
    ax.set_title("energy over inference", fontsize=9)
    ax.legend(fontsize=7)


def _plot_layers(ax: Any, m: Any, named: set[str], orders: float) -> None:
    energies = np.maximum(np.asarray(m.equilibrium, np.float64), FLOOR)
    colours = [_RED if name in named else _GREY for name in m.nodes]
    ax.bar(range(len(energies)), energies, color=colours)
    if np.all(np.isfinite(energies)):
        top = energies.max()
        ax.axhspan(top * 10.0**-orders, top, color="green", alpha=0.08, label=f"{orders:g} orders below the largest")
        ax.legend(fontsize=7)
    ax.set(yscale="log", xlabel="node", ylabel="energy after inference")
    ax.set_xticks(range(len(energies)), _short(m.nodes), rotation=90, fontsize=7)
    ax.set_title("per-layer energies", fontsize=9)


def _plot_weights(ax: Any, m: Any, named: set[str], thresholds: Any) -> None:
    if m.weight_change is None or len(m.weight_change) == 0:
        ax.text(0.5, 0.5, "no weight measurement", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    change = np.maximum(np.asarray(m.weight_change, np.float64), FLOOR)
    colours = [_RED if name in named else _GREY for name in m.layers]
    ax.bar(range(len(change)), change, color=colours)
    top = float(change.max())
    if np.isfinite(top) and top > FLOOR:
        ax.axhline(
            top * thresholds.frozen, color="black", lw=0.8, ls="--", label=f"{thresholds.frozen:g} of the largest"
        )
        ax.legend(fontsize=7)
    ax.set(yscale="log", xlabel="layer", ylabel=m.weight_quantity)
    ax.set_xticks(range(len(change)), _short(m.layers), rotation=90, fontsize=7)
    steps = f"after {m.weight_steps} weight step(s)" if m.weight_steps else "relative gradient"
    ax.set_title(f"relative weight change, {steps}", fontsize=9)


def _label(finding: Any) -> str:
    """``kind (layer)``, a long list of layers shortened to its first and a count."""
    if not finding.layer:
        return finding.kind
    names = finding.layer.split(", ")
    return f"{finding.kind} ({names[0]}" + (f" and {len(names) - 1} more)" if len(names) > 1 else ")")


def _short(names: tuple[str, ...]) -> list[str]:
    """Tick labels: every name when there are few, else every few."""
    every = max(1, len(names) // 12)
    return [name if i % every == 0 else "" for i, name in enumerate(names)]
