"""Samples of a trained generative PC model: a Langevin chain with every node free, the data node included."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ..core._random import RKG, RandomKeyGenerator
from ..pc._energy_module import EnergyModule
from ._energy import output_vodes
from ._evaluation import _infer_from_random
from ._strategy import AbstractInference


def sample(
    model: EnergyModule,
    n: int,
    *,
    inference: AbstractInference,
    sigma: float = 0.05,
    rkg: RandomKeyGenerator = RKG,
) -> tuple[Any, Any]:
    """Draw `n` samples of a generative model's joint density $\\propto \\exp(-\\beta\\mathcal F)$ by Langevin.

    The output node is unclamped for the call (every activity free, the data node included), the
    activities start from $\\mathcal N(0, \\sigma^2)$ drawn from `rkg`, and `inference` (a
    `LangevinInference` or `LangevinSDEInference`) runs its chain on all of them. The model needs a
    proper prior on its top node (an energy on it, e.g. a node predicting $u = 0$ with `se_energy`:
    $p(z_0) = \\mathcal N(0, I)$); a free input with `zero_energy` (``PCMLP(free_input=True)``) has a
    flat prior, and the chain then drifts instead of sampling.

    **Arguments:**

    - `model`: a generative `EnergyModule` (``model(None, y)``) with one clamped output node.
    - `n`: number of samples (independent chains, one per batch row).
    - `inference`: the sampler (its `steps` are the chain's length; use enough to forget the start).
    - `sigma`: standard deviation of the initial activities.
    - `rkg`: the key generator of the initial activities (the chain's noise comes from `RKG`).

    **Returns:** ``(samples, means)``: the output node's activities (samples of the data $x$, model
    noise included) and the output predictions $u_L$ at the final activities (the mean of
    $p(x \\mid \\text{parents})$, usually the clearer picture).

    **Example:** ``images, means = sample(model, 16, inference=LangevinInference(step_size=0.02, steps=500))``
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sample: n must be a positive int, got {n!r}.")
    if not isinstance(inference, AbstractInference):
        raise TypeError(
            f"sample: inference must be an AbstractInference such as LangevinInference(), got {inference!r}."
        )
    outputs = output_vodes(model)
    if len(outputs) != 1:
        raise ValueError(
            f"sample: the model must have exactly one clamped output node, {type(model).__name__} has {len(outputs)}."
        )
    node = outputs[0]
    y0 = jnp.zeros((n, *node.shape))
    node.h.frozen = False  # a static change, made outside the compiled call and undone after it
    try:
        return _infer_from_random(y0, float(sigma), model=model, node=node, rkg=rkg, inference=inference)
    finally:
        node.h.frozen = True
