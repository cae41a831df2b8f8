"""Masks, optimisers, the `step` context and parameter files."""

from ._io import load_params, save_params
from ._mask import Mask, m
from ._optim import Optim, OptimState
from ._step import step

__all__ = ["Mask", "Optim", "OptimState", "load_params", "m", "save_params", "step"]
