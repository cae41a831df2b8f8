"""Evaluation helpers: discriminative accuracy and generative inference of the input."""

from __future__ import annotations

from typing import Any

from ..core._random import RKG, RandomKeyGenerator
from ..functional._jit import jit
from ..pc._energy_module import EnergyModule
from ..pc._vode import VodeParam
from ._continuous import ODEInference
from ._discrete import DiscreteInference
from ._energy import forward, init_forward
from ._init import init_random
from ._metrics import accuracy


@jit()
def _predict(x: Any, *, model: EnergyModule) -> Any:
    model.clear_params(VodeParam)
    return init_forward(model, x)


def predict(model: EnergyModule, x: Any) -> Any:
    """The feedforward prediction of a discriminative model for the batch `x` (compiled).

    **Arguments:**

    - `model`: a discriminative `EnergyModule` following the engines' protocol.
    - `x`: the input batch.

    **Example:** ``logits = predict(model, x_test)``
    """
    return _predict(x, model=model)


def evaluate_accuracy(model: EnergyModule, x: Any, y: Any) -> Any:
    """Classification accuracy of the feedforward prediction: $\\frac1N\\sum_i[\\arg\\max\\hat y_i = \\arg\\max y_i]$.

    `y` is one-hot (or any scores whose $\\arg\\max$ is the class).

    **Arguments:**

    - `model`: a discriminative `EnergyModule` following the engines' protocol.
    - `x`: the input batch.
    - `y`: one-hot targets.

    **Example:** ``acc = evaluate_accuracy(model, x_test, one_hot(y_test, 10))``
    """
    return accuracy(predict(model, x), y)


@jit(static_argnums=(0, 2))
def _infer_input(inference: Any, y: Any, sigma: float, *, model: EnergyModule, rkg: RandomKeyGenerator) -> tuple:
    model.clear_params(VodeParam)
    init_random(model, None, y, sigma=sigma, rkg=rkg)
    inference.run(model, None)
    return model.input_vode.h.value, forward(model, None, None)


def infer_input(
    model: EnergyModule,
    y: Any,
    *,
    inference: DiscreteInference | ODEInference,
    sigma: float = 0.05,
    rkg: RandomKeyGenerator = RKG,
) -> tuple[Any, Any]:
    """Generative inference: the input (latent) that best explains `y`, and the reconstruction of `y`.

    The model must have a free input layer (``PCMLP(..., free_input=True)``).
    Activities start from $\\mathcal{N}(0, \\sigma^2)$, `y` is clamped at the output and
    `inference` minimises the energy; the reconstruction is the output prediction
    $u_L$ at the equilibrium.

    **Arguments:**

    - `model`: a model with a free input layer.
    - `y`: the data batch clamped at the output.
    - `inference`: `DiscreteInference(...)` or `ODEInference(...)`.
    - `sigma`: standard deviation of the random initial activities.
    - `rkg`: the key generator they are drawn from.

    **Returns:** ``(inferred_inputs, reconstructions)``.

    **Example:** ``latents, images_hat = infer_input(decoder, images, inference=ODEInference())``
    """
    if not getattr(model, "free_input", False):
        raise ValueError(
            "infer_input needs a model with a free input layer (e.g. PCMLP(..., free_input=True)); "
            f"{type(model).__name__} has none."
        )
    return _infer_input(inference, y, float(sigma), model=model, rkg=rkg)
