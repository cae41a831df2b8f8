"""`Optim`: an optax optimiser that updates a model's parameters in place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ..core._module import Module
from ..core._param import GRADIENT_OF, Param, StaticParam
from ..core._refs import ParamRefs
from ..core._state import assign
from ..core._tree import collect_params, is_param, keystr, param_paths
from ._optim_groups import grouped


def _shapes(value: Any) -> Any:
    """The shape of an array, or the list of shapes of a pytree's leaves."""
    shapes = [jnp.shape(leaf) for leaf in jax.tree_util.tree_leaves(value)]
    return shapes[0] if len(shapes) == 1 else shapes


def _form(value: Any) -> tuple:
    """The pytree structure and the ``(shape, dtype)`` of each leaf of a value: what an optimiser state is built for."""
    leaves, treedef = jax.tree_util.tree_flatten(value)
    return treedef, tuple((tuple(jnp.shape(leaf)), jnp.result_type(leaf)) for leaf in leaves)


def _form_text(form: tuple) -> str:
    """``"shape (4,) float32"``; the leaves one by one for a pytree value; ``"no value"`` for `None`."""
    treedef, leaves = form
    parts = [f"shape {shape} {dtype.name}" for shape, dtype in leaves]
    if treedef.num_leaves == 1 and treedef.num_nodes == 1:
        return parts[0]
    return f"[{', '.join(parts)}]" if parts else "no value"


class OptimState(Param):
    """The `Param` holding an optimiser's optax state."""


class _Owned(ParamRefs):
    """The parameters an `Optim` owns, their names, and the form of the values its state was built for.

    Static: part of the optimiser's structure, by the positions of the parameters (see
    `pcframe.core.ParamRefs`), their names and forms, so a new `Optim` over the same weights
    (with the same optax transformation object) compiles nothing new. `forms[i]` is `_form`
    of ``params[i].value`` at the last `Optim.init`.
    """

    __slots__ = ("names", "forms")

    def __init__(self, params: tuple[Param, ...], names: tuple[str, ...] = (), forms: tuple = ()) -> None:
        super().__init__(params)
        self.names = names
        self.forms = forms

    def signature(self) -> tuple:
        return (self.names, self.forms)


class Optim(Module):
    """Applies an optax transformation to a selection of a model's parameters, in place.

    **Arguments:**

    - `tx`: any `optax.GradientTransformation` (`optax.sgd(0.1)`, `optax.adamw(1e-3)`, chains...),
      or ``{name: transformation}`` to update each group of parameters with its own (an
      `optax.multi_transform`; `params` is then ``{name: parameters}`` with the same names, each
      parameter in one group).
    - `params`: the parameters to own, usually ``Mask(LayerParam)(model)``; any
      pytree containing `Param`s works. `None` defers to `init`.

    Pass the optimiser to stateful transforms as a keyword argument so its
    state is tracked. Parameters without a gradient in a `step` are left
    untouched (e.g. a frozen output activity).

    **Example:**

    ```python
    optim_w = Optim(optax.adam(1e-3), Mask(LayerParam)(model))
    (e, _), g = value_and_grad(Mask(LayerParam, (False, True)), has_aux=True)(energy)(x, model=model)
    optim_w.step(model, g["model"])
    groups = Optim(
        {"hidden": optax.adamw(1e-3), "head": optax.sgd(0.1)},
        {"hidden": Mask(LayerParam)(model.layers[:-1]), "head": Mask(LayerParam)(model.layers[-1])},
    )
    ```
    """

    _by_group = False

    def __init__(
        self, tx: optax.GradientTransformation | Mapping[str, optax.GradientTransformation], params: Any = None
    ) -> None:
        by_group = isinstance(tx, Mapping)
        if by_group:
            tx, params = grouped(tx, params)
        elif not isinstance(tx, optax.GradientTransformation):
            raise TypeError(f"Optim needs an optax GradientTransformation (e.g. optax.sgd(0.1)), got {tx!r}.")
        self.tx = StaticParam(tx)
        self.state = OptimState()
        self._owned = _Owned(())
        if params is not None:
            self.init(params)
        if by_group:
            self._by_group = True  # its transformation is labelled for these parameters

    @property
    def params(self) -> tuple[Param, ...]:
        """The parameters this optimiser updates."""
        return self._owned.params

    def init(self, params: Any = None) -> None:
        """(Re-)initialise the optimiser state, e.g. per batch for an activity optimiser.

        The shape and dtype of every owned value are remembered: `step` and `apply` refuse
        to update a parameter whose value has changed shape or dtype since (call `init` again
        to start a new state for it).

        **Arguments:**

        - `params`: the parameters to own from now on (default: the current ones).
        """
        owned, names = self._owned.params, self._owned.names
        if params is not None and self._by_group:
            raise ValueError(
                "Optim.init: this optimiser updates groups of parameters, each with its own transformation, fixed "
                "when it was created; create a new Optim for another selection (optim.init() restarts its state)."
            )
        if params is not None:
            owned = tuple(collect_params(params))
            if not owned:
                raise ValueError(
                    "Optim: the given parameters contain no Param. Check the mask (e.g. Mask(LayerParam)(model)) "
                    "and that the model has been built (run a forward pass first)."
                )
            paths = param_paths(params)
            names = tuple(paths.get(id(p)) or type(p).__qualname__ for p in owned)
        empty = [p for p in owned if p.value is None]
        if empty:
            kinds = ", ".join(sorted({type(p).__qualname__ for p in empty}))
            raise ValueError(
                f"Optim: {len(empty)} parameter(s) ({kinds}) have no value yet. To optimise a model's weights, "
                "select them with a Mask: Optim(tx, pxu.Mask(pxnn.LayerParam)(model)); to optimise activities, "
                "run a forward pass under STATUS.INIT before creating or re-initialising the optimiser."
            )
        values = [p.value for p in owned]
        self.state.value = self.tx.value.init(values)
        forms = tuple(map(_form, values))
        if owned != self._owned.params or names != self._owned.names or forms != self._owned.forms:
            self._owned = _Owned(owned, names, forms)

    def clear(self) -> None:
        """Drop the optimiser state (call `init` before the next `step`)."""
        self.state.value = None

    def step(self, module: Any, grads: Any, scale_by_batch_size: bool = False) -> None:
        """Update the owned parameters of `module` in place from `grads`, all or nothing.

        **Arguments:**

        - `module`: the model (or pytree) the gradients were taken of.
        - `grads`: the gradient tree from `value_and_grad` (e.g. ``g["model"]``), with
          the structure of `module`. It is not modified.
        - `scale_by_batch_size`: multiply each gradient by its leading dimension.
          Activities' gradients of a batch-averaged energy are $1/B$ of the
          per-sample ones; this restores per-sample steps.
        """
        self._check_state("Optim.step")
        owned = {id(p): i for i, p in enumerate(self._owned.params)}
        gradients: list[Any] = [None] * len(owned)
        by_path = None
        for path, grad in jax.tree_util.tree_flatten_with_path(grads, is_leaf=is_param)[0]:
            if not isinstance(grad, Param):
                continue
            param = grad.__dict__.get(GRADIENT_OF)
            if param is None:  # a gradient tree built by hand: find the parameter at the same place
                by_path = by_path or dict(jax.tree_util.tree_flatten_with_path(module, is_leaf=is_param)[0])
                param = by_path.get(path)
            i = owned.get(id(param))
            if i is None:
                raise ValueError(_not_owned(path, param, module, owned))
            if _shapes(grad.value) != _shapes(param.value):
                raise ValueError(
                    f"Optim.step: the gradient for {keystr(path)} has shape {_shapes(grad.value)} but the "
                    f"parameter has shape {_shapes(param.value)}. Take the gradients of this model as it is now "
                    "(its batch size or layers changed since they were computed)."
                )
            gradients[i] = grad.value * grad.value.shape[0] if scale_by_batch_size else grad.value
        self._update(gradients)

    def _check_state(self, where: str) -> None:
        """Refuse to update without a state, or a parameter whose value changed shape or dtype since `init`.

        Optax would broadcast the old state against the new value and write back a value of the
        old shape without a word. Only shapes and dtypes are compared: free while tracing.
        """
        if self.state.value is None:
            raise ValueError(f"{where}: the optimiser has no state; call init(params) first.")
        for param, name, form in zip(self._owned.params, self._owned.names, self._owned.forms):
            now = _form(param.value)
            if now != form:
                raise ValueError(
                    f"{where}: {name} now has {_form_text(now)}, but the optimiser state was built for "
                    f"{_form_text(form)} (at Optim.init). Nothing was updated. Put back a value of "
                    f"{_form_text(form)}, or call optim.init() (optim.init(params) for another selection) to "
                    "start a new optimiser state for the changed parameters."
                )

    def apply(self, gradients: list[Any]) -> None:
        """Apply one update from a list of gradients aligned with `params` (`None`: leave that one alone).

        Every new value is computed first and then written, with the new optimiser
        state, in one step: an error or Ctrl-C leaves parameters and state as they were.

        **Arguments:**

        - `gradients`: one gradient (or `None`) per parameter of `params`, in that order.
        """
        self._check_state("Optim.apply")
        self._update(gradients)

    def _update(self, gradients: list[Any]) -> None:
        """`apply` without the checks (`step` has made them)."""
        params = self._owned.params
        values = [p.value for p in params]
        filled = [jnp.zeros_like(v) if g is None else g for v, g in zip(values, gradients)]
        updates, state = self.tx.value.update(filled, self.state.value, values)
        new = [
            jax.tree_util.tree_map(lambda v, u: (v + u).astype(v.dtype), value, update)
            for value, update in zip(values, updates)
        ]
        chosen = [i for i, g in enumerate(gradients) if g is not None]
        assign([self.state, *(params[i] for i in chosen)], [state, *(new[i] for i in chosen)])


def _not_owned(path: Any, param: Any, module: Any, owned: dict[int, int]) -> str:
    where = keystr(path) or "the root"
    if param is None:
        reason = "is not a parameter of the given module"
    elif not any(id(p) in owned for p in collect_params(module)):
        return (
            f"Optim.step: got a gradient for {where}, but the given {type(module).__name__} holds none of the "
            "parameters this optimiser was created with. Either the optimiser belongs to another model, or the "
            "model is a copy: jax.jit, eqx.filter_jit and jax.vmap hand the function copies of a model passed to "
            "them, and the real model never changes. Compile the step with pcframe.functional.jit and pass the "
            "model and optimisers as keyword arguments (step(x, y, model=model, optim=optim))."
        )
    else:
        reason = "this optimiser does not own"
    return (
        f"Optim.step: got a gradient for {where}, which {reason}. Pass the module the gradients were taken of "
        "(optim.step(model, g['model'])) and differentiate only parameters the optimiser was created with."
    )
