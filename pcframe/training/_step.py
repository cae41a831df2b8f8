"""The one training step: every training mode runs through `train_step`.

A training mode (`TrainingMode`) says what one step does with its models: how the
activities start, what is clamped, which energy inference descends, which weight
steps it takes. Everything else is the same for every mode and lives here once:

1. argument checks (in Python, before anything is traced);
2. one compiled call (`pcframe.functional.jit`), with the activities declared as
   overwritten (they enter as `None`: the mode sets them before reading them, so a
   batch of another size, or an evaluation in between, compiles nothing new);
3. the guard: the weights and optimiser states are kept only where the energy, every
   gradient and every new weight and optimiser-state value are finite,
   $\\theta' = \\theta_\\text{new}$ if all finite, else $\\theta$;
4. the metrics asked for, and with ``check_finite=True`` the report that names the first
   node or parameter that is not finite.

The mode is a static argument of the compiled step (a frozen dataclass, compared by
value); the inference strategy travels as a keyword argument (a `pcframe.core.Config`:
its floats and arrays are traced), so a sweep over its step size compiles once.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, NamedTuple

from ..core._batches import check_batches
from ..functional._jit import jit
from ..inference._energy import ACTIVITIES
from ..inference._finite import REPORT, nonfinite_report, raise_if_not_finite
from ..inference._metrics import Metrics, optional_metrics, without_unasked
from ..inference._strategy import AbstractInference
from ..pc._energy_module import EnergyModule
from ..utils._optim import Optim
from ._guard import all_finite, gradient_values, keep_only_if, snapshot


class Learned(NamedTuple):
    """What a mode's `learn` returns to the step skeleton.

    **Arguments:**

    - `metrics`: what the step reports (``loss``, ``energy``, ``energies``, ``steps``, ...);
    - `finite`: arrays that must all be finite for the weight steps to be kept (the energy,
      the gradients); the new weights and optimiser states are checked too, always;
    - `model`, `optim`, `grads`: the model, optimiser and gradients (a gradient tree, or a list of
      arrays) the optional metrics (``activity_norms``, ``param_norms``, ``grad_norms``) describe;
    - `report`: ``(model, stages, grads)`` for the non-finite report: the per-layer energies
      at each stage of `TrainingMode.stages`, and the gradient tree of `model`.
    """

    metrics: dict[str, Any]
    finite: list[Any]
    model: EnergyModule
    optim: Optim
    grads: Any
    report: tuple[EnergyModule, list[Any], Any]


@dataclasses.dataclass(frozen=True)
class TrainingMode(abc.ABC):
    """What one training step does: subclass it, implement `learn`, and run it with `train_step`.

    A mode is a frozen dataclass: its fields are static (part of what the step is compiled
    for, compared by value). `learn` runs inside the compiled step, with the models and
    optimisers passed to `train_step` by keyword; their activities start as `None`. It sets
    the activities (a feedforward pass, random values, an amortiser's guess), infers, and
    takes its weight steps with the optimisers (``optim.step(model, grads)``); the skeleton
    undoes every one of them unless all stays finite.

    **Arguments:**

    - `metrics`: the `Metrics` the step returns.
    - `check_finite`: raise `FloatingPointError` naming the first node or parameter that is not finite.

    **Example** (a user's mode: supervised PC whose weights learn from the feedforward pass only):

    ```python
    @dataclasses.dataclass(frozen=True)
    class FeedforwardOnly(TrainingMode):
        name: ClassVar[str] = "feedforward_only"

        def learn(self, inference, x, y, *, model, optim_w):
            init_forward(model, x, y)
            energy, per_layer, grads = value_grad_and_layers(model, x)
            optim_w.step(model, grads)
            metrics = {"energy": energy, "energies": per_layer, "steps": jnp.asarray(0)}
            return Learned(metrics, [energy, grads], model, optim_w, grads, (model, [per_layer, per_layer], grads))

    out = train_step(FeedforwardOnly(), x, y, inference=DiscreteInference(), model=model, optim_w=optim_w)
    ```
    """

    metrics: Metrics = Metrics()
    check_finite: bool = False

    name: ClassVar[str] = "train_step"
    """The name errors give for the step (e.g. ``train_supervised``)."""

    infers: ClassVar[bool] = True
    """Whether the mode runs an inference strategy: `train_step` then needs one, else `inference=None`."""
    stages: ClassVar[tuple[str, ...]] = ("the feedforward pass", "inference")
    """What the per-layer energies of `Learned.report` were measured after."""

    @abc.abstractmethod
    def learn(self, inference: AbstractInference, x: Any, y: Any, **state: Any) -> Learned:
        """Set the activities, infer with `inference`, take the weight steps; runs inside the compiled step.

        **Arguments:**

        - `inference`: the inference strategy (its hyperparameters traced).
        - `x`, `y`: the batches given to `train_step` (either may be `None`).
        - `**state`: the models, optimisers and key generators given to `train_step` by keyword.

        **Returns:** a `Learned`.
        """


def check_step_arguments(where: str, inference: Any, metrics: Any, infers: bool = True, **state: Any) -> None:
    """Refuse wrong argument types with a message that says what to pass instead.

    Keyword arguments named ``optim...`` must be `Optim`s; the others that are not key
    generators must be `EnergyModule`s; `inference` an inference strategy (`None` when the
    step `infers` nothing).
    """
    for name, value in state.items():
        if name.startswith("optim"):
            if not isinstance(value, Optim):
                raise TypeError(
                    f"{where}: {name} must be a pcframe.utils.Optim, e.g. Optim(optax.adam(1e-3), "
                    f"Mask(LayerParam)(model)); got {type(value).__name__}."
                )
        elif name != "rkg" and not isinstance(value, EnergyModule):
            raise TypeError(f"{where}: {name} must be a pcframe.pc.EnergyModule, got {type(value).__name__}.")
    if not (infers or inference is None):
        raise TypeError(f"{where} runs no inference: pass inference=None, got {inference!r}.")
    if infers and not isinstance(inference, AbstractInference):
        raise TypeError(
            f"{where}: inference must be a pcframe.inference.AbstractInference, e.g. DiscreteInference(step_size=0.1, "
            f"steps=20) or ODEInference(); got {inference!r}."
        )
    if not isinstance(metrics, Metrics):
        raise TypeError(f"{where}: metrics must be a pcframe.inference.Metrics, got {metrics!r}.")


@jit(static_argnums=0, overwrites=ACTIVITIES)
def _compiled_step(mode: TrainingMode, x: Any, y: Any, *, inference: AbstractInference, **state: Any) -> dict:
    optims = [value for value in state.values() if isinstance(value, Optim)]
    models = [value for value in state.values() if isinstance(value, EnergyModule)]
    saved = snapshot(optims, models)
    learned = mode.learn(inference, x, y, **state)
    finite = all_finite(*learned.finite, [param.value for param, _ in saved])
    keep_only_if(finite, saved)
    out = {**learned.metrics, "finite": finite}
    if mode.check_finite:
        out[REPORT] = nonfinite_report(*learned.report)
    out.update(optional_metrics(mode.metrics, learned.model, learned.optim, gradient_values(learned.grads)))
    return without_unasked(out, mode.metrics)


def train_step(
    mode: TrainingMode, x: Any, y: Any, *, inference: AbstractInference | None, **state: Any
) -> dict[str, Any]:
    """Run one training step of `mode`: checks, one compiled call, the guard, metrics, the finite report.

    The models and optimisers passed by keyword are updated in place. Compiled once per
    mode (by value), strategy structure, model structure and batch shape.

    **Arguments:**

    - `mode`: a `TrainingMode` (e.g. your own subclass).
    - `x`, `y`: the batches (either may be `None`).
    - `inference`: the inference strategy (`None` for a mode that `infers` nothing, e.g. `Backprop`).
    - `**state`: the models (`EnergyModule`), optimisers (names starting with ``optim``,
      `Optim`) and key generator (``rkg``) that `mode.learn` takes.

    **Returns:** the metrics dict of the mode, with ``finite``.

    **Example:** ``train_step(MyMode(), x, y, inference=DiscreteInference(), model=model, optim_w=optim_w)``
    """
    if not isinstance(mode, TrainingMode):
        raise TypeError(f"train_step: mode must be a pcframe.inference.TrainingMode, got {type(mode).__name__}.")
    check_step_arguments(mode.name, inference, mode.metrics, mode.infers, **state)
    check_batches(mode.name, x=x, y=y)
    out = _compiled_step(mode, x, y, inference=inference, **state)
    if mode.check_finite:
        model = next(value for value in state.values() if isinstance(value, EnergyModule))
        return raise_if_not_finite(out, model, mode.stages, mode.name)
    return out
