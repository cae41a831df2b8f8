"""Masks, optimisers, the `step` context and parameter files."""

from ._checkpoint import TRAINING_STATE, load_checkpoint, save_checkpoint
from ._format import UnreadableFileError
from ._io import load_params, save_params
from ._mask import Mask, m
from ._optim import Optim, OptimState
from ._sharding import data_mesh, replicate, shard_batch
from ._step import step

__all__ = [
    "TRAINING_STATE",
    "UnreadableFileError",
    "Mask",
    "Optim",
    "OptimState",
    "data_mesh",
    "load_checkpoint",
    "load_params",
    "m",
    "replicate",
    "save_checkpoint",
    "save_params",
    "shard_batch",
    "step",
]
