"""Hybrid predictive coding: an amortiser proposes the activities, the generator refines them.

From "Hybrid predictive coding: inferring, fast and slow": a bottom-up amortiser
network maps an observation to a guess of every latent activity of a top-down
generative network; iterative inference on the generator starts from that guess
and reaches $z^*$; the generator learns at the equilibrium, and the amortiser
learns to predict the equilibrium from its own feedforward guesses, layer by layer
(the paper's code, and JPC's ``hpc_energy_fn`` / ``compute_hpc_param_grads``,
constant included):

$$\\mathcal{F}_\\text{amort} = \\frac1N\\sum_i \\sum_{k=1}^{K} \\lVert t_{k,i} - g_k(a_{k-1,i}) \\rVert^2,
  \\qquad a_k = g_k(a_{k-1}),\\; a_0 = \\text{observation},$$

where $g_k$ is the amortiser's layer $k$ and its node $k$'s target $t_k$ is the
equilibrium $z^*$ of the latent that node guesses, the prior $x$ for its clamped
output node when one is given (an amortiser node that guesses no latent is its
own target: no error). As in JPC it is a plain squared error, without the
$\\tfrac12$ of the PC energy, on every node, the output included, whatever its
energy function: its gradient is twice that of $\\sum_k \\tfrac12\\lVert\\cdot\\rVert^2$.

`AmortiserInputs.EQUILIBRIUM` trains it on the equilibrium instead, with the
amortiser's own PC energy there (its nodes' energy functions, and its
regularisers, if any):

$$\\mathcal{F}_\\text{eq} = \\frac1N\\sum_i \\sum_{k=1}^{K} E_k\\big(t_{k,i},\\, g_k(t_{k-1,i})\\big),
  \\qquad t_0 = \\text{observation},$$

$E_k = \\tfrac12\\lVert t_k - g_k(t_{k-1})\\rVert^2$ on squared-error nodes: half the
scale of $\\mathcal{F}_\\text{amort}$ for the same errors (double the amortiser's
SGD learning rate to learn at JPC's rate); a `ce_energy` output node contributes
its cross-entropy.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from ..functional._grad import value_and_grad
from ..functional._vmap import vmap
from ..inference._energy import BATCHED, batch_energy, init_forward, init_forward_energy, output_loss
from ..inference._gradients import value_grad_and_layers
from ..inference._metrics import Metrics, inference_metrics
from ..inference._strategy import AbstractInference
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode, VodeParam
from ..utils._mask import Mask
from ..utils._optim import Optim
from ..utils._step import step
from ._step import Learned, TrainingMode, train_step


class AmortiserInputs(enum.Enum):
    """What each amortiser layer sees as input when it learns to predict the equilibrium.

    - `OWN_GUESSES`: its own feedforward guess $a_{k-1}$ (the paper's code, JPC), learning
      JPC's $\\mathcal{F}_\\text{amort} = \\frac1N\\sum_i\\sum_k \\lVert t_{k,i} - g_k(a_{k-1,i})\\rVert^2$
      (no $\\tfrac12$: JPC's gradient).
    - `EQUILIBRIUM`: the equilibrium $t_{k-1}$, learning the amortiser's own PC energy there,
      $\\frac1N\\sum_i\\sum_k E_k(t_{k,i}, g_k(t_{k-1,i}))$ ($\\tfrac12\\lVert\\cdot\\rVert^2$ on
      squared-error nodes: half the gradient of `OWN_GUESSES` for the same errors).

    The target $t_k$ of amortiser node $k$ is the equilibrium of the latent it guesses (the prior $x$ at its
    clamped output node, when given), $t_0$ the observation.
    """

    OWN_GUESSES = "own guesses"
    EQUILIBRIUM = "equilibrium"


def default_pairs(generator: EnergyModule, amortiser: EnergyModule) -> tuple[list[Vode], list[Vode]]:
    """``(latents, guesses)`` for models with `PCMLP`'s layout (a ``vodes`` list, output node last).

    The amortiser runs the generator backwards: built with the generator's sizes
    reversed, it maps the observation to the generator's input, so its hidden nodes,
    from the output side, guess the generator's hidden nodes from the input side.
    Which nodes are latents follows the generator's declared ``free_input``:

    - ``free_input=False`` (a prior `x`; always so for `ResidualPCMLP`): the latents are
      the generator's hidden nodes ``vodes[:-1]``, guessed by the amortiser's hidden nodes
      in reverse order, ``amortiser.vodes[-2::-1]``; the amortiser's output node is
      clamped to the prior and guesses nothing.
    - ``free_input=True``: the generator's input node is a latent too, guessed by the
      amortiser's output node: latents ``[input_vode, *vodes[:-1]]``, guesses
      ``amortiser.vodes[::-1]``.

    E.g. generator ``PCMLP([4, 10, 12, 6])`` with amortiser ``PCMLP([6, 12, 10, 4])``.

    **Arguments:**

    - `generator`, `amortiser`: the two networks.

    **Returns:** two lists of `Vode`s, paired by position.

    **Example:** ``latents, guesses = default_pairs(generator, amortiser)``
    """
    names = f"{type(generator).__name__} / {type(amortiser).__name__}"
    free_input = bool(getattr(generator, "free_input", False))
    if not (
        isinstance(getattr(generator, "vodes", None), list)
        and isinstance(getattr(amortiser, "vodes", None), list)
        and (not free_input or isinstance(getattr(generator, "input_vode", None), Vode))
    ):
        raise TypeError(
            f"train_hybrid: pass latents=[...] and guesses=[...] (the generator's free nodes and the amortiser's "
            f"nodes guessing them) for {names}; only models with PCMLP's layout (a vodes list, and an input_vode "
            "when free_input=True) have default pairs."
        )
    if len(generator.vodes) != len(amortiser.vodes):
        raise ValueError(
            f"train_hybrid: the generator {type(generator).__name__} has {len(generator.vodes)} nodes but the "
            f"amortiser {type(amortiser).__name__} has {len(amortiser.vodes)}; default pairs need an amortiser "
            "with the generator's sizes reversed (e.g. PCMLP([6, 12, 10, 4]) for PCMLP([4, 10, 12, 6])), "
            "otherwise pass latents=[...] and guesses=[...]."
        )
    if free_input:
        return [generator.input_vode, *generator.vodes[:-1]], amortiser.vodes[::-1]
    return generator.vodes[:-1], amortiser.vodes[-2::-1]


def _positions(model: EnergyModule, nodes: Sequence[Vode], role: str) -> tuple[int, ...]:
    order = {id(v): i for i, v in enumerate(model.iter_vodes())}
    missing = [v for v in nodes if id(v) not in order]
    if missing:
        raise ValueError(f"train_hybrid: {len(missing)} of the {role} nodes are not nodes of {type(model).__name__}.")
    return tuple(order[id(v)] for v in nodes)


def _amortiser_grads(amortiser: EnergyModule, y: Any, targets: list[Any]) -> tuple[Any, Any]:
    """$\\mathcal{F}_\\text{amort}$ (JPC's: no $\\tfrac12$) at the amortiser's feedforward guesses, and its gradient."""

    @vmap(BATCHED, in_axes=(0, 0), out_axes=None, axis_name="batch")
    def loss(y: Any, targets: list[Any], *, model: EnergyModule) -> Any:
        model(y, None)
        errors = [jnp.sum((t - v.get("u")) ** 2) for t, v in zip(targets, model.iter_vodes())]
        return jax.lax.pmean(sum(errors), "batch")

    with step(amortiser, clear_params=VodeParam.Cache):
        value, grads = value_and_grad(Mask(LayerParam, (False, True)))(loss)(y, targets, model=amortiser)
    return value, grads["model"]


@dataclasses.dataclass(frozen=True)
class Hybrid(TrainingMode):
    """Amortised initialisation, generator inference, both networks learn (see the module docstring).

    **Arguments:**

    - `latents`: positions (in ``generator.iter_vodes()``) of the generator's nodes the amortiser guesses.
    - `guesses`: positions (in ``amortiser.iter_vodes()``) of the amortiser's nodes guessing them, paired by order.
    - `amortiser_inputs`: what the amortiser learns from (`AmortiserInputs`).
    - `metrics`, `check_finite`: see `TrainingMode` (metrics and report of the generator).
    """

    latents: tuple[int, ...] = ()
    guesses: tuple[int, ...] = ()
    amortiser_inputs: AmortiserInputs = AmortiserInputs.OWN_GUESSES

    name: ClassVar[str] = "train_hybrid"

    def learn(
        self,
        inference: AbstractInference,
        x: Any,
        y: Any,
        *,
        generator: EnergyModule,
        amortiser: EnergyModule,
        optim_g: Optim,
        optim_a: Optim,
    ) -> Learned:
        """The amortiser's guess, generator inference from it, one step of each network."""
        init_forward(amortiser, y, x)
        amortiser_nodes, generator_nodes = list(amortiser.iter_vodes()), list(generator.iter_vodes())
        guesses = [amortiser_nodes[i].h.value for i in self.guesses]
        _, feedforward = init_forward_energy(generator, x, y)
        for i, guess in zip(self.latents, guesses):
            generator_nodes[i].h.value = guess
        _, amortised = batch_energy(generator, x)
        stats = inference.infer(generator, x)
        energy, per_layer, grads_g = value_grad_and_layers(generator, x, LayerParam)
        targets = {j: generator_nodes[i].h.value for i, j in zip(self.latents, self.guesses)}
        if self.amortiser_inputs is AmortiserInputs.OWN_GUESSES:
            amortiser_energy, grads_a = _amortiser_grads(
                amortiser, y, [targets.get(j, node.h.value) for j, node in enumerate(amortiser_nodes)]
            )
        else:
            for j, target in targets.items():
                amortiser_nodes[j].h.value = target
            amortiser_energy, _, grads_a = value_grad_and_layers(amortiser, y, LayerParam)
        optim_g.step(generator, grads_g)
        optim_a.step(amortiser, grads_a)
        metrics = {
            "loss": output_loss(generator, feedforward),
            "amortised_energy": sum(amortised),
            "energy": energy,
            "energies": per_layer,
            "amortiser_energy": amortiser_energy,
            **inference_metrics(stats),
        }
        finite = [energy, amortiser_energy, grads_g, grads_a]
        return Learned(metrics, finite, generator, optim_g, grads_g, (generator, [feedforward, per_layer], grads_g))


def check_pair(generator: Any, amortiser: Any, latents: Sequence[Vode], guesses: Sequence[Vode]) -> None:
    """Each guess node must have its latent's shape, and there must be as many of each."""
    if not isinstance(amortiser, EnergyModule):
        raise TypeError(f"train_hybrid: amortiser must be a pcframe.pc.EnergyModule, got {type(amortiser).__name__}.")
    if len(latents) != len(guesses):
        raise ValueError(f"train_hybrid: {len(latents)} latent nodes but {len(guesses)} guesses; pair them one to one.")
    for i, (latent, guess) in enumerate(zip(latents, guesses)):
        if latent.shape != guess.shape:
            raise ValueError(
                f"train_hybrid: the amortiser's sizes must be the generator's reversed: latent {i} of the generator "
                f"{type(generator).__name__} has shape {latent.shape} but its guess, a node of the amortiser "
                f"{type(amortiser).__name__}, has shape {guess.shape}."
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
    mode = Hybrid(
        metrics,
        bool(check_finite),
        _positions(generator, latents, "latent"),
        _positions(amortiser, guesses, "guess"),
        amortiser_inputs,
    )
    return train_step(
        mode, x, y, inference=inference, generator=generator, amortiser=amortiser, optim_g=optim_g, optim_a=optim_a
    )
