"""Parameter files and checkpoints: a header-first reader, an atomic writer (`pcframe.utils` re-exports them)."""

from ._checkpoint import TRAINING_STATE, load_checkpoint, save_checkpoint
from ._format import UnreadableFileError
from ._params import load_params, save_params

__all__ = [
    "TRAINING_STATE",
    "UnreadableFileError",
    "load_checkpoint",
    "load_params",
    "save_checkpoint",
    "save_params",
]
