"""Saving and loading parameters to `.npz` files, atomically and with validation."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core._param import Param, StaticParam
from ..core._tree import is_param, keystr
from ._mask import as_predicate

FORMAT_VERSION = 1
_HEADER = "__pcframe__"


def _default_filter() -> Any:
    from ..nn._layer import LayerParam

    return LayerParam


def _npz_path(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def _selected(module: Any, filter: Any) -> dict[str, Param]:
    """``{path: param}`` for every selected dynamic parameter (a shared one under its first path)."""
    predicate = as_predicate(_default_filter() if filter is None else filter)
    seen: set[int] = set()
    selected = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(module, is_leaf=is_param)[0]:
        if isinstance(leaf, Param) and not isinstance(leaf, StaticParam) and id(leaf) not in seen and predicate(leaf):
            seen.add(id(leaf))
            selected[keystr(path) or "value"] = leaf
    return selected


def _dtype(value: Any) -> np.dtype:
    """The dtype a value is stored with (a NumPy float64 array stays float64 without x64)."""
    dtype = getattr(value, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(value).dtype


def _umask() -> int:
    """The process's file-creation mask (read without changing it where the OS allows)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _entries(name: str, value: Any) -> dict[str, Any]:
    """The arrays to store for one parameter value (a pytree value gets one entry per leaf)."""
    if value is None:
        return {}
    leaves = jax.tree_util.tree_flatten_with_path(value)[0]
    if len(leaves) == 1 and leaves[0][0] == ():
        return {name: leaves[0][1]}
    return {f"{name}::{keystr(p)}": leaf for p, leaf in leaves}


def save_params(module: Any, path: str | os.PathLike, filter: Any = None) -> str:
    """Save the selected parameters of `module` to an `.npz` file, keyed by parameter path.

    The file is written to a temporary file in the same folder, flushed to
    disk and renamed over `path`, so an interrupted save never leaves a
    half-written file; the file gets the ordinary permissions of a new file
    (``0o666`` less the umask). A shared parameter is saved once. The file
    records pcframe's format version and each array's dtype (bfloat16 included).

    **Arguments:**

    - `module`: the model (any pytree of modules / params).
    - `path`: file name; ``.npz`` is appended if missing.
    - `filter`: which parameters to save (default `LayerParam`: the weights).

    **Returns:** the path written.

    **Example:** ``save_params(model, "model")`` writes ``model.npz``.
    """
    path = _npz_path(path)
    arrays: dict[str, np.ndarray] = {}
    for name, param in _selected(module, filter).items():
        arrays.update({k: np.asarray(v) for k, v in _entries(name, param.value).items()})
    if not arrays:
        raise ValueError(
            f"save_params: the filter {_default_filter() if filter is None else filter!r} selects no parameter "
            f"with a value in {type(module).__name__}. Pass filter= a type the model holds (e.g. LayerParam), "
            "and build the model (run a forward pass) first."
        )
    header = {"format": FORMAT_VERSION, "dtypes": {k: str(a.dtype) for k, a in arrays.items()}}
    stored = {k: (a.view(np.uint16) if a.dtype == jnp.bfloat16 else a) for k, a in arrays.items()}
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save_params: the folder {folder!r} does not exist; create it first.")
    handle, temporary = tempfile.mkstemp(prefix=".pcframe-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **{_HEADER: np.array(json.dumps(header))}, **stored)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _unreadable(path: str, why: str) -> ValueError:
    return ValueError(
        f"load_params: {path!r} is not a readable pcframe parameter file ({why}). "
        "Save it again with pcframe.utils.save_params."
    )


def _header(path: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The file's header; a file without one is format 0 (plain arrays, no dtype records)."""
    if _HEADER not in arrays:
        return {"format": 0, "dtypes": {}}
    try:
        header = json.loads(str(arrays.pop(_HEADER)))
    except json.JSONDecodeError as error:
        raise _unreadable(path, f"its header is not JSON: {error}") from None
    if not (
        isinstance(header, dict)
        and isinstance(header.get("format"), int)
        and isinstance(header.get("dtypes", {}), dict)
    ):
        raise _unreadable(path, f"its header has no integer 'format' entry: {header!r}")
    header.setdefault("dtypes", {})
    return header


_BROKEN_FILE = (zipfile.BadZipFile, ValueError, OSError, EOFError)


def _read(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_params: no parameter file at {path!r}. Check the path (save_params writes it).")
    try:
        data = np.load(path, allow_pickle=False)
    except _BROKEN_FILE as error:
        raise _unreadable(path, str(error)) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _unreadable(path, f"it holds a single {type(data).__name__}, not an .npz archive")
    try:
        with data:
            arrays = {k: data[k] for k in data.files}
    except _BROKEN_FILE as error:
        raise _unreadable(path, str(error)) from None
    header = _header(path, arrays)
    if header["format"] > FORMAT_VERSION:
        raise ValueError(
            f"load_params: {path!r} was written by a newer pcframe (format {header['format']}, this one reads "
            f"up to {FORMAT_VERSION}). Upgrade pcframe."
        )
    if header["format"] < FORMAT_VERSION:
        warnings.warn(
            f"load_params: {path!r} is in the old format {header['format']} (no dtype records); it is read as "
            f"format {FORMAT_VERSION}. Save it again with save_params to upgrade the file.",
            UserWarning,
            stacklevel=3,
        )
    for key, dtype in header["dtypes"].items():
        if dtype == "bfloat16" and key in arrays:
            arrays[key] = arrays[key].view(jnp.bfloat16)
    return arrays


def load_params(module: Any, path: str | os.PathLike, filter: Any = None, strict: bool = True) -> None:
    """Load parameters saved by `save_params` into `module`, in place.

    Every selected parameter's entry is checked (present, same shape, same
    dtype) before anything is changed: on any mismatch an error names the
    parameter and the model is left untouched.

    **Arguments:**

    - `module`: the model to load into (its parameters must already have values of the right shapes).
    - `path`: file name; ``.npz`` is appended if missing.
    - `filter`: which parameters to load (default `LayerParam`).
    - `strict`: also refuse files holding entries the model does not have.

    **Example:** ``load_params(model, "model")``
    """
    path = _npz_path(path)
    arrays = _read(path)
    updates: list[tuple[Param, Any]] = []
    expected: set[str] = set()
    for name, param in _selected(module, filter).items():
        if param.value is None:
            if any(key == name or key.startswith(f"{name}::") for key in arrays):
                raise ValueError(
                    f"load_params: {name} has no value to load into; build the model (run a forward pass) first."
                )
            continue
        leaves, treedef = jax.tree_util.tree_flatten(param.value)
        entries = _entries(name, param.value)
        new_leaves = []
        for key, current in entries.items():
            expected.add(key)
            if key not in arrays:
                raise KeyError(f"load_params: {path!r} has no entry for {key}. Was it saved from this model?")
            stored = arrays[key]
            if stored.shape != np.shape(current) or stored.dtype != _dtype(current):
                raise ValueError(
                    f"load_params: {key} has shape {tuple(np.shape(current))} and dtype "
                    f"{_dtype(current)} in the model but {stored.shape} {stored.dtype} in {path!r}."
                )
            new_leaves.append(stored if isinstance(current, np.ndarray) else jnp.asarray(stored))
        updates.append((param, jax.tree_util.tree_unflatten(treedef, new_leaves)))
    unexpected = sorted(set(arrays) - expected)
    if strict and unexpected:
        raise ValueError(
            f"load_params: {path!r} holds entries the model does not have: {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}. Use strict=False to ignore them."
        )
    for param, value in updates:
        param.value = value
