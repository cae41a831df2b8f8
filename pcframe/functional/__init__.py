"""Stateful transforms: JAX's transforms, tracking the parameters of keyword arguments."""

from ._flow import cond, scan, switch, while_loop
from ._grad import grad, value_and_grad
from ._jit import jit
from ._vmap import vmap

__all__ = ["cond", "grad", "jit", "scan", "switch", "value_and_grad", "vmap", "while_loop"]
