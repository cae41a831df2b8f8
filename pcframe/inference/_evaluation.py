"""Evaluation helpers: discriminative accuracy and generative inference of the input."""

from __future__ import annotations

from typing import Any

from ..core._batches import check_batches
from ..core._random import RKG, RandomKeyGenerator
from ..functional._jit import jit
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode
from ._energy import ACTIVITIES, forward, init_forward
from ._init import init_random
from ._metrics import accuracy
from ._strategy import AbstractInference


@jit(overwrites=ACTIVITIES)
def _predict(x: Any, *, model: EnergyModule) -> Any:
    model.eval()  # undone when tracing ends: the caller's model keeps its mode
    return init_forward(model, x)


@jit(overwrites=ACTIVITIES)
def _accuracy(x: Any, y: Any, *, model: EnergyModule) -> Any:
    model.eval()
    return accuracy(init_forward(model, x), y)


def predict(model: EnergyModule, x: Any) -> Any:
    """The feedforward prediction of a discriminative model for the batch `x` (compiled), in evaluation mode.

    The model is evaluated as after ``model.eval()`` (dropout off, `BatchNorm` with its running
    statistics, which the test batch does not change), and keeps its own mode.

    **Arguments:**

    - `model`: a discriminative `EnergyModule` following the engines' protocol.
    - `x`: the input batch.

    **Example:** ``logits = predict(model, x_test)``
    """
    check_batches("predict", x=x)
    return _predict(x, model=model)


def evaluate_accuracy(model: EnergyModule, x: Any, y: Any) -> Any:
    """Classification accuracy of the feedforward prediction: $\\frac1N\\sum_i[\\arg\\max\\hat y_i = \\arg\\max y_i]$.

    Evaluated as `predict` does (in evaluation mode). `y` is one-hot (or any scores whose $\\arg\\max$ is the class). A model with one output unit is
    refused (its $\\arg\\max$ is always 0): see `accuracy` for a binary accuracy.

    **Arguments:**

    - `model`: a discriminative `EnergyModule` following the engines' protocol.
    - `x`: the input batch.
    - `y`: one-hot targets.

    Prediction and comparison run in one compiled call (an eager comparison would compile each
    of its operations on first use).

    **Example:** ``acc = evaluate_accuracy(model, x_test, one_hot(y_test, 10))``
    """
    check_batches("evaluate_accuracy", x=x, y=y)
    return _accuracy(x, y, model=model)


@jit(static_argnums=1, overwrites=ACTIVITIES)
def _infer_from_random(
    y: Any, sigma: float, *, model: EnergyModule, node: Vode, rkg: RandomKeyGenerator, inference: AbstractInference
) -> tuple:
    init_random(model, None, y, sigma=sigma, rkg=rkg)
    inference.infer(model, None)
    return node.h.value, forward(model, None, None)


def infer_input(
    model: EnergyModule,
    y: Any,
    *,
    inference: AbstractInference,
    sigma: float = 0.05,
    rkg: RandomKeyGenerator = RKG,
    input_node: Vode | None = None,
) -> tuple[Any, Any]:
    """Generative inference: the input (latent) that best explains `y`, and the reconstruction of `y`.

    The model must have a free input node: `input_node`, by default ``model.input_vode``
    (``PCMLP(..., free_input=True)``).
    Activities start from $\\mathcal{N}(0, \\sigma^2)$, `y` is clamped at the output and
    `inference` minimises the energy; the reconstruction is the output prediction
    $u_L$ at the equilibrium.

    **Arguments:**

    - `model`: a model with a free input layer.
    - `y`: the data batch clamped at the output.
    - `inference`: an inference strategy (e.g. `ODEInference()`).
    - `sigma`: standard deviation of the random initial activities.
    - `rkg`: the key generator they are drawn from.
    - `input_node`: the free input `Vode` whose activities are returned.

    **Returns:** ``(inferred_inputs, reconstructions)``.

    **Example:** ``latents, images_hat = infer_input(decoder, images, inference=ODEInference())``
    """
    node = input_node if input_node is not None else getattr(model, "input_vode", None)
    if not isinstance(node, Vode) or getattr(node.h, "frozen", False):
        raise ValueError(
            "infer_input needs a model with a free input layer (e.g. PCMLP(..., free_input=True)) or the free "
            f"input node as input_node=...; {type(model).__name__} has none."
        )
    check_batches("infer_input", y=y)
    return _infer_from_random(y, float(sigma), model=model, node=node, rkg=rkg, inference=inference)
