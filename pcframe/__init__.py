"""pcframe: predictive coding networks as stateful Python objects, compiled with JAX.

Import the parts as in the tutorials::

    import pcframe as px              # RKG, static, Param, Module, split, merge
    import pcframe.pc as pxc          # EnergyModule, Vode, VodeParam, STATUS, energies
    import pcframe.nn as pxnn         # Linear, Conv, ..., LayerParam
    import pcframe.functional as pxf  # jit, vmap, value_and_grad, scan, ...
    import pcframe.utils as pxu       # Mask, m, step, Optim, save_params, load_params
"""

from . import core, diagnosis, functional, inference, io, models, nn, pc, training, utils
from .core import RKG, Module, Param, RandomKeyGenerator, StaticParam, merge, split, static

__version__ = "0.1.0"

__all__ = [
    "RKG",
    "Module",
    "Param",
    "RandomKeyGenerator",
    "StaticParam",
    "__version__",
    "core",
    "diagnosis",
    "functional",
    "inference",
    "io",
    "merge",
    "models",
    "nn",
    "pc",
    "split",
    "static",
    "training",
    "utils",
]
