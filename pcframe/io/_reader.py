"""Loading a file into a model: every check against the model first, then bounded reads, then one update."""

from __future__ import annotations

import functools
import os
import re
import warnings
from typing import Any

import jax
import numpy as np

from ..core._state import assign
from ._archive import Archive, NpyHeader
from ._atomic import npz_path
from ._distributed import placed_like
from ._format import (
    FORMAT_VERSION,
    HEADER,
    Header,
    Record,
    UnreadableFileError,
    agrees,
    decode,
    dtype_of,
    layout,
    parse_header,
    record_of,
)
from ._stored import entries, nothing_selected, selected


def _header_text(archive: Archive, fail: Any) -> str | None:
    """The JSON text of the file's header entry (`None` for a file without one)."""
    if HEADER not in archive.entries:
        damaged = [n for n in archive.entries if len(n) == len(HEADER) and sum(map(str.__ne__, n, HEADER)) <= 2]
        if damaged:
            raise fail(f"its header entry is damaged: it is named {damaged[0]!r}")
        return None
    chars = 1024 + sum(len(name) + 1024 for name in archive.entries)
    header = archive.npy_header(HEADER)
    match = re.fullmatch(r"<U([1-9][0-9]{0,8})", header.descr)
    if not (match and header.shape == () and int(match[1]) <= chars):
        raise fail(f"its header entry holds {header.descr} {header.shape}, not one JSON string")
    text = archive.read(HEADER, header, np.dtype(header.descr))
    try:
        return str(text[()])
    except (ValueError, UnicodeError) as error:
        raise fail(f"its header entry is not text: {error}") from None


def check_kind(header: Header, kind: str, path: str, where: str) -> None:
    """Refuse a checkpoint given to `load_params` and a parameter file given to `load_checkpoint`."""
    if header.kind in (None, kind):
        return
    if header.kind == "checkpoint":
        call = ", ".join([repr(path), *(f"{name}={name}" for name in header.objects or ())])
        raise ValueError(
            f"{where}: {path!r} is a checkpoint written by save_checkpoint, not a parameter file. "
            f"Restore it with load_checkpoint({call})."
        )
    raise ValueError(
        f"{where}: {path!r} is a parameter file written by save_params, not a checkpoint. "
        f"Load it with load_params(model, {path!r})."
    )


def check_objects(header: Header, objects: list[str], path: str, where: str) -> None:
    """Refuse a checkpoint restore that does not name exactly the saved objects."""
    saved = list(header.objects or objects)
    call = ", ".join([repr(path), *(f"{name}={name}" for name in saved)])
    unknown = [name for name in objects if name not in saved]
    if unknown:
        raise ValueError(
            f"{where}: {path!r} holds no object named {unknown}; it holds {saved}. "
            f"Pass the objects under those keywords: load_checkpoint({call})."
        )
    missing = [name for name in saved if name not in objects]
    if missing:
        raise ValueError(
            f"{where}: {path!r} also holds {missing}, which were not given. To resume exactly, build every "
            f"saved object as for the saved run and pass them all: load_checkpoint({call})."
        )


def _mismatch(where: str, key: str, want: Record, got: Record, path: str) -> ValueError:
    def described(record: Record) -> str:
        return f"{record.shape} {record.dtype}" + (f" (key implementation {record.key})" if record.key else "")

    return ValueError(
        f"{where}: {key} has shape {want.shape} and dtype {want.dtype} in the model but {described(got)} in {path!r}."
    )


def _descr_name(descr: str) -> str:
    try:
        return str(np.dtype(descr))
    except TypeError:
        return descr


def _check_entry(header: Header, key: str, leaf: Any, npy: NpyHeader, fail: Any, where: str, path: str) -> None:
    """An entry's ``.npy`` header must agree with the file's record of it (and so with the model).

    Files before format 2 record no shapes: there a disagreement is the model's, and such a file
    may hold a non-NumPy dtype as NumPy wrote it (``<V1`` for int4) when the file records that dtype.
    """
    want = record_of(leaf)
    if header.records is not None:
        if not agrees(header.records[key], npy.descr, npy.shape):
            raise fail(f"its entry {key!r} holds {npy.descr} {npy.shape} but its header records {header.records[key]}")
        if header.records[key] != want:
            raise _mismatch(where, key, want, header.records[key], path)
        return
    stored, shape = layout(leaf)
    true = dtype_of(leaf)
    accepted = {stored.str, true.str} if header.dtypes.get(key) == str(true) else {true.str}
    if npy.descr not in accepted or npy.shape != shape:
        raise _mismatch(where, key, want, Record(_descr_name(npy.descr), npy.shape), path)


def read_into(
    module: Any, path: Any, filter: Any, *, strict: bool, kind: str, objects: list[str] | None, where: str
) -> None:
    """Load the file at `path` into the selected parameters of `module`, all or nothing.

    A value that spans several devices (replicated or sharded) is loaded onto the same sharding.
    """
    path = npz_path(path, where)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{where}: no file at {path!r}. Check the path (save_params / save_checkpoint write it)."
        )
    chosen = selected(module, filter)
    expected = {key: leaf for name, param in chosen.items() for key, leaf in entries(name, param.value).items()}
    fail = functools.partial(UnreadableFileError, where, path)
    with Archive(path, fail) as archive:
        header = parse_header(_header_text(archive, fail), fail)
        names = sorted(set(archive.entries) - {HEADER})
        if header.records is not None and set(header.records) != set(names):
            unlisted = sorted(set(names) - set(header.records))[:3]
            absent = sorted(set(header.records) - set(names))[:3]
            raise fail(f"its entries do not match its header (not listed: {unlisted}; listed but absent: {absent})")
        check_kind(header, kind, path, where)
        if objects is not None:
            check_objects(header, objects, path, where)
        if header.format < 1:
            warnings.warn(
                f"{where}: {path!r} is in the old format {header.format} (no dtype records); the dtypes are "
                f"taken from its arrays. Save it again with {'save_checkpoint' if kind == 'checkpoint' else 'save_params'} "
                f"to upgrade the file to format {FORMAT_VERSION}.",
                UserWarning,
                stacklevel=4,
            )
        for name, param in chosen.items():
            if param.value is None and any(n == name or n.startswith(f"{name}::") for n in names):
                raise ValueError(
                    f"{where}: {name} has no value to load into; build the model (run a forward pass) first."
                )
        if not expected:
            raise nothing_selected(where, module, filter)
        npys = {}
        for key, leaf in expected.items():
            if key not in archive.entries:
                raise ValueError(
                    f"{where}: {path!r} has no entry for {key}, which {type(module).__name__} has. Was it saved from "
                    f"this model? It holds {len(names)} entries, e.g. {names[:3]}."
                )
            npys[key] = archive.npy_header(key)
            _check_entry(header, key, leaf, npys[key], fail, where, path)
        unexpected = [name for name in names if name not in expected]
        if strict and unexpected:
            advice = (
                "Use strict=False to ignore them."
                if kind == "params"
                else "Build the objects exactly as for the saved run."
            )
            raise ValueError(
                f"{where}: {path!r} holds entries the model does not have: {unexpected[:5]}"
                f"{' ...' if len(unexpected) > 5 else ''}. {advice}"
            )
        data = {key: archive.read(key, npys[key], layout(leaf)[0]) for key, leaf in expected.items()}
    values = {key: decode(data[key], leaf) for key, leaf in expected.items()}
    targets = [param for param in chosen.values() if param.value is not None]
    new = [
        placed_like(
            jax.tree_util.tree_unflatten(
                jax.tree_util.tree_structure(param.value), [values[k] for k in entries(name, param.value)]
            ),
            param.value,
        )
        for name, param in chosen.items()
        if param.value is not None
    ]
    assign(targets, new)
