"""Hybrid predictive coding: an amortiser proposes the activities, the generator refines them.

From "Hybrid predictive coding: inferring, fast and slow": a bottom-up amortiser
network maps an observation to a guess of every latent activity of a top-down
generative network; iterative inference on the generator starts from that guess;
the generator learns at the equilibrium, and the amortiser learns to predict the
equilibrium directly, layer by layer:

$$\\mathcal{F}_\\text{amort} = \\frac1N\\sum_i \\sum_\\ell \\tfrac12 \\lVert z^*_{\\ell,i} - g_\\ell(z^*_{\\ell+1,i}) \\rVert^2.$$
"""

from __future__ import annotations

from typing import Any

from ..functional._jit import jit
from ..models._mlp import PCMLP
from ..nn._layer import LayerParam
from ..pc._vode import Vode
from ..utils._optim import Optim
from ._continuous import ODEInference
from ._discrete import DiscreteInference
from ._energy import batch_energy, init_forward, init_forward_energy, output_loss
from ._gradients import value_grad_and_layers
from ._metrics import Metrics
from ._training import StepConfig, all_finite, check_step_arguments, gradient_values, update_if_finite


def _generator_latents(generator: PCMLP) -> list[Vode]:
    """The generator's free nodes from its input side to its output side."""
    return ([generator.input_vode] if generator.free_input else []) + list(generator.vodes[:-1])


def check_pair(generator: Any, amortiser: Any, x: Any) -> None:
    """The amortiser must mirror the generator: sizes reversed, its output the generator's input."""
    for name, model in (("generator", generator), ("amortiser", amortiser)):
        if not isinstance(model, PCMLP):
            raise TypeError(f"train_hybrid: {name} must be a pcframe.models.PCMLP, got {type(model).__name__}.")
    if tuple(reversed(generator.sizes)) != amortiser.sizes:
        raise ValueError(
            f"train_hybrid: the amortiser's sizes must be the generator's reversed: generator {generator.sizes} "
            f"needs amortiser {tuple(reversed(generator.sizes))}, got {amortiser.sizes}."
        )
    if (x is None) != generator.free_input:
        raise ValueError(
            "train_hybrid: without a prior x the generator's input must be free (PCMLP(..., free_input=True)); "
            "with x given, build the generator with free_input=False."
        )


@jit(static_argnums=0)
def _hybrid_step(
    config: StepConfig, y: Any, x: Any, *, generator: PCMLP, amortiser: PCMLP, optim_g: Optim, optim_a: Optim
) -> dict:
    init_forward(amortiser, y, x)
    guesses = [vode.h.value for vode in amortiser.vodes]
    _, feedforward = init_forward_energy(generator, x, y)
    latents = _generator_latents(generator)
    for node, guess in zip(reversed(latents), guesses):
        node.h.value = guess
    _, amortised = batch_energy(generator, x)
    stats = config.inference.run(generator, x)
    energy, per_layer, grads_g = value_grad_and_layers(generator, x, LayerParam)
    for node, vode in zip(reversed(latents), amortiser.vodes):
        vode.h.value = node.h.value
    amortiser_energy, _, grads_a = value_grad_and_layers(amortiser, y, LayerParam)
    finite = all_finite(energy, amortiser_energy, gradient_values(grads_g), gradient_values(grads_a))
    update_if_finite(optim_g, generator, grads_g, finite)
    update_if_finite(optim_a, amortiser, grads_a, finite)
    return {
        "loss": output_loss(generator, feedforward),
        "amortised_energy": sum(amortised),
        "energy": energy,
        "energies": per_layer,
        "amortiser_energy": amortiser_energy,
        "finite": finite,
        **stats,
    }


def train_hybrid(
    generator: PCMLP,
    amortiser: PCMLP,
    optim_g: Optim,
    optim_a: Optim,
    y: Any,
    x: Any = None,
    *,
    inference: DiscreteInference | ODEInference,
    metrics: Metrics = Metrics(),
) -> dict[str, Any]:
    """One hybrid PC step: amortised initialisation, generator inference, both networks learn.

    **Arguments:**

    - `generator`: top-down `PCMLP` ``[d_0, ..., d_L]`` predicting the observation at its output;
      its input is free (``free_input=True``) unless a prior `x` is given.
    - `amortiser`: bottom-up `PCMLP` ``[d_L, ..., d_0]`` from the observation to the latents.
    - `optim_g`, `optim_a`: weight optimisers of the two networks.
    - `y`: the observation batch (generator output, amortiser input).
    - `x`: optional prior / label batch (generator input, amortiser target).
    - `inference`: the generator's inference engine.

    **Returns:** a dict with ``loss`` (generator output energy after a feedforward pass
    from its input), ``amortised_energy`` (generator energy at the amortiser's guess),
    ``energy`` / ``energies`` (after inference), ``amortiser_energy``, ``steps``, ``finite``.

    **Example:**

    ```python
    generator = PCMLP([10, 64, 784], free_input=True)
    amortiser = PCMLP([784, 64, 10])
    out = train_hybrid(generator, amortiser, optim_g, optim_a, images, inference=ODEInference())
    ```
    """
    check_step_arguments(generator, {"optim_g": optim_g, "optim_a": optim_a}, inference, metrics)
    check_pair(generator, amortiser, x)
    if y is None:
        raise ValueError("train_hybrid needs the observation batch y.")
    config = StepConfig(inference, metrics)
    return _hybrid_step(config, y, x, generator=generator, amortiser=amortiser, optim_g=optim_g, optim_a=optim_a)
