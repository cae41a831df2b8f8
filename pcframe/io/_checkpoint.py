"""Checkpoints: everything needed to resume training exactly, in one file."""

from __future__ import annotations

import os
from typing import Any

from ..core._param import Param
from ..core._selection import m
from ._params import write_file
from ._reader import read_into


def _kept_across_batches(param: Param) -> bool:
    return not type(param).per_batch


TRAINING_STATE = m(Param) & m(_kept_across_batches)
"""Every parameter but those recomputed for every batch (``Param.per_batch``: activities, caches):
weights, optimiser states, random keys."""


def save_checkpoint(path: str | bytes | os.PathLike, **state: Any) -> str:
    """Save the training state of several objects (models, optimisers, key generators) to one file.

    Activities and caches are left out (they are recomputed for every batch); the
    rest, including optimiser states and random keys (typed ones included), is saved
    atomically (see `save_params`), keyed by the keyword names; the file records that
    it is a checkpoint and which objects it holds.

    **Arguments:**

    - `path`: file name (``.npz`` appended if missing).
    - `**state`: the objects, e.g. ``model=model, optim_w=optim_w, rkg=RKG``.

    **Returns:** the path written.

    **Example:** ``save_checkpoint("run/step_1000", model=model, optim_w=optim_w, rkg=RKG)``
    """
    if not state:
        raise ValueError("save_checkpoint needs the objects to save as keyword arguments, e.g. model=model.")
    return write_file(state, path, TRAINING_STATE, "checkpoint", list(state), "save_checkpoint")


def load_checkpoint(path: str | bytes | os.PathLike, **state: Any) -> None:
    """Restore a checkpoint written by `save_checkpoint` into freshly built objects, in place.

    Build the objects exactly as for the saved run (same model, optimisers created the
    same way) and pass every saved object, then load: training continues bit for bit
    where it stopped. Every entry is validated before anything changes (see `load_params`).
    Values are placed with each parameter's current sharding, so a checkpoint resumes in any
    number of processes and devices: replicate or shard the objects first, then load.

    **Arguments:**

    - `path`: the checkpoint file (``.npz`` appended if missing).
    - `**state`: the objects to restore, under the keywords used by `save_checkpoint`.

    **Example:** ``load_checkpoint("run/step_1000", model=model, optim_w=optim_w, rkg=RKG)``
    """
    if not state:
        raise ValueError("load_checkpoint needs the objects to restore as keyword arguments, e.g. model=model.")
    read_into(state, path, TRAINING_STATE, strict=True, kind="checkpoint", objects=list(state), where="load_checkpoint")
