"""Masks, optimisers, the `step` context, and (from `pcframe.io`, pcax's layout) parameter files."""

from ..io import TRAINING_STATE, UnreadableFileError, load_checkpoint, load_params, save_checkpoint, save_params
from ..io._distributed import initialize_distributed
from ._mask import Mask, m
from ._optim import Optim, OptimState
from ._sharding import data_mesh, replicate, shard_batch, shard_params
from ._step import step

__all__ = [
    "TRAINING_STATE",
    "UnreadableFileError",
    "Mask",
    "Optim",
    "OptimState",
    "data_mesh",
    "initialize_distributed",
    "load_checkpoint",
    "load_params",
    "m",
    "replicate",
    "save_checkpoint",
    "save_params",
    "shard_batch",
    "shard_params",
    "step",
]
