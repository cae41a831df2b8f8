"""Checks of the data batches a step is given, before anything is traced."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_batches(where: str, **batches: Any) -> None:
    """Refuse batches that are not numeric arrays with one shared, non-empty leading batch axis (`None` is skipped).

    A target batch ``y`` of integers with no axis after the batch axis holds class labels, not the
    one-hot targets the output node takes: the error says how to encode them.
    """
    sizes = {}
    for name, batch in batches.items():
        if batch is None:
            continue
        dtype = getattr(batch, "dtype", None)
        if not hasattr(batch, "shape") or dtype is None:
            raise TypeError(
                f"{where}: {name} must be a JAX or NumPy array with a leading batch axis, got {type(batch).__name__}. "
                f"Convert it with jnp.asarray({name})."
            )
        kind = np.dtype(dtype).kind
        if kind not in "biufc":
            raise TypeError(f"{where}: {name} must hold numbers, got dtype {dtype}.")
        if len(batch.shape) == 0:
            raise ValueError(f"{where}: {name} must have a leading batch axis, got shape (); use {name}[None].")
        if batch.shape[0] == 0:
            raise ValueError(
                f"{where}: {name} is an empty batch (shape {tuple(batch.shape)}); give at least one sample."
            )
        if name == "y" and len(batch.shape) == 1 and kind in "iu":
            raise ValueError(
                f"{where}: y holds {batch.shape[0]} integer class labels (shape {tuple(batch.shape)}), but the output "
                "node takes one target vector per sample. One-hot encode them: jax.nn.one_hot(y, num_classes)."
            )
        sizes[name] = batch.shape[0]
    if len(set(sizes.values())) > 1:
        described = " but ".join(
            f"{name} has {size}" if i else f"{name} has batch size {size}"
            for i, (name, size) in enumerate(sizes.items())
        )
        raise ValueError(f"{where}: {described}. Give every batch the same number of samples (leading axis).")
