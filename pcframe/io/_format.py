"""The pcframe file format: what each entry stores, and the header that lists every entry.

A pcframe file is an ``.npz`` archive (a zip of ``.npy`` arrays, no pickle). Its entry
``__pcframe__`` holds a JSON header: the format version, the kind of file (parameters or
checkpoint), the saved objects of a checkpoint, and one record per entry: the value's dtype
and shape, and the implementation of a typed PRNG key. Arrays whose dtype NumPy cannot
describe (bfloat16, float8, int4, ...) are stored as unsigned integers of the same width
and typed PRNG keys as their key data; the record says how to read them back.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FORMAT_VERSION = 2
HEADER = "__pcframe__"
KINDS = {"params": "a parameter file written by save_params", "checkpoint": "a checkpoint written by save_checkpoint"}


class UnreadableFileError(ValueError):
    """A file that pcframe cannot read: damaged, truncated, crafted, or written by a newer pcframe.

    Raised by `load_params` and `load_checkpoint` for every such file, before the model
    is changed. `path` and `reason` are kept as attributes.

    **Arguments:**

    - `where`: the function that read the file.
    - `path`: the file.
    - `reason`: what is wrong with it.
    - `advice`: what to do (default: use an intact copy).

    **Example:**

    ```python
    try:
        load_params(model, "model.npz")
    except UnreadableFileError as error:
        print(error.path, error.reason)
    ```
    """

    def __init__(self, where: str, path: str, reason: str, advice: str | None = None) -> None:
        self.path, self.reason = path, reason
        advice = (
            advice
            or "It is damaged or not a pcframe file: use an intact copy written by save_params / save_checkpoint."
        )
        super().__init__(f"{where}: {path!r} is not a readable pcframe file ({reason}). {advice}")


@dataclasses.dataclass(frozen=True)
class Record:
    """How one entry was saved: the value's dtype and shape, and a typed key's implementation."""

    dtype: str
    shape: tuple[int, ...]
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.dtype} {self.shape}" + (f" (key implementation {self.key})" if self.key else "")

    def to_json(self) -> dict[str, Any]:
        record = {"dtype": self.dtype, "shape": list(self.shape)}
        return record if self.key is None else {**record, "key": self.key}


def is_key(value: Any) -> bool:
    """Whether `value` is a typed PRNG key array (``jax.random.key(0)``)."""
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def record_of(value: Any) -> Record:
    """The record of a value, read from its type (nothing is copied)."""
    if is_key(value):
        return Record(str(value.dtype), tuple(value.shape), str(jax.random.key_impl(value)))
    return Record(str(dtype_of(value)), tuple(np.shape(value)))


def dtype_of(value: Any) -> np.dtype:
    """A value's dtype (a NumPy float64 array stays float64 without x64)."""
    return np.dtype(value.dtype) if hasattr(value, "dtype") else np.asarray(value).dtype


def _storage_dtype(dtype: np.dtype) -> np.dtype:
    """NumPy's own numeric dtypes are stored as they are, the others as unsigned ints of the same width."""
    return dtype if dtype.isbuiltin == 1 and dtype.kind in "biufc" else np.dtype(f"<u{dtype.itemsize}")


def layout(value: Any) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape of the array stored for `value`."""
    if is_key(value):
        data = jax.eval_shape(jax.random.key_data, value)
        return np.dtype(data.dtype), tuple(data.shape)
    return _storage_dtype(dtype_of(value)), tuple(np.shape(value))


def agrees(record: Record, descr: str, shape: tuple[int, ...]) -> bool:
    """Whether an entry stored as `descr` and `shape` is what `record` says was saved."""
    if record.key is not None:
        return descr == "<u4" and len(shape) == len(record.shape) + 1 and shape[:-1] == record.shape
    try:
        dtype = np.dtype(jnp.dtype(record.dtype))
    except TypeError:
        return False
    return (descr, shape) == (_storage_dtype(dtype).str, record.shape)


def encode(value: Any) -> tuple[np.ndarray, Record]:
    """The array to store for `value`, and its record."""
    record = record_of(value)
    if is_key(value):
        return np.asarray(jax.random.key_data(value)), record
    array = np.asarray(value)
    return array.view(_storage_dtype(array.dtype)), record


def decode(data: np.ndarray, like: Any) -> Any:
    """The stored array `data` read back as a value of the same kind as `like` (JAX, NumPy or key)."""
    if is_key(like):
        return jax.random.wrap_key_data(jnp.asarray(data), impl=str(jax.random.key_impl(like)))
    dtype = dtype_of(like)
    array = data.view(dtype) if data.dtype != dtype else data
    return array.copy() if isinstance(like, np.ndarray) else jnp.asarray(array)


def header_json(kind: str, records: dict[str, Record], objects: list[str] | None = None) -> str:
    """The header of a new file listing `records`."""
    header: dict[str, Any] = {"format": FORMAT_VERSION, "kind": kind}
    if objects is not None:
        header["objects"] = objects
    header["entries"] = {name: record.to_json() for name, record in records.items()}
    return json.dumps(header)


@dataclasses.dataclass(frozen=True)
class Header:
    """A file's parsed header. Files of format 0 have none; format 1 records dtypes only."""

    format: int
    kind: str | None = None
    objects: tuple[str, ...] | None = None
    records: dict[str, Record] | None = None
    dtypes: dict[str, str] = dataclasses.field(default_factory=dict)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _record(name: str, raw: Any, fail: Any) -> Record:
    shape = raw.get("shape") if isinstance(raw, dict) else None
    if not (
        isinstance(raw, dict)
        and isinstance(raw.get("dtype"), str)
        and isinstance(shape, list)
        and all(type(n) is int and n >= 0 for n in shape)
        and isinstance(raw.get("key", ""), str)
    ):
        raise fail(f"its header's record of {name!r} is not {{'dtype': str, 'shape': [int, ...]}}: {_short(raw)}")
    return Record(raw["dtype"], tuple(shape), raw.get("key"))


def parse_header(text: str | None, fail: Any) -> Header:
    """Check and parse a header (`None`: a file without one); `fail(reason, advice=None)` makes the error."""
    if text is None:
        return Header(0)
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise fail(f"its header is not JSON: {error}") from None
    if not (isinstance(raw, dict) and type(raw.get("format")) is int and raw["format"] >= 0):
        raise fail(f"its header has no format number: {_short(raw)}")
    if raw["format"] > FORMAT_VERSION:
        raise fail(
            f"it was written by a newer pcframe: format {raw['format']}, this one reads up to {FORMAT_VERSION}",
            "Upgrade pcframe to read it.",
        )
    if raw["format"] < 2:
        dtypes = raw.get("dtypes", {})
        if not (isinstance(dtypes, dict) and all(isinstance(d, str) for d in dtypes.values())):
            raise fail(f"its header's 'dtypes' is not a mapping of entry names to dtypes: {_short(dtypes)}")
        return Header(raw["format"], dtypes=dtypes)
    kind, objects, entries = raw.get("kind"), raw.get("objects"), raw.get("entries")
    if not isinstance(kind, str) or kind not in KINDS:
        raise fail(f"its header's 'kind' is {_short(kind)}, not one of {sorted(KINDS)}")
    if objects is not None and not (isinstance(objects, list) and all(isinstance(o, str) for o in objects)):
        raise fail(f"its header's 'objects' is not a list of names: {_short(objects)}")
    if not isinstance(entries, dict):
        raise fail(f"its header's 'entries' is not a mapping: {_short(entries)}")
    records = {name: _record(name, raw, fail) for name, raw in entries.items()}
    return Header(raw["format"], kind, None if objects is None else tuple(objects), records)
