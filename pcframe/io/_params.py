"""Saving and loading parameters: atomic writes, and a reader that checks the file against the model first."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._atomic import npz_path, write_atomically
from ._distributed import host_value, write_together
from ._format import HEADER, encode, header_json
from ._reader import read_into
from ._stored import entries, nothing_selected, selected


def write_file(module: Any, path: Any, filter: Any, kind: str, objects: list[str] | None, where: str) -> str:
    """Save the selected parameters of `module` as a file of `kind`; returns the path written.

    With several processes every process calls it: all take part in gathering sharded values,
    process 0 writes, and every process returns once the file is complete (see `_distributed`).
    """
    path = npz_path(path, where)
    values = {
        key: host_value(leaf)
        for name, param in selected(module, filter).items()
        for key, leaf in entries(name, param.value).items()
    }
    if not values:
        raise nothing_selected(where, module, filter)

    def write() -> None:
        arrays, records = {}, {}
        for key, value in values.items():
            arrays[key], records[key] = encode(value)
        header = np.array(header_json(kind, records, objects))
        write_atomically(path, lambda file: np.savez(file, **{HEADER: header}, **arrays), where)

    write_together(write, path, where)
    return path


def save_params(module: Any, path: str | bytes | os.PathLike, filter: Any = None) -> str:
    """Save the selected parameters of `module` to an `.npz` file, keyed by parameter path.

    The file is written to a temporary file in the same folder, flushed to disk,
    renamed over `path` and the folder synced, so an interrupted save never leaves a
    half-written file (temporaries left by a killed save are removed by the next
    save of the same file). An existing file keeps its permissions; a new one gets
    ``0o666`` less the umask. A shared parameter is saved once. The file records
    pcframe's format version and each entry's dtype and shape: every dtype JAX holds
    (bfloat16, float8, int4, complex, bool, ...) and typed PRNG keys round-trip exactly.

    With several processes (``jax.distributed``), every process calls it with the same
    arguments: values sharded over the processes are gathered, process 0 writes the file,
    and every process returns once it is complete (docs/multi-host.md).

    **Arguments:**

    - `module`: the model (any pytree of modules / params).
    - `path`: file name (str, bytes or os.PathLike); ``.npz`` is appended if missing.
    - `filter`: which parameters to save (default: the types that declare ``saved_by_default``, the weights `LayerParam` and running statistics).

    **Returns:** the path written.

    **Example:** ``save_params(model, "model")`` writes ``model.npz``.
    """
    return write_file(module, path, filter, "params", None, "save_params")


def load_params(module: Any, path: str | bytes | os.PathLike, filter: Any = None, strict: bool = True) -> None:
    """Load parameters saved by `save_params` into `module`, in place.

    The file is checked against the model before anything is read in full: its
    header, and every entry's name, dtype, shape and size. Nothing is decompressed
    or allocated beyond what the model holds. Any mismatch raises an error naming the
    parameter; a damaged or crafted file raises `UnreadableFileError`; in every case
    the model is left untouched. A value that spans several devices (replicated or sharded)
    is loaded onto the same sharding; with several processes, every process loads the file.

    **Arguments:**

    - `module`: the model to load into (its parameters must already have values of the right shapes).
    - `path`: file name (str, bytes or os.PathLike); ``.npz`` is appended if missing.
    - `filter`: which parameters to load (default: as `save_params`).
    - `strict`: also refuse files holding entries the model does not have.

    **Example:** ``load_params(model, "model")``
    """
    read_into(module, path, filter, strict=strict, kind="params", objects=None, where="load_params")
