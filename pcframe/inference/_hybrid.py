"""Hybrid predictive coding: an amortiser proposes the activities, the generator refines them.

From "Hybrid predictive coding: inferring, fast and slow": a bottom-up amortiser
network maps an observation to a guess $a_\\ell$ of every latent activity of a
top-down generative network; iterative inference on the generator starts from that
guess and reaches $z^*$; the generator learns at the equilibrium, and the amortiser
learns to predict the equilibrium from its own feedforward guesses, layer by layer
(the paper's code, and JPC's ``compute_hpc_param_grads``):

$$\\mathcal{F}_\\text{amort} = \\frac1N\\sum_i \\sum_\\ell \\tfrac12 \\lVert z^*_{\\ell,i} - g_\\ell(a_{\\ell-1,i}) \\rVert^2,
  \\qquad a_\\ell = g_\\ell(a_{\\ell-1}),\\; a_0 = \\text{observation}.$$

`AmortiserInputs.EQUILIBRIUM` trains it on the equilibrium instead,
$\\tfrac12\\lVert z^*_\\ell - g_\\ell(z^*_{\\ell-1})\\rVert^2$ (its nodes' own energies at $z^*$).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..functional._grad import value_and_grad
from ..functional._jit import jit
from ..functional._vmap import vmap
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode, VodeParam
from ..utils._mask import Mask
from ..utils._optim import Optim
from ..utils._step import step
from ._energy import BATCHED, batch_energy, init_forward, init_forward_energy, output_loss
from ._finite import REPORT, nonfinite_report, raise_if_not_finite
from ._gradients import value_grad_and_layers
from ._guard import all_finite, gradient_values, guarded_update
from ._metrics import Metrics, without_unasked
from ._strategy import AbstractInference
from ._training import (
    _STAGES,
    check_step_arguments,
    compiled_arguments,
    inference_metrics,
    optional_metrics,
    reset_activities,
)


class AmortiserInputs(enum.Enum):
    """What each amortiser layer sees as input when it learns to predict the equilibrium.

    - `OWN_GUESSES`: its own feedforward guess $a_{\\ell-1}$ (the paper's code, JPC).
    - `EQUILIBRIUM`: the generator's equilibrium $z^*_{\\ell-1}$.
    """

    OWN_GUESSES = "own guesses"
    EQUILIBRIUM = "equilibrium"


def default_pairs(generator: EnergyModule, amortiser: EnergyModule) -> tuple[list[Vode], list[Vode]]:
    """``(latents, guesses)`` for models with `PCMLP`'s layout (``vodes``, optional ``input_vode``).

    The generator's free nodes from its input side to its output side, and the
    amortiser's nodes that guess them (its nodes in reverse order).

    **Arguments:**

    - `generator`, `amortiser`: the two networks.

    **Returns:** two lists of `Vode`s, paired by position.

    **Example:** ``latents, guesses = default_pairs(generator, amortiser)``
    """
    if not (
        isinstance(getattr(generator, "vodes", None), list) and isinstance(getattr(amortiser, "vodes", None), list)
    ):
        raise TypeError(
            f"train_hybrid: pass latents=[...] and guesses=[...] (the generator's free nodes and the amortiser's "
            f"nodes guessing them) for {type(generator).__name__} / {type(amortiser).__name__}; only models with "
            "PCMLP's layout (a vodes list) have default pairs."
        )
    latents = ([generator.input_vode] if getattr(generator, "free_input", False) else []) + generator.vodes[:-1]
    return latents, list(reversed(amortiser.vodes))[: len(latents)]


def _positions(model: EnergyModule, nodes: Sequence[Vode], role: str) -> tuple[int, ...]:
    order = {id(v): i for i, v in enumerate(model.iter_vodes())}
    missing = [v for v in nodes if id(v) not in order]
    if missing:
        raise ValueError(f"train_hybrid: {len(missing)} of the {role} nodes are not nodes of {type(model).__name__}.")
    return tuple(order[id(v)] for v in nodes)


def _amortiser_grads(amortiser: EnergyModule, y: Any, targets: list[Any]) -> tuple[Any, Any]:
    """$\\mathcal{F}_\\text{amort}$ with the amortiser's feedforward guesses as inputs, and its weight gradient."""

    @vmap(BATCHED, in_axes=(0, 0), out_axes=None, axis_name="batch")
    def loss(y: Any, targets: list[Any], *, model: EnergyModule) -> Any:
        model(y, None)
        errors = [0.5 * jnp.sum((t - v.get("u")) ** 2) for t, v in zip(targets, model.iter_vodes())]
        return jax.lax.pmean(sum(errors), "batch")

    with step(amortiser, clear_params=VodeParam.Cache):
        value, grads = value_and_grad(Mask(LayerParam, (False, True)))(loss)(y, targets, model=amortiser)
    return value, grads["model"]


@jit(static_argnums=0)
def _hybrid_step(
    config: Any,
    hyper: Any,
    y: Any,
    x: Any,
    *,
    generator: EnergyModule,
    amortiser: EnergyModule,
    optim_g: Optim,
    optim_a: Optim,
) -> dict:
    step_config, latents_at, guesses_at, inputs = config
    inference = step_config.strategy(hyper)
    init_forward(amortiser, y, x)
    amortiser_nodes, generator_nodes = list(amortiser.iter_vodes()), list(generator.iter_vodes())
    guesses = [amortiser_nodes[i].h.value for i in guesses_at]
    _, feedforward = init_forward_energy(generator, x, y)
    for i, guess in zip(latents_at, guesses):
        generator_nodes[i].h.value = guess
    _, amortised = batch_energy(generator, x)
    stats = inference.infer(generator, x)
    energy, per_layer, grads_g = value_grad_and_layers(generator, x, LayerParam)
    targets = {j: generator_nodes[i].h.value for i, j in zip(latents_at, guesses_at)}
    if inputs is AmortiserInputs.OWN_GUESSES:
        amortiser_energy, grads_a = _amortiser_grads(
            amortiser, y, [targets.get(j, node.h.value) for j, node in enumerate(amortiser_nodes)]
        )
    else:
        for j, target in targets.items():
            amortiser_nodes[j].h.value = target
        amortiser_energy, _, grads_a = value_grad_and_layers(amortiser, y, LayerParam)
    flat_g, flat_a = gradient_values(grads_g), gradient_values(grads_a)
    finite = all_finite(energy, amortiser_energy, flat_g, flat_a)
    report = nonfinite_report(generator, [feedforward, per_layer], grads_g) if step_config.check_finite else None
    finite = guarded_update([(optim_g, generator, grads_g), (optim_a, amortiser, grads_a)], finite)
    out = {
        "loss": output_loss(generator, feedforward),
        "amortised_energy": sum(amortised),
        "energy": energy,
        "energies": per_layer,
        "amortiser_energy": amortiser_energy,
        "finite": finite,
        **inference_metrics(stats),
    }
    out.update(optional_metrics(step_config.metrics, generator, optim_g, flat_g))
    if report is not None:
        out[REPORT] = report
    return without_unasked(out, step_config.metrics)


def check_pair(generator: Any, amortiser: Any, latents: Sequence[Vode], guesses: Sequence[Vode]) -> None:
    """Each guess node must have its latent's shape, and there must be as many of each."""
    if not isinstance(amortiser, EnergyModule):
        raise TypeError(f"train_hybrid: amortiser must be a pcframe.pc.EnergyModule, got {type(amortiser).__name__}.")
    if len(latents) != len(guesses):
        raise ValueError(f"train_hybrid: {len(latents)} latent nodes but {len(guesses)} guesses; pair them one to one.")
    for i, (latent, guess) in enumerate(zip(latents, guesses)):
        if latent.shape != guess.shape:
            raise ValueError(
                f"train_hybrid: the amortiser's sizes must be the generator's reversed: latent {i} has shape "
                f"{latent.shape} but its guess has shape {guess.shape}."
            )


def train_hybrid(
    generator: EnergyModule,
    amortiser: EnergyModule,
    optim_g: Optim,
    optim_a: Optim,
    y: Any,
    x: Any = None,
    *,
    inference: AbstractInference,
    metrics: Metrics = Metrics(),
    latents: Sequence[Vode] | None = None,
    guesses: Sequence[Vode] | None = None,
    amortiser_inputs: AmortiserInputs = AmortiserInputs.OWN_GUESSES,
    check_finite: bool = False,
) -> dict[str, Any]:
    """One hybrid PC step: amortised initialisation, generator inference, both networks learn.

    **Arguments:**

    - `generator`: top-down model predicting the observation at its output; its input is
      free (e.g. ``PCMLP(..., free_input=True)``) unless a prior `x` is given.
    - `amortiser`: bottom-up model from the observation to the latents (its output clamped to `x`, if given).
    - `optim_g`, `optim_a`: weight optimisers of the two networks.
    - `y`: the observation batch (generator output, amortiser input).
    - `x`: optional prior / label batch (generator input, amortiser target).
    - `inference`: the generator's inference strategy.
    - `metrics`: optional metrics (of the generator).
    - `latents`, `guesses`: the generator's free nodes and the amortiser's nodes guessing
      them, paired by position (default: `default_pairs`, for `PCMLP`-like models).
    - `amortiser_inputs`: what the amortiser learns from (`AmortiserInputs`).
    - `check_finite`: raise `FloatingPointError` naming the first generator node whose energy (or
      parameter whose gradient) is NaN/inf, as in `train_supervised`.

    **Returns:** a dict with ``loss`` (generator output energy after a feedforward pass
    from its input), ``amortised_energy`` (generator energy at the amortiser's guess),
    ``energy`` / ``energies`` (after inference), ``amortiser_energy``, ``steps``, ``finite``
    and the optional metrics.

    **Example:**

    ```python
    generator = PCMLP([10, 64, 784], free_input=True)
    amortiser = PCMLP([784, 64, 10])
    out = train_hybrid(generator, amortiser, optim_g, optim_a, images, inference=ODEInference())
    ```
    """
    check_step_arguments(generator, {"optim_g": optim_g, "optim_a": optim_a}, inference, metrics)
    if y is None:
        raise ValueError("train_hybrid needs the observation batch y.")
    if not isinstance(amortiser_inputs, AmortiserInputs):
        raise TypeError(f"amortiser_inputs must be an AmortiserInputs, got {amortiser_inputs!r}.")
    if hasattr(generator, "free_input") and (x is None) != generator.free_input:
        raise ValueError(
            "train_hybrid: without a prior x the generator's input must be free (PCMLP(..., free_input=True)); "
            "with x given, build the generator with free_input=False."
        )
    if latents is None or guesses is None:
        latents, guesses = default_pairs(generator, amortiser)
    check_pair(generator, amortiser, latents, guesses)
    step_config, hyper = compiled_arguments(inference, metrics=metrics, check_finite=bool(check_finite))
    config = (
        step_config,
        _positions(generator, latents, "latent"),
        _positions(amortiser, guesses, "guess"),
        amortiser_inputs,
    )
    reset_activities(generator, amortiser)
    out = _hybrid_step(config, hyper, y, x, generator=generator, amortiser=amortiser, optim_g=optim_g, optim_a=optim_a)
    return raise_if_not_finite(out, generator, _STAGES, "train_hybrid") if check_finite else out
