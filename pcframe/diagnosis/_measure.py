"""What the diagnosis measures: one recorded inference on the batch, and a few of the user's own weight steps.

Two measurements, both run on the user's model and optimiser inside `preserved` (so nothing is left
changed):

1. **The probe** (one compiled call): a feedforward pass with the target clamped (per-layer energies
   $E_\\ell^{\\text{ff}}$, predictions $\\hat y$), the user's inference strategy run with its energies
   recorded (the per-layer energies $E_{\\ell,t}$ at every step $t$), the per-layer energies at the end of
   inference $E_\\ell^\\ast$, the weight gradient there, and the library's non-finite report
   (`pcframe.inference._finite.nonfinite_report`) of those two stages.

   *Which strategies are recorded.* A strategy with a ``record_energies`` field (`DiscreteInference`,
   `ODEInference`) runs as it is, with ``record_energies=True, record_every=1``: the very same updates,
   recorded. `DiscreteInference` records the energies before each of its $T$ updates, so the trace is
   those $T$ rows and the final energies; `ODEInference` records after each accepted solver step, so the
   trace is the feedforward energies and one row per accepted step. Any other strategy (your own, ePC's
   `ErrorInference`) cannot be recorded from outside: it is run once (the equilibrium), then once more
   from where it stopped, and the trace is the three points feedforward, end of the run, end of the
   continued run (``trace_kind = "continued"``).

2. **The weight steps**: `steps` calls of the user's own step,
   ``train_supervised(model, optim_w, x, y, inference=inference)`` (the very program a training loop with
   the default metrics compiled: nothing new to compile), on the same batch;
   the relative change of each layer's weights, $\\lVert\\Delta W_\\ell\\rVert / \\lVert W_\\ell\\rVert$
   (Frobenius norms over the layer's parameters, weight and bias together). Without an optimiser, the
   relative size of the weight gradient at the equilibrium, $\\lVert\\partial F/\\partial W_\\ell\\rVert /
   \\lVert W_\\ell\\rVert$, is measured instead (what one plain gradient step would move, per unit of
   learning rate).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core._tree import is_param, param_paths
from ..functional._jit import jit
from ..inference._energy import ACTIVITIES, batch_energy, init_forward_energy, output_loss, output_vodes
from ..inference._finite import nonfinite_report, vode_names
from ..inference._gradients import value_grad_and_layers
from ..inference._metrics import Metrics, accuracy
from ..inference._strategy import AbstractInference
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..training._supervised import train_supervised
from ..utils._optim import Optim

STAGES = ("the feedforward pass", "inference")
"""The stages of the probe's non-finite report, in order."""


@dataclasses.dataclass(frozen=True, eq=False)
class Measurements:
    """Everything the findings are computed from (plain NumPy arrays and floats, on the host).

    **Arguments:**

    - `nodes`: the name of every node (``vodes[0]``, ...), in `iter_vodes` order; `outputs`: the indices of
      the clamped ones.
    - `trace`: per-layer energies over inference, shape ``(points, nodes)``, first row the feedforward pass,
      last row the end of inference (batch means); `trace_kind`: ``"recorded"`` or ``"continued"`` (see the
      module docstring).
    - `feedforward`, `equilibrium`: per-layer energies after the feedforward pass and at the end of inference.
    - `loss`: the output energy after the feedforward pass; `accuracy`: the feedforward accuracy
      ($\\arg\\max$, `None` with fewer than two output units); `target_error`:
      $\\frac1N\\sum_i \\tfrac12\\lVert \\hat y_i - y_i\\rVert^2$, the squared error of the prediction against `y`.
    - `layers`: the weight groups (``layers[0]``, ``convs[1]``, ...); `weight_norms`: $\\lVert W_\\ell\\rVert$;
      `weight_change`: $\\lVert\\Delta W_\\ell\\rVert/\\lVert W_\\ell\\rVert$ after the weight steps (or the relative
      gradient without an optimiser; `None` when the first weight step was not finite); `weight_quantity`: the
      name of that quantity; `weight_steps`: how many weight steps were taken.
    - `nonfinite`: ``(stage, name)`` of the first node or parameter that is NaN or inf, or `None`.
    """

    nodes: tuple[str, ...]
    outputs: tuple[int, ...]
    trace: np.ndarray
    trace_kind: str
    feedforward: np.ndarray
    equilibrium: np.ndarray
    loss: float
    accuracy: float | None
    target_error: float | None
    layers: tuple[str, ...] = ()
    weight_norms: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    weight_change: np.ndarray | None = None
    weight_quantity: str = ""
    weight_steps: int = 0
    nonfinite: tuple[str, str] | None = None


def recorded_strategy(inference: AbstractInference) -> AbstractInference | None:
    """`inference` with its energies recorded at every step, or `None` if it has no ``record_energies`` field.

    A `DiscreteInference` with a traced number of steps (an array) cannot record: `None` too.

    **Example:** ``recorded_strategy(DiscreteInference(step_size=0.1))`` is
    ``DiscreteInference(step_size=0.1, record_energies=True, record_every=1)``.
    """
    names = {field.name for field in dataclasses.fields(inference)}
    if "record_energies" not in names:
        return None
    if hasattr(getattr(inference, "steps", None), "dtype"):
        return None
    changes = {"record_energies": True}
    if "record_every" in names:
        changes["record_every"] = 1
    return dataclasses.replace(inference, **changes)


def layer_of(path: str) -> str:
    """The layer a parameter belongs to: ``layers[0].nn.weight`` -> ``layers[0]``, ``head.nn.bias`` -> ``head``."""
    owner = path.rsplit(".", 1)[0] if "." in path else path
    return owner.removesuffix(".nn")


def weight_groups(model: EnergyModule) -> dict[str, list[Any]]:
    """The model's weights (`LayerParam`s with a value) grouped by layer, in the model's order."""
    paths = param_paths(model)
    groups: dict[str, list[Any]] = {}
    for param in model.parameters(LayerParam):
        if param.value is not None:
            groups.setdefault(layer_of(paths.get(id(param), "?")), []).append(param)
    return groups


def _norm(values: list[Any]) -> float:
    """The Frobenius norm of arrays taken together, in float64 on the host (no compiled operation)."""
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(v, np.float64))) for v in values)))


def _difference(new: list[Any], old: list[Any]) -> list[Any]:
    return [np.asarray(a, np.float64) - np.asarray(b, np.float64) for a, b in zip(new, old)]


def _gradient_sizes(model: EnergyModule, grads: Any) -> dict[str, Any]:
    """Squared norm of the gradient of each weight group (traceable)."""
    paths = param_paths(model)
    model_params = dict(jax.tree_util.tree_flatten_with_path(model, is_leaf=is_param)[0])
    sizes: dict[str, Any] = {}
    for path, grad in jax.tree_util.tree_flatten_with_path(grads, is_leaf=is_param)[0]:
        value = getattr(grad, "value", None)
        if value is None:
            continue
        name = layer_of(paths.get(id(model_params.get(path)), str(path)))
        squares = sum(jnp.sum(jnp.square(leaf.astype(jnp.float32))) for leaf in jax.tree_util.tree_leaves(value))
        sizes[name] = sizes.get(name, 0.0) + squares
    return sizes


@jit(static_argnums=0, overwrites=ACTIVITIES)
def _probe(continued: bool, x: Any, y: Any, *, model: EnergyModule, inference: AbstractInference) -> dict[str, Any]:
    predictions, feedforward = init_forward_energy(model, x, y)
    stats = inference.infer(model, x)
    _, per_layer, grads = value_grad_and_layers(model, x)
    out = {
        "feedforward": feedforward,
        "equilibrium": per_layer,
        "loss": output_loss(model, feedforward),
        "report": nonfinite_report(model, [feedforward, per_layer], grads),
        "grad_sizes": _gradient_sizes(model, grads),
        "recorded": stats.get("energies"),
        "accepted": stats.get("accepted_steps"),
    }
    if hasattr(predictions, "shape") and hasattr(y, "shape") and predictions.shape == y.shape:
        error = jnp.reshape(predictions - y, (y.shape[0], -1))
        out["target_error"] = 0.5 * jnp.mean(jnp.sum(error.astype(jnp.float32) ** 2, axis=1))
        if y.ndim == 2 and y.shape[-1] >= 2:
            out["accuracy"] = accuracy(predictions, y)
    if continued:
        inference.infer(model, x)
        out["continued"] = batch_energy(model, x)[1]
    return out


def _first_nonfinite(report: dict[str, Any], names: list[str]) -> tuple[str, str] | None:
    """``(stage, name)`` of the first non-finite node energy, else of the first non-finite gradient."""
    energies = np.asarray(report["energies"])
    for stage, flags in zip(STAGES, energies):
        bad = [name for name, flag in zip(names, flags) if flag]
        if bad:
            return stage, bad[0]
    bad = [name for name, flag in report["grads"].items() if bool(flag)]
    return ("the weight gradient", bad[0]) if bad else None


def _trace(out: dict[str, Any], kind: str, discrete: bool) -> np.ndarray:
    feedforward, equilibrium = np.asarray(out["feedforward"]), np.asarray(out["equilibrium"])
    if kind == "continued":
        return np.stack([feedforward, equilibrium, np.asarray(out["continued"])])
    recorded = np.asarray(out["recorded"])
    if discrete:  # recorded before each update: the first row is the feedforward pass; add the end
        return np.concatenate([recorded, equilibrium[None]])
    accepted = int(out["accepted"]) if out["accepted"] is not None else len(recorded)
    return np.concatenate([feedforward[None], recorded[:accepted]])


def probe(model: EnergyModule, x: Any, y: Any, inference: AbstractInference) -> tuple[Measurements, dict]:
    """Run the probe (see the module docstring) on the user's model; the activities are left changed.

    **Returns:** the `Measurements` of the probe (no weight steps yet) and the squared gradient norm of
    each weight group.
    """
    recording = recorded_strategy(inference)
    kind = "recorded" if recording is not None else "continued"
    out = _probe(recording is None, x, y, model=model, inference=recording if recording is not None else inference)
    names = vode_names(model)
    clamped = {id(v) for v in output_vodes(model)}
    outputs = tuple(i for i, v in enumerate(model.iter_vodes()) if id(v) in clamped)
    discrete = out["accepted"] is None
    measured = Measurements(
        nodes=tuple(names),
        outputs=outputs,
        trace=_trace(out, kind, discrete),
        trace_kind=kind,
        feedforward=np.asarray(out["feedforward"]),
        equilibrium=np.asarray(out["equilibrium"]),
        loss=float(out["loss"]),
        accuracy=float(out["accuracy"]) if "accuracy" in out else None,
        target_error=float(out["target_error"]) if "target_error" in out else None,
        nonfinite=_first_nonfinite(out["report"], names),
    )
    return measured, {k: float(v) for k, v in out["grad_sizes"].items()}


_CULPRIT = re.compile(r"(?:the node|the gradient of) (\S+?)[ ,;]")


def _culprit(model: EnergyModule, optim_w: Optim, x: Any, y: Any, inference: AbstractInference) -> str:
    """The node or parameter a weight step that was not finite names, from ``check_finite=True``.

    The library's guard left the weights as they were, so the step is run again, checked: its
    `FloatingPointError` names the first non-finite node energy or weight gradient. When it does not
    raise, the energies and gradients were finite and the new weights were not: ``the new weights``.
    """
    try:
        train_supervised(model, optim_w, x, y, inference=inference, metrics=_QUIET, check_finite=True)
    except FloatingPointError as error:
        match = _CULPRIT.search(str(error))
        return match.group(1) if match else "?"
    return "the new weights"


def weight_steps(
    measured: Measurements,
    grad_sizes: dict[str, float],
    model: EnergyModule,
    optim_w: Optim | None,
    x: Any,
    y: Any,
    inference: AbstractInference,
    steps: int,
) -> Measurements:
    """Add the weight measurements: `steps` of the user's training steps (or the gradient without `optim_w`).

    A step that is not finite (``finite`` false: the library's guard skipped it) stops the weight steps; it
    is run once more with ``check_finite=True``, whose `FloatingPointError` names the first non-finite node
    or parameter (stage ``"a weight step"``; ``the new weights`` when only the updated weights overflow).
    """
    groups = weight_groups(model)
    names = tuple(groups)
    before = {name: [p.value for p in params] for name, params in groups.items()}
    norms = np.array([_norm(values) for values in before.values()])
    if optim_w is None:
        sizes = np.sqrt(np.array([grad_sizes.get(name, 0.0) for name in names]))
        return dataclasses.replace(
            measured,
            layers=names,
            weight_norms=norms,
            weight_change=sizes / np.maximum(norms, np.finfo(np.float32).tiny),
            weight_quantity="‖∂F/∂W‖/‖W‖",
        )
    nonfinite, taken = measured.nonfinite, 0
    for _ in range(steps):
        if not bool(train_supervised(model, optim_w, x, y, inference=inference)["finite"]):
            nonfinite = nonfinite or ("a weight step", _culprit(model, optim_w, x, y, inference))
            break
        taken += 1
    change = np.array([_norm(_difference([p.value for p in groups[name]], before[name])) for name in names])
    return dataclasses.replace(
        measured,
        layers=names,
        weight_norms=norms,
        weight_change=change / np.maximum(norms, np.finfo(np.float32).tiny) if taken else None,
        weight_quantity="‖ΔW‖/‖W‖",
        weight_steps=taken,
        nonfinite=nonfinite,
    )


_QUIET = Metrics(loss=False, energies=False)
"""The weight steps need no metrics: the weights themselves are compared."""
