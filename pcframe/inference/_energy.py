"""The batch energy of a model, per layer, and as a pure function of chosen parameters.

Every engine in `pcframe.inference` uses models through one protocol: the model
is an `EnergyModule` whose ``model(x, y)`` runs *one sample* (the engines
`vmap` it), with `x` the input (`None` when the input layer is free) and `y`,
when given, clamped at the output node. The free activities are its
`VodeParam`s not marked ``frozen=True``. The energy of a batch of $N$ samples is

$$\\mathcal{F} = \\frac{1}{N} \\sum_{i=1}^{N} \\sum_\\ell E_\\ell(z_{\\ell,i}, u_{\\ell,i}),$$

the batch mean, as in the JPC documentation ("JPC from scratch"). A model's
regularisers (``model.regularisers``, see `pcframe.pc.WeightDecay`) add their terms
to every sample's energy; the per-layer energies stay the nodes' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import Param
from ..core._random import RKG
from ..core._state import merge, split
from ..functional._vmap import vmap
from ..nn._batchnorm import BatchStat
from ..pc._energy_module import EnergyModule, with_regularisation
from ..pc._status import STATUS
from ..pc._vode import VodeParam
from ..utils._mask import Mask, as_predicate, m
from ..utils._step import step

ACTIVITIES = VodeParam | VodeParam.Cache | BatchStat
"""The per-batch state: activities, caches and batch statistics (what a feedforward pass or a random start sets)."""

BATCHED = Mask(VodeParam | VodeParam.Cache, (None, 0))
"""The vmap mask of the engines: activities and caches batched along axis 0, everything else (batch statistics
included) shared."""

FREE = m(VodeParam).has_not(frozen=True)
"""The free activities: `VodeParam`s not marked ``frozen=True``."""


@vmap(BATCHED, in_axes=(0, 0), out_axes=0, axis_name="batch")
def _forward(x: Any, y: Any, *, model: EnergyModule) -> Any:
    return model(x, y)


@vmap(BATCHED, in_axes=(0, 0), out_axes=(None, (None, 0)), axis_name="batch")
def _batch_energy(x: Any, y: Any, *, model: EnergyModule) -> tuple[Any, tuple[Any, Any]]:
    out = model(x, y)
    per_layer = jnp.stack([jnp.sum(e) for e in model.energies()])
    total = with_regularisation(model, jnp.sum(per_layer))
    return jax.lax.pmean(total, "batch"), (jax.lax.pmean(per_layer, "batch"), out)


@vmap(BATCHED, in_axes=(0, 0), out_axes=(0, None), axis_name="batch")
def _forward_loss(x: Any, y: Any, *, model: EnergyModule) -> tuple[Any, Any]:
    out = model(x, y)
    return out, jax.lax.pmean(sum(jnp.sum(vode.energy()) for vode in output_vodes(model)), "batch")


@vmap(BATCHED, in_axes=(0, 0), out_axes=(0, None), axis_name="batch")
def _sample_energies(x: Any, y: Any, *, model: EnergyModule) -> tuple[Any, Any]:
    model(x, y)
    per_layer = jnp.stack([jnp.sum(e) for e in model.energies()])
    return with_regularisation(model, jnp.sum(per_layer)), jax.lax.pmean(per_layer, "batch")


def output_vodes(model: EnergyModule) -> list[Any]:
    """The clamped (``h.frozen = True``) nodes of a model: its outputs.

    **Arguments:**

    - `model`: an `EnergyModule`.
    """
    outputs = [v for v in model.iter_vodes() if v.h.__dict__.get("frozen", False)]
    if not outputs:
        raise ValueError(f"{type(model).__name__} has no clamped output node; mark it with vode.h.frozen = True.")
    return outputs


def output_loss(model: EnergyModule, per_layer: Any) -> Any:
    """The energy of the output nodes, picked from `per_layer` (ordered as `EnergyModule.iter_vodes`).

    **Arguments:**

    - `model`: the model the energies come from.
    - `per_layer`: per-node energies, as returned by `batch_energy`.
    """
    outputs = {id(v) for v in output_vodes(model)}
    return sum(e for v, e in zip(model.iter_vodes(), per_layer) if id(v) in outputs)


def forward(model: EnergyModule, x: Any = None, y: Any = None, status: Any = None) -> Any:
    """Run ``model(x, y)`` on a batch (under `status`, caches cleared around it); returns the outputs.

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol.
    - `x`: the input batch (`None` for a free input layer).
    - `y`: a target to clamp at the output, if any.
    - `status`: the status the nodes see (e.g. `STATUS.INIT`).

    **Example:** ``predictions = forward(model, x)``
    """
    with step(model, status, clear_params=VodeParam.Cache):
        return _forward(x, y, model=model)


def init_forward(model: EnergyModule, x: Any = None, y: Any = None) -> Any:
    """Feedforward initialisation: every node's activity is set to its prediction ($z_\\ell = u_\\ell$).

    Runs the batch under `STATUS.INIT`; `y` (if given) is then clamped at the output.
    Earlier activities (of any batch size) are discarded first.

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol.
    - `x`: the input batch (`None` for a free input layer).
    - `y`: a target to clamp at the output, if any.

    **Returns:** the outputs $u_L$ of the feedforward pass.

    **Example:** ``init_forward(model, x, y)``
    """
    model.clear_params(VodeParam)
    return forward(model, x, y, STATUS.INIT)


def init_forward_energy(model: EnergyModule, x: Any = None, y: Any = None) -> tuple[Any, Any]:
    """`init_forward`'s feedforward initialisation and the per-layer energies right after it, from one pass.

    Unlike `init_forward` it does not clear the activities first: inside a compiled step they
    enter a compiled step as `None` (declared with ``jit(overwrites=...)``), so the batch size may change.

    **Returns:** ``(predictions, per_layer)``, as from `init_forward` and `batch_energy`.
    """
    with step(model, STATUS.INIT, clear_params=VodeParam.Cache):
        _, (per_layer, predictions) = _batch_energy(x, y, model=model)
    return predictions, per_layer


def init_forward_loss(model: EnergyModule, x: Any = None, y: Any = None) -> tuple[Any, Any]:
    """`init_forward` and the energy of the output nodes right after it (the feedforward loss), in one pass.

    Only the output nodes' energies are computed: that is all the loss needs.

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol.
    - `x`: the input batch (`None` for a free input layer).
    - `y`: the target clamped at the output.

    **Returns:** ``(predictions, loss)``, the loss a batch mean as `output_loss` gives it.

    **Example:** ``predictions, loss = init_forward_loss(model, x, y)``
    """
    with step(model, STATUS.INIT, clear_params=VodeParam.Cache):
        return _forward_loss(x, y, model=model)


def batch_energy(model: EnergyModule, x: Any = None, y: Any = None) -> tuple[Any, Any]:
    """The batch energy $\\mathcal{F}$ at the current activities, and its per-layer terms.

    **Arguments:**

    - `model`: an `EnergyModule` whose activities are initialised.
    - `x`: the input batch (`None` for a free input layer).
    - `y`: a target to clamp at the output, if any.

    **Returns:** ``(F, per_layer)`` with ``per_layer[l]`` the batch mean of node $l$'s
    energy, in the order of `EnergyModule.iter_vodes`.

    **Example:** ``F, per_layer = batch_energy(model, x)``
    """
    with step(model, clear_params=VodeParam.Cache):
        total, (per_layer, _) = _batch_energy(x, y, model=model)
    return total, per_layer


def _step_sample_energies(model: EnergyModule, x: Any) -> tuple[Any, Any]:
    with step(model, clear_params=VodeParam.Cache):
        return _sample_energies(x, None, model=model)


class EnergyFunction:
    """$\\mathcal{F}$ as a pure function of a selection of the model's parameters.

    ``fn = EnergyFunction(model, x)`` selects the free activities by default;
    ``fn(z)`` evaluates the energy with the values ``z`` (a list aligned with
    `fn.params`) installed, leaving the model untouched, so it can be handed to
    `jax.grad`, diffrax or optax. `fn.write(z)` stores values in the model.

    **Arguments:**

    - `model`: the model (activities must already have values, e.g. after `init_forward`).
    - `x`: the input batch (`None` for a free input layer).
    - `wrt`: filter of the parameters to expose (default `FREE`).

    **Example:**

    ```python
    fn = EnergyFunction(model, x)
    grads = jax.grad(fn)(fn.initial())
    ```
    """

    def __init__(self, model: EnergyModule, x: Any = None, wrt: Any = FREE) -> None:
        structure, values = split({"model": model}, implicit=(RKG,))
        predicate = as_predicate(wrt)
        own = {id(p) for p in model.parameters()}
        self.model, self.x = model, x
        self._structure, self._values = structure, values
        self._positions = [
            i for i, p in enumerate(structure.params) if id(p) in own and predicate(p) and values[i] is not None
        ]
        if not self._positions:
            raise ValueError(
                f"EnergyFunction: no parameter of {type(model).__name__} matches {wrt!r} with a value. "
                "Initialise the activities first (init_forward / init_random), and check that the nodes to "
                "infer are not all frozen."
            )

    @property
    def params(self) -> list[Param]:
        """The selected parameters, in the order of the value lists."""
        return [self._structure.params[i] for i in self._positions]

    def initial(self) -> list[Any]:
        """The current values of the selected parameters."""
        return [self._structure.params[i].value for i in self._positions]

    def call(self, fn: Any, z: Sequence[Any]) -> tuple[Any, list[Any]]:
        """Run ``fn(model=model)`` with ``z`` in the selected parameters, leaving the model untouched.

        **Returns:** ``(out, written)``: what `fn` returns, and the value of each selected
        parameter after it (what `fn` wrote there, else its value in ``z``).

        **Example:** ``per_layer = fn.call(lambda *, model: batch_energy(model, x)[1], z)[0]``
        """
        values = list(self._values)
        for i, v in zip(self._positions, z):
            values[i] = v
        out, updates = self._structure.call(fn, values)
        return out, [updates.get(i, v) for i, v in zip(self._positions, z)]

    def _evaluate(self, z: Sequence[Any], fn: Any = None) -> tuple[Any, Any]:
        return self.call(fn or (lambda *, model: batch_energy(model, self.x)), z)[0]

    def __call__(self, z: Sequence[Any]) -> Any:
        return self._evaluate(z)[0]

    def with_layers(self, z: Sequence[Any]) -> tuple[Any, Any]:
        """``(F, per_layer)`` at ``z`` (use with ``jax.value_and_grad(..., has_aux=True)``)."""
        return self._evaluate(z)

    def per_sample(self, z: Sequence[Any]) -> tuple[Any, Any]:
        """``(F_i, per_layer)`` at ``z``: each sample's energy $F_i$ (a vector) and the per-layer batch means.

        The gradient of ``jnp.sum(F_i)`` with respect to a sample's activities is that
        sample's own gradient, whatever the batch size.
        """
        return self._evaluate(z, lambda *, model: _step_sample_energies(model, self.x))

    def check(self, z: Any, where: str = "EnergyFunction.write") -> None:
        """Refuse `z` unless it holds one array per selected parameter, each of that parameter's shape and dtype.

        A floating value of another precision is accepted (`write` casts it back, as
        ``optax.apply_updates`` does: diffrax integrates float16 activities in float32).
        Runs on shapes and dtypes only (cheap, also while tracing). A list that is too short would
        otherwise leave the missing parameters at their old values without a word.

        **Arguments:**

        - `z`: the values to check (a list aligned with `params`, as `initial()` returns).
        - `where`: who the values come from, for the error message.

        **Example:** ``fn.check(z, "MyStrategy.solve")``
        """
        names = [self._structure.paths[i] for i in self._positions]
        initial = self.initial()
        if not isinstance(z, (list, tuple)):
            raise TypeError(
                f"{where}: expected a list of {len(names)} arrays, one per parameter ({', '.join(names)}), in the "
                f"order of initial(); got {_describe(z)}. Give a list aligned with initial()."
            )
        if len(z) != len(names):
            raise ValueError(
                f"{where}: expected {len(names)} arrays, one per parameter ({', '.join(names)}), in the order of "
                f"initial(); got {len(z)} ({', '.join(map(_describe, z)) or 'none'}). Return a value for every "
                "parameter, unchanged ones included."
            )
        for name, old, new in zip(names, initial, z):
            if not _fits(new, old):
                raise ValueError(
                    f"{where}: the value for {name} is {_describe(new)}, but the parameter is {_describe(old)}. "
                    "Return each value with the shape (batch axis included) and dtype that initial() gives for it."
                )

    def write(self, z: Sequence[Any]) -> None:
        """Store ``z`` in the selected parameters (all or nothing), each in its parameter's dtype.

        `check` refuses a wrong count, shape or kind of dtype first.
        """
        self.check(z)
        values = [new if new.dtype == old.dtype else new.astype(old.dtype) for new, old in zip(z, self.initial())]
        merge(self._structure, dict(zip(self._positions, values)))


def _fits(new: Any, old: Any) -> bool:
    """Whether `new` can replace the array `old`: an array of its shape, of its dtype or both floating."""
    if not (hasattr(new, "shape") and hasattr(new, "dtype")) or tuple(new.shape) != tuple(old.shape):
        return False
    both_floating = jnp.issubdtype(new.dtype, jnp.floating) and jnp.issubdtype(old.dtype, jnp.floating)
    return new.dtype == old.dtype or both_floating


def _describe(value: Any) -> str:
    """``"an array of shape (16, 4) and dtype float32"``, or the type of a value that is no array."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return f"a {type(value).__name__}"
    return f"an array of shape {tuple(value.shape)} and dtype {jnp.dtype(value.dtype).name}"
