"""`Param`: a mutable box around a JAX value, and `StaticParam` for static values."""

from __future__ import annotations

import operator
from typing import Any, ClassVar

import jax
import numpy as np

from ._identity import hashable, unwrap
from ._structure import bump_structure
from ._tracing import adopt, check_write

_VALUE = "_value"
GRADIENT_OF = "_gradient_of"
"""Metadata key linking a gradient (a copy of a `Param` holding its gradient) to the parameter it belongs to."""


def _describe(value: Any) -> str:
    """Short text for a value: ``f32[32,2]`` for arrays, ``repr`` otherwise."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        dtype = np.dtype(value.dtype)
        short = {"f": "f", "i": "i", "u": "u", "c": "c"}.get(dtype.kind)
        name = dtype.name if short is None or dtype.name == "bfloat16" else f"{short}{dtype.itemsize * 8}"
        return f"{'bf16' if name == 'bfloat16' else name}[{','.join(map(str, value.shape))}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in value.items()) + "}"
    return repr(value)


class Param:
    """A mutable container for one JAX value (an array or a pytree of arrays).

    Models keep every piece of state that changes during training (weights,
    activities, optimiser states, random keys) in `Param`s. pcframe's transforms
    (`pcframe.functional.jit`, `vmap`, ...) swap traced values into the very
    same `Param` objects while JAX traces, and write the results back after the
    call, so code reads as if it mutated the model in place.

    As a pytree a `Param` has one child, its value; every other attribute set on
    it (e.g. ``param.frozen = True``) is static metadata and can be used by masks.
    Arithmetic, indexing, calls and unknown attributes delegate to the value.

    **Arguments:**

    - `value`: the initial value (`None` means "no value yet").
    - `**metadata`: static attributes to attach.

    **Example:**

    ```python
    w = Param(jnp.ones(3), frozen=True)
    w -= 0.5            # updates w in place
    w.shape, w.frozen   # ((3,), True)
    ```
    """

    per_batch: ClassVar[bool] = False
    """Whether values of this type are recomputed for every batch (activities, caches): checkpoints leave them out."""

    saved_by_default: ClassVar[bool] = False
    """Whether `save_params` without a filter saves values of this type (weights, running statistics)."""

    def __init__(self, value: Any = None, **metadata: Any) -> None:
        adopt(self)
        check_write(self, value)
        object.__setattr__(self, _VALUE, value)
        for name, meta in metadata.items():
            setattr(self, name, meta)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    @property
    def value(self) -> Any:
        """The wrapped value."""
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        check_write(self, value)
        object.__setattr__(self, _VALUE, value)

    def get(self) -> Any:
        """Return the wrapped value."""
        return self._value

    def set(self, value: Any) -> None:
        """Replace the wrapped value (a traced value only inside the pcframe transform tracking this parameter)."""
        check_write(self, value)
        object.__setattr__(self, _VALUE, value)

    def metadata(self) -> dict[str, Any]:
        """The static attributes of this parameter (everything but the value)."""
        return {k: v for k, v in self.__dict__.items() if k != _VALUE}

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "value":
            type(self).value.fset(self, value)
            return
        if name == _VALUE:
            check_write(self, value)
            object.__setattr__(self, name, value)
            return
        if self.__dict__.get(name, _MISSING) is not value:
            bump_structure()
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        bump_structure()
        object.__delattr__(self, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == _VALUE:
            raise AttributeError(name)
        value = self.__dict__.get(_VALUE)
        if value is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} and holds no value to delegate to.")
        return getattr(value, name)

    def __jax_array__(self) -> Any:
        return self._value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._value, dtype=dtype)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._value(*args, **kwargs)

    def __getitem__(self, index: Any) -> Any:
        return self._value[index]

    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self):
        return iter(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __neg__(self) -> Any:
        return -self._value

    def __pos__(self) -> Any:
        return +self._value

    def __abs__(self) -> Any:
        return abs(self._value)

    def __invert__(self) -> Any:
        return ~self._value

    def __repr__(self) -> str:
        meta = "".join(f", {k}={v!r}" for k, v in self.metadata().items() if k != GRADIENT_OF)
        return f"{type(self).__name__}({_describe(self._value)}{meta})"


_MISSING = object()


def _unwrap(x: Any) -> Any:
    return x._value if isinstance(x, Param) else x


def _binary(op):
    def forward(self, other):
        return op(self._value, _unwrap(other))

    def backward(self, other):
        return op(_unwrap(other), self._value)

    def inplace(self, other):
        self.set(op(self._value, _unwrap(other)))
        return self

    return forward, backward, inplace


for _name, _op in {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "matmul": operator.matmul,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
}.items():
    _f, _b, _i = _binary(_op)
    setattr(Param, f"__{_name}__", _f)
    setattr(Param, f"__r{_name}__", _b)
    setattr(Param, f"__i{_name}__", _i)

for _name, _op in {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}.items():
    setattr(Param, f"__{_name}__", _binary(_op)[0])


def _flatten_param(param: Param):
    return (param._value,), tuple((k, hashable(v)) for k, v in param.metadata().items())


def _flatten_static(param: StaticParam):
    return (), (hashable(param._value), tuple((k, hashable(v)) for k, v in param.metadata().items()))


def _unflatten_param(cls):
    def unflatten(meta, children):
        param = object.__new__(cls)
        param.__dict__[_VALUE] = children[0]
        param.__dict__.update((k, unwrap(v)) for k, v in meta)
        return param

    return unflatten


def _unflatten_static(cls):
    def unflatten(aux, children):
        value, meta = aux
        param = object.__new__(cls)
        param.__dict__[_VALUE] = unwrap(value)
        param.__dict__.update((k, unwrap(v)) for k, v in meta)
        return param

    return unflatten


def _register(cls: type) -> None:
    if getattr(cls, "_is_static", False):
        jax.tree_util.register_pytree_node(cls, _flatten_static, _unflatten_static(cls))
    else:
        jax.tree_util.register_pytree_node(cls, _flatten_param, _unflatten_param(cls))


_register(Param)


class StaticParam(Param):
    """A parameter whose value is static: part of the model's structure, not traced.

    Use it (via `static`) for hyperparameters such as activation functions that a
    model should carry but JAX should never trace. Changing it re-triggers
    compilation of any `pcframe.functional.jit` function that uses the model.

    **Example:**

    ```python
    self.act_fn = static(jax.nn.relu)
    y = self.act_fn(x)   # calls jax.nn.relu
    ```
    """

    _is_static = True

    def set(self, value: Any) -> None:
        """Replace the static value (marks the structure as changed)."""
        bump_structure()
        object.__setattr__(self, _VALUE, value)

    @Param.value.setter
    def value(self, value: Any) -> None:
        self.set(value)


def static(value: Any) -> StaticParam:
    """Wrap `value` in a `StaticParam`, so a module stores it as static structure.

    **Arguments:**

    - `value`: any hashable Python object (function, int, tuple, ...).

    **Returns:** a `StaticParam` holding `value`.

    **Example:** ``self.act_fn = static(jax.nn.tanh)``
    """
    return StaticParam(value)
