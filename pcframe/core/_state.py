"""Functionalisation: the state of stateful modules as a hashable structure plus a flat list of values.

Every stateful transform of pcframe is this primitive lifted over a JAX transform:

```python
structure, values = split(kwargs)                  # 1. what the call touches
out, updates = structure.call(fn, values, *args)   # 2. a pure function of `values` (run under any JAX transform)
merge(structure, updates)                          # 3. one all-or-nothing write-back
```

`split` walks the keyword arguments (and the global `RKG`) once. Each dynamic
`Param` becomes one entry of `values` (shared parameters once), and so does every
array that is not inside a `Param` (a batch passed by keyword, a NumPy attribute
of a module, an array in a tuple or an equinox module held by a module): arrays
are data, traced like the parameters, never constants baked into a trace.
Everything else (module types and attributes, parameter types and metadata,
static values, which entries are shared) goes into the structure's *signature*, hashed **by value**: a dict hyperparameter edited in
place gives a different signature, so a cached trace is never reused for it.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import jax
from jax.core import Tracer

from ._config import Config
from ._module import Module
from ._param import Param
from ._random import RKG
from ._recipe import Recipe, config_recipe
from ._tracing import check_write, tracked
from ._walk import ARRAYS, DATA, VALUE, Walk, freeze, is_stateful, path_text

_SET = object.__setattr__


class StructureKey:
    """The hashable part of a `Structure`: what a compiled function may be cached under.

    Equal signatures ("the same computation on the same kinds of values") share one key
    object (`StructureKey.of`), so keys compare and hash by identity: JAX's cache lookups
    run no Python code, and a Ctrl-C cannot land inside them. The key refers to its
    structure weakly, so a cache that keeps the key (`jax.jit`'s) does not keep the model
    alive; `bind` points it at the structure of the call in progress.

    **Arguments:**

    - `signature`: the structure's hashable description.

    **Example:** ``jax.jit(pure, static_argnums=0)(structure.key, values)``
    """

    __slots__ = ("signature", "_structure", "__weakref__")
    _interned: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    def __init__(self, signature: tuple) -> None:
        self.signature = signature
        self._structure: Any = None

    @classmethod
    def of(cls, signature: tuple) -> StructureKey:
        """The one key of `signature` (made on first use, kept while anything holds it)."""
        key = cls._interned.get(signature)
        if key is None:
            key = cls._interned[signature] = cls(signature)
        return key

    def bind(self, structure: Structure) -> None:
        """Make `structure` the one `structure()` returns (the structure of the call in progress)."""
        self._structure = structure.ref

    def structure(self) -> Structure:
        """The structure of the call in progress."""
        found = self._structure() if self._structure is not None else None
        if found is None:
            raise RuntimeError("pcframe: a StructureKey outlived its Structure; split the arguments again.")
        return found

    def __repr__(self) -> str:
        return f"StructureKey(<{len(self.signature)} entries>)"


class Structure:
    """The static description of keyword arguments' state, and the objects it was read from.

    Made by `split`. `key` is shared by every structure with the same signature (see `StructureKey`);
    `params` are the dynamic `Param`s in the order of the values (shared ones once),
    `paths` their readable locations (``model.layers[0].nn.weight``).

    **Arguments:**

    - `walk`: the result of walking the keyword arguments (internal; use `split`).
    - `recipes`: how to rebuild each keyword argument around traced arrays (internal).
    - `n_kwargs_params`: how many of the parameters the keyword arguments hold (the rest are implicit).

    **Example:** ``structure, values = split({"model": model}); structure.paths[0]``
    """

    def __init__(self, walk: Walk, recipes: dict[str, Recipe], n_kwargs_params: int) -> None:
        self.params = tuple(walk.params)
        self.n_kwargs_params = n_kwargs_params  # params[n_kwargs_params:] come from the implicit modules only
        self.paths = tuple(walk.paths)
        self.module_dicts = tuple(module.__dict__ for module in walk.modules)  # not the modules: held weakly
        self.containers = tuple(walk.containers)
        self.slots = tuple(walk.slots)
        self.watched = tuple(walk.watched)
        self.recipes = recipes
        self.n_data = sum(recipe.n_data for recipe in recipes.values())
        self.ref = weakref.ref(self)
        self.key = StructureKey.of(tuple(walk.signature))
        self.key.bind(self)
        self._ids = {id(p) for p in self.params}

    def __repr__(self) -> str:
        return f"Structure({len(self.params)} params, {len(self.slots)} module arrays, kwargs {list(self.recipes)})"

    def is_current(self) -> bool:
        """Whether every static value that could be edited in place unseen still has its value of the split."""
        return all(freeze(owner[key]) == frozen for owner, key, frozen in self.watched)

    def read(self, kwargs: dict[str, Any]) -> list[Any]:
        """The current values for a call with `kwargs` (which must have this structure, as when split).

        Used for keyword arguments that are modules or bare arrays: the ones a transform may cache
        a structure for (`pcframe.functional` splits other keyword arguments again on every call).
        """
        values = [p._value for p in self.params]
        for owner, key, treedef, kept, _ in self.slots:
            if treedef is None:
                values.append(owner[key])
            else:
                leaves = jax.tree_util.tree_flatten(owner[key], is_leaf=is_stateful)[0]
                values.extend(leaf for leaf, marker in zip(leaves, kept) if marker is DATA)
        for name, recipe in self.recipes.items():
            if recipe.kind == "array":
                values.append(kwargs[name])
            elif recipe.kind == "config":  # the very object split read (the cache key holds its id): its values
                values.extend(recipe.data)
        return values

    def kwargs(self, data: Sequence[Any]) -> dict[str, Any]:
        """The keyword arguments to call the user's function with, `data` in place of their arrays."""
        kwargs = {}
        it = iter(data)
        for name, recipe in self.recipes.items():
            if recipe.kind == "array":
                kwargs[name] = next(it)
            elif recipe.kind == "module":
                kwargs[name] = recipe.obj()
            elif recipe.kind in ("tree", "config"):
                kwargs[name] = recipe.treedef.unflatten([next(it) if leaf is DATA else leaf for leaf in recipe.kept])
            else:
                kwargs[name] = recipe.obj
        return kwargs

    def call(
        self, fn: Callable, values: Sequence[Any], *args: Any, restore_static: bool = False
    ) -> tuple[Any, dict[int, Any]]:
        """Run ``fn(*args, **kwargs)`` with `values` installed: a pure function of `values` and `args`.

        The values are put into the very same `Param` objects (and containers) the
        structure was split from, and the originals are put back before returning,
        whatever happens. On an exception, every parameter's metadata is restored
        too; with `restore_static`, so is all static state of the modules (what
        `jit` needs: later calls skip the Python body, so its static changes must
        not outlive the trace).

        **Arguments:**

        - `fn`: the user's function.
        - `values`: as from `split` (or traced stand-ins for them).
        - `*args`: positional arguments passed through.
        - `restore_static`: undo static changes made by `fn`.

        **Returns:** ``(out, updates)``, `updates` mapping the position of every
        parameter `fn` changed to its new value.
        """
        params = self.params
        n = len(params)
        n_slots = sum(slot.count for slot in self.slots)
        if len(values) != n + n_slots + self.n_data:
            raise ValueError(
                f"Structure.call: got {len(values)} values for a structure of {n + n_slots + self.n_data} "
                f"({n} parameters, {n_slots} module arrays, {self.n_data} keyword arrays); pass the values "
                "returned by split (or traced stand-ins of the same length)."
            )
        saved_values = [p._value for p in params]
        saved_meta = [dict(p.__dict__) for p in params]
        saved_slots = [owner[key] for owner, key, *_ in self.slots]
        saved_static = _snapshot(self) if restore_static else None
        failed = False
        _install(params, values[:n])
        _fill(self.slots, values[n : n + n_slots])
        try:
            with tracked(self._ids):
                out = fn(*args, **self.kwargs(values[n + n_slots :]))
                updates = {i: p._value for i, p in enumerate(params) if p._value is not values[i]}
        except BaseException:
            failed = True
            raise
        finally:
            if failed:
                for param, meta in zip(params, saved_meta):
                    param.__dict__.clear()
                    param.__dict__.update(meta)
            if saved_static is not None:
                _restore(saved_static)
            _install(params, saved_values)
            _restore_slots(self.slots, saved_slots)
        return out, updates


def _install(params: Sequence[Param], values: Sequence[Any]) -> None:
    """Set every value in one C-level pass (no Python line runs in between, so Ctrl-C cannot split it)."""
    deque(map(_SET, params, repeat(VALUE), values), maxlen=0)


def _set_item(owner: Any, key: Any, value: Any) -> None:
    (list.__setitem__ if isinstance(owner, list) else dict.__setitem__)(owner, key, value)


def _fill(slots: Sequence[tuple], values: Sequence[Any]) -> None:
    """Put traced data into the slots: an array directly, or a container rebuilt around its arrays."""
    it = iter(values)
    for owner, key, treedef, kept, _ in slots:
        if treedef is None:
            _set_item(owner, key, next(it))
        else:
            _set_item(owner, key, treedef.unflatten([next(it) if leaf is DATA else leaf for leaf in kept]))


def _restore_slots(slots: Sequence[tuple], originals: Sequence[Any]) -> None:
    for (owner, key, *_), original in zip(slots, originals):
        _set_item(owner, key, original)


def _snapshot(structure: Structure) -> tuple:
    return (
        [(state, dict(state)) for state in structure.module_dicts],
        [(c, list(c) if isinstance(c, list) else dict(c)) for c in structure.containers],
        [(p, {k: v for k, v in p.__dict__.items() if k != VALUE}) for p in structure.params],
    )


def _restore(snapshot: tuple) -> None:
    modules, containers, params = snapshot
    for attributes, state in modules:
        attributes.clear()
        attributes.update(state)
    for container, state in containers:
        if isinstance(container, list):
            list.__setitem__(container, slice(None), state)
        else:
            dict.clear(container)
            dict.update(container, state)
    for param, state in params:
        value = param.__dict__[VALUE]
        param.__dict__.clear()
        param.__dict__.update(state)
        param.__dict__[VALUE] = value


def split(kwargs: dict[str, Any], implicit: Sequence[Module] | None = None) -> tuple[Structure, list[Any]]:
    """Split keyword arguments into a hashable `Structure` and the flat list of their values.

    The values are those of every dynamic `Param` (shared ones once), then every
    array held in a module's attributes, lists, dicts, tuples or equinox modules,
    then every array among the keyword arguments themselves. `implicit` modules are
    tracked as if they were passed too: by default the global `RKG`, which any
    function may draw keys from.

    **Arguments:**

    - `kwargs`: a dict of keyword arguments (models, optimisers, containers, arrays, static values).
    - `implicit`: extra modules to track (default ``(RKG,)``; ``()`` for none).

    **Returns:** ``(structure, values)``.

    **Example:**

    ```python
    def checkpointed(fn):          # a stateful jax.checkpoint written with the primitive
        def wrapped(*args, **kwargs):
            structure, values = split(kwargs)
            pure = lambda values, *args: structure.call(fn, values, *args)
            out, updates = jax.checkpoint(pure)(values, *args)
            merge(structure, updates)
            return out
        return wrapped
    ```
    """
    walk = Walk()
    recipes: dict[str, Recipe] = {}
    data: list[Any] = []
    for name, value in kwargs.items():
        if isinstance(value, Module):
            walk.signature.append(("kwarg module", name))
            walk.module(value, name)
            recipes[name] = Recipe("module", obj=weakref.ref(value))  # a cached structure must not keep the model alive
        elif isinstance(value, ARRAYS):
            walk.signature.append(("kwarg array", name))
            recipes[name] = Recipe("array")
            data.append(value)
        elif isinstance(value, Config):
            recipes[name] = config_recipe(value, name, walk)
            data.extend(recipes[name].data)
        else:
            leaves, treedef = jax.tree_util.tree_flatten_with_path(value, is_leaf=is_stateful)
            walk.signature.append(("kwarg tree", name, treedef))
            kept = []
            for where, leaf in leaves:
                if isinstance(leaf, ARRAYS):
                    walk.signature.append(("data",))
                    data.append(leaf)
                    kept.append(DATA)
                else:
                    walk.value(leaf, name + path_text(where))
                    kept.append(leaf)
            has_data = any(leaf is DATA for leaf in kept)
            recipes[name] = Recipe("tree", treedef, tuple(kept)) if has_data else Recipe("object", obj=value)
    n_kwargs_params = len(walk.params)
    for module in (RKG,) if implicit is None else implicit:
        walk.signature.append(("implicit",))
        walk.module(module, type(module).__name__)
    walk.close()
    structure = Structure(walk, recipes, n_kwargs_params)
    return structure, [p._value for p in structure.params] + walk.slot_values + data


def merge(structure: Structure, updates: dict[int, Any] | Sequence[Any]) -> None:
    """Write new values into the structure's parameters, all or nothing.

    Every new value is checked first; then all are set in one pass that Ctrl-C
    cannot interrupt half-way, so the parameters hold either all the old or all
    the new values. A traced value for a parameter that no enclosing pcframe
    transform tracks is refused (`LeakedTracerError`), naming the parameter.

    **Arguments:**

    - `structure`: from `split`.
    - `updates`: ``{position: value}`` as returned by `Structure.call`, or a list of
      new values for all of ``structure.params``.

    **Example:** ``merge(structure, updates)``
    """
    if isinstance(updates, dict):
        positions, values = list(updates), list(updates.values())
    else:
        positions, values = range(len(updates)), list(updates)
    params = structure.params
    assign([params[i] for i in positions], values, [structure.paths[i] for i in positions])


def assign(params: Sequence[Param], values: Sequence[Any], names: Sequence[str] | None = None) -> None:
    """Set ``params[i].value = values[i]`` for every `i`, all or nothing.

    The checks run first (a traced value may only go into a parameter that an
    enclosing pcframe transform tracks); then every value is set in one C-level
    pass, which Ctrl-C cannot split.

    **Arguments:**

    - `params`: the parameters to set.
    - `values`: their new values.
    - `names`: readable names of the parameters for the error message (default: their types).

    **Example:** ``assign([optim.state, *weights], [new_state, *new_weights])``
    """
    if any(map(isinstance, values, repeat(Tracer))):
        for position, (param, value) in enumerate(zip(params, values)):
            check_write(param, value, names[position] if names is not None else None)
    _install(params, values)
