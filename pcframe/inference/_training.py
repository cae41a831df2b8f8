"""Training steps: inference followed by a weight update, in one compiled call.

Each public function checks its arguments in Python, then calls a `jit`-compiled
step (compiled once per model structure and configuration); the model and the
optimisers are updated in place, and a dict of metrics is returned (JAX arrays:
reading them is the only point where the host waits for the device).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import weakref
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ..core._random import RKG, RandomKeyGenerator
from ..core._state import assign
from ..core._structure import STRUCTURE
from ..functional._jit import jit
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..pc._vode import VodeParam
from ..utils._optim import Optim
from ._energy import FREE, batch_energy, init_forward, init_forward_energy, init_forward_loss, output_loss
from ._finite import REPORT, nonfinite_report, raise_if_not_finite
from ._gradients import value_grad_and_layers
from ._guard import all_finite, gradient_values, guarded_update
from ._init import init_random
from ._metrics import Metrics, accuracy, l2_norms, param_values
from ._nudging import Nudging, scaled_output_energy
from ._strategy import AbstractInference, cached_split


def check_batches(where: str, **batches: Any) -> None:
    """Refuse batches that are not numeric arrays with one shared, non-empty leading batch axis (`None` is skipped).

    A target batch ``y`` of integers with no axis after the batch axis holds class labels, not the
    one-hot targets the output node takes: the error says how to encode them.
    """
    sizes = {}
    for name, batch in batches.items():
        if batch is None:
            continue
        if not (hasattr(batch, "shape") and hasattr(batch, "dtype")):
            raise TypeError(
                f"{where}: {name} must be a JAX or NumPy array with a leading batch axis, got {type(batch).__name__}. "
                f"Convert it with jnp.asarray({name})."
            )
        if not (jnp.issubdtype(batch.dtype, jnp.number) or jnp.issubdtype(batch.dtype, jnp.bool_)):
            raise TypeError(f"{where}: {name} must hold numbers, got dtype {batch.dtype}.")
        if len(batch.shape) == 0:
            raise ValueError(f"{where}: {name} must have a leading batch axis, got shape (); use {name}[None].")
        if batch.shape[0] == 0:
            raise ValueError(
                f"{where}: {name} is an empty batch (shape {tuple(batch.shape)}); give at least one sample."
            )
        if name == "y" and len(batch.shape) == 1 and jnp.issubdtype(batch.dtype, jnp.integer):
            raise ValueError(
                f"{where}: y holds {batch.shape[0]} integer class labels (shape {tuple(batch.shape)}), but the output "
                "node takes one target vector per sample. One-hot encode them: jax.nn.one_hot(y, num_classes)."
            )
        sizes[name] = batch.shape[0]
    if len(set(sizes.values())) > 1:
        described = " but ".join(
            f"{name} has {size}" if i else f"{name} has batch size {size}"
            for i, (name, size) in enumerate(sizes.items())
        )
        raise ValueError(f"{where}: {described}. Give every batch the same number of samples (leading axis).")


def check_step_arguments(model: Any, optims: dict[str, Any], inference: Any, metrics: Any) -> None:
    """Refuse wrong argument types with a message that says what to pass instead."""
    if not isinstance(model, EnergyModule):
        raise TypeError(f"model must be a pcframe.pc.EnergyModule, got {type(model).__name__}.")
    for name, optim in optims.items():
        if not isinstance(optim, Optim):
            raise TypeError(
                f"{name} must be a pcframe.utils.Optim, e.g. Optim(optax.adam(1e-3), Mask(LayerParam)(model)); "
                f"got {type(optim).__name__}."
            )
    if not isinstance(inference, AbstractInference):
        raise TypeError(
            "inference must be a pcframe.inference.AbstractInference, e.g. DiscreteInference(step_size=0.1, "
            f"steps=20) or ODEInference(); got {inference!r}."
        )
    if not isinstance(metrics, Metrics):
        raise TypeError(f"metrics must be a pcframe.inference.Metrics, got {metrics!r}.")


_STAGES = ("the feedforward pass", "inference")


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """The static configuration of a compiled training step (the strategy without its hyperparameters).

    The hyperparameters travel separately, as a flat list of arrays (traced): `strategy`
    puts them back into the strategy inside the compiled step.
    """

    inference: Any
    metrics: Metrics = Metrics()
    nudging: Nudging | None = None
    sigma: float | None = None
    check_finite: bool = False
    hyper_treedef: Any = None

    @functools.cached_property
    def _hash(self) -> int:
        return hash(tuple(getattr(self, f.name) for f in dataclasses.fields(self)))

    def __hash__(self) -> int:
        return self._hash

    def strategy(self, hyper: list[Any]) -> AbstractInference:
        """The inference strategy, its traced hyperparameters `hyper` put back in."""
        return eqx.combine(jax.tree_util.tree_unflatten(self.hyper_treedef, hyper), self.inference)


_CONFIGS: dict[tuple, tuple] = {}
_STEP_CONFIGS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # one object per value: see below
_ACTIVITIES: dict[tuple, tuple] = {}
_CHECKED: dict[tuple, bool] = {}
_MAX_CACHED = 64


def _remember(cache: dict, key: tuple, value: Any) -> Any:
    if len(cache) >= _MAX_CACHED:
        cache.clear()
    cache[key] = value
    return value


def compiled_arguments(inference: AbstractInference, **config: Any) -> tuple[StepConfig, list[Any]]:
    """``(config, hyperparameters)`` for a compiled step: the static part and the traced part.

    Strategies are immutable, so the split is cached per strategy object, and equal
    configurations share one `StepConfig` object, also for a new strategy object built every
    step: the compiled step's cache lookup is then an identity check, which runs no Python
    code (a Ctrl-C cannot land inside JAX's comparison). The hyperparameters come from
    `cached_split` (on the device once), as a flat list of arrays.
    """
    key = (id(inference), *config.items())
    found = _CONFIGS.get(key)
    if found is None or found[0] is not inference:
        hyper, structure = cached_split(inference)
        leaves, treedef = jax.tree_util.tree_flatten(hyper)
        step_config = StepConfig(structure, **config, hyper_treedef=treedef)
        step_config = _STEP_CONFIGS.setdefault(step_config, step_config)
        found = _remember(_CONFIGS, key, (inference, step_config, leaves))
    return found[1], found[2]


def checked_batches(where: str, **batches: Any) -> None:
    """`check_batches`, run once per combination of batch types, shapes and dtypes."""
    key = (
        where,
        *((name, type(b), getattr(b, "shape", None), getattr(b, "dtype", None)) for name, b in batches.items()),
    )
    if key not in _CHECKED:
        check_batches(where, **batches)
        _remember(_CHECKED, key, True)


def reset_activities(*models: EnergyModule) -> None:
    """Clear activities and caches *before* a compiled step, so its inputs never depend on the last batch.

    The list of activity parameters is cached per model while no model's structure changes.
    """
    for model in models:
        key = (id(model), STRUCTURE.value)
        found = _ACTIVITIES.get(key)
        if found is None or found[0] is not model:
            params = (*model.parameters(VodeParam), *model.parameters(VodeParam.Cache))
            found = _remember(_ACTIVITIES, key, (model, params, [None] * len(params)))
        assign(found[1], found[2])


def _equilibrium_grads(
    config: StepConfig,
    inference: AbstractInference,
    model: EnergyModule,
    x: Any,
    y: Any,
    rkg: Any,
    beta: float | None,
    feedforward_done: bool,
):
    """Initialise the activities (unless `feedforward_done`), infer, and take the weight gradient there.

    **Returns:** ``(stats, grads, energy, per_layer)``; the energies are those at the
    equilibrium, of the nudged energy when `beta` is given.
    """
    if config.sigma is not None:
        init_random(model, x, y, sigma=config.sigma, rkg=rkg)
    elif not feedforward_done:
        init_forward(model, x, y)
    nudged = contextlib.nullcontext() if beta is None else scaled_output_energy(model, beta)
    with nudged:
        stats = inference.infer(model, x)
        energy, per_layer, grads = value_grad_and_layers(model, x, LayerParam)
    if beta is not None:
        grads = jax.tree_util.tree_map(lambda g: g / beta, grads)
    return stats, grads, energy, per_layer


def inference_metrics(stats: dict[str, Any]) -> dict[str, Any]:
    """An engine's stats as step metrics: recorded traces renamed so they cannot replace the step's own ``energies``."""
    renamed = {"energies": "inference_energies", "activities": "inference_activities"}
    return {renamed.get(k, k): v for k, v in stats.items()}


def optional_metrics(asked: Metrics, model: EnergyModule, optim: Optim, grads: list[Any]) -> dict[str, Any]:
    """The optional metrics `asked` for: norms of the activities, the weights (after the update), the gradients."""
    metrics = {}
    if asked.activity_norms:
        metrics["activity_norms"] = l2_norms(param_values(tuple(model.parameters(FREE))))
    if asked.param_norms:
        metrics["param_norms"] = l2_norms(param_values(optim.params))
    if asked.grad_norms:
        metrics["grad_norms"] = l2_norms(grads)
    return metrics


@jit(static_argnums=0)
def _pc_step(config: StepConfig, hyper: list, x: Any, y: Any, *, model: EnergyModule, optim_w: Optim, rkg: Any) -> dict:
    inference = config.strategy(hyper)
    metrics: dict[str, Any] = {}
    if config.check_finite:  # the report names the first node whose feedforward energy is not finite
        predictions, feedforward = init_forward_energy(model, x, y)
        metrics["loss"] = output_loss(model, feedforward)
    elif config.metrics.loss:
        predictions, metrics["loss"] = init_forward_loss(model, x, y)
    else:
        predictions = init_forward(model, x, y)
    if config.metrics.accuracy:
        metrics["accuracy"] = accuracy(predictions, y)
    nudging = config.nudging
    if nudging is not None and nudging.centred:
        stats, plus, _, _ = _equilibrium_grads(config, inference, model, x, y, rkg, nudging.beta, True)
        _, minus, _, _ = _equilibrium_grads(config, inference, model, x, y, rkg, -nudging.beta, False)
        leaves, treedef = jax.tree_util.tree_flatten(plus)
        grads = jax.tree_util.tree_unflatten(
            treedef, [0.5 * (a + b) for a, b in zip(leaves, jax.tree_util.tree_leaves(minus))]
        )
    else:
        beta = None if nudging is None else nudging.beta
        stats, grads, energy, per_layer = _equilibrium_grads(config, inference, model, x, y, rkg, beta, True)
    if nudging is not None:  # report the un-nudged energy at the equilibrium
        energy, per_layer = batch_energy(model, x)
    flat = gradient_values(grads)
    finite = all_finite(energy, flat)
    if config.check_finite:
        metrics[REPORT] = nonfinite_report(model, [feedforward, per_layer], grads)
    finite = guarded_update([(optim_w, model, grads)], finite)
    metrics.update(inference_metrics(stats), energy=energy, finite=finite)
    if config.metrics.energies:
        metrics["energies"] = per_layer
    metrics.update(optional_metrics(config.metrics, model, optim_w, flat))
    return metrics


def train_supervised(
    model: EnergyModule,
    optim_w: Optim,
    x: Any,
    y: Any,
    *,
    inference: AbstractInference,
    metrics: Metrics = Metrics(),
    nudging: Nudging | None = None,
    check_finite: bool = False,
) -> dict[str, Any]:
    """One supervised PC step: clamp input `x` and target `y`, infer, update the weights.

    Activities start from a feedforward pass, inference minimises $\\mathcal{F}$ over
    them, then `optim_w` takes one step along $\\partial\\mathcal{F}/\\partial\\theta$ at the
    equilibrium. If the energy, a gradient or a new weight is not finite, the weights and
    the optimiser state are left unchanged and ``metrics["finite"]`` is `False`.

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol (e.g. `PCMLP`).
    - `optim_w`: the weight optimiser (`Optim` over the model's `LayerParam`s).
    - `x`, `y`: input and target batches (one-hot targets for a cross-entropy output).
    - `inference`: an inference strategy (`DiscreteInference(...)`, `ODEInference(...)` or your own).
    - `metrics`: optional metrics to compute.
    - `nudging`: optional `Nudging` of the output instead of hard clamping.
    - `check_finite`: raise `FloatingPointError` naming the first node whose energy (or
      parameter whose gradient) is NaN/inf; costs one wait for the device per step.

    **Returns:** a dict: ``loss`` (output energy of the feedforward pass), ``energy`` and
    ``energies`` (total and per layer, after inference), ``steps``, ``finite``, plus
    the engine's extras (``t1``, ``steady``, recorded traces) and the optional metrics.

    **Example:**

    ```python
    model = PCMLP([784, 128, 128, 10])
    optim_w = Optim(optax.adam(1e-3), Mask(LayerParam)(model))
    out = train_supervised(model, optim_w, x, y, inference=DiscreteInference(optax.sgd(0.1), 20))
    ```
    """
    check_step_arguments(model, {"optim_w": optim_w}, inference, metrics)
    if nudging is not None and not isinstance(nudging, Nudging):
        raise TypeError(f"nudging must be a pcframe.inference.Nudging or None, got {nudging!r}.")
    if x is None or y is None:
        raise ValueError("train_supervised needs both an input batch x and a target batch y.")
    checked_batches("train_supervised", x=x, y=y)
    config, hyper = compiled_arguments(inference, metrics=metrics, nudging=nudging, check_finite=bool(check_finite))
    reset_activities(model)
    out = _pc_step(config, hyper, x, y, model=model, optim_w=optim_w, rkg=RKG)
    return raise_if_not_finite(out, model, _STAGES, "train_supervised") if check_finite else out


def train_unsupervised(
    model: EnergyModule,
    optim_w: Optim,
    y: Any,
    *,
    inference: AbstractInference,
    sigma: float = 0.05,
    metrics: Metrics = Metrics(),
    rkg: RandomKeyGenerator = RKG,
    check_finite: bool = False,
) -> dict[str, Any]:
    """One generative PC step: clamp the data `y` at the output, infer the rest (input included).

    The free activities start from $\\mathcal{N}(0, \\sigma^2)$ drawn from `rkg`; the model's
    input layer must be free (e.g. ``PCMLP(..., free_input=True)``).

    `check_finite=True` raises `FloatingPointError` naming the node or parameter that
    became NaN/inf, as in `train_supervised`.

    **Arguments:**

    - `model`: an `EnergyModule` with a free input layer.
    - `optim_w`: the weight optimiser.
    - `y`: the data batch clamped at the output.
    - `inference`: an inference strategy (`DiscreteInference(...)`, `ODEInference(...)` or your own).
    - `sigma`: standard deviation $\\sigma$ of the random initial activities.
    - `metrics`: optional metrics to compute.
    - `rkg`: the key generator the initial activities are drawn from.
    - `check_finite`: raise `FloatingPointError` on a non-finite energy or gradient (see `train_supervised`).

    **Returns:** the same metrics as `train_supervised`.

    **Example:**

    ```python
    decoder = PCMLP([16, 64, 784], free_input=True)
    out = train_unsupervised(decoder, optim_w, images, inference=ODEInference())
    ```
    """
    check_step_arguments(model, {"optim_w": optim_w}, inference, metrics)
    if y is None:
        raise ValueError("train_unsupervised needs the data batch y to clamp at the output.")
    checked_batches("train_unsupervised", y=y)
    if not (isinstance(sigma, (int, float)) and sigma >= 0):
        raise ValueError(f"train_unsupervised: sigma must be a non-negative number, got {sigma!r}.")
    if not isinstance(rkg, RandomKeyGenerator):
        raise TypeError(f"rkg must be a pcframe RandomKeyGenerator, got {type(rkg).__name__}.")
    config, hyper = compiled_arguments(inference, metrics=metrics, sigma=float(sigma), check_finite=bool(check_finite))
    reset_activities(model)
    out = _pc_step(config, hyper, None, y, model=model, optim_w=optim_w, rkg=rkg)
    return raise_if_not_finite(out, model, _STAGES, "train_unsupervised") if check_finite else out
