"""Reading an ``.npz`` archive as untrusted bytes: directory first, then ``.npy`` headers, then bounded data.

Nothing is decompressed or allocated before the caller has checked the entry's
declared name, dtype, shape and size; every read is bounded by the size the
caller expects, and a CRC mismatch is found before the data is used. Every
malformation is reported through `fail(reason)`, never as the zip or npy
library's own exception.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
import struct
import zipfile
from typing import Any

import numpy as np

NPY = ".npy"
MAX_NPY_HEADER = 10_000
"""The largest ``.npy`` header read (NumPy's own default limit); pcframe writes about 128 bytes."""
_MAGIC = b"\x93NUMPY"
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
_FLAGS = 0x0806 | 0x0008  # deflate options, data descriptor, UTF-8 names: nothing needing another reader
_MALFORMED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ValueError,
    EOFError,
    OSError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    IndexError,
    KeyError,
    OverflowError,
    SyntaxError,
)
"""What the zip and literal parsers raise on malformed bytes."""


@dataclasses.dataclass(frozen=True)
class NpyHeader:
    """An ``.npy`` header: the array's `descr` (a string: it is compared, never trusted), order and shape."""

    descr: str
    fortran_order: bool
    shape: tuple[int, ...]
    length: int

    def nbytes(self, dtype: np.dtype) -> int:
        return math.prod(self.shape) * dtype.itemsize


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Archive:
    """An open ``.npz`` file whose zip directory has been read and checked; no entry has been read.

    **Arguments:**

    - `path`: the file.
    - `fail`: ``fail(reason) -> Exception`` makes the error raised for a malformed file.

    **Example:**

    ```python
    with Archive("model.npz", fail) as archive:
        header = archive.npy_header("w")
    ```
    """

    def __init__(self, path: str, fail: Any) -> None:
        self.path, self._fail = path, fail
        self._file = open(path, "rb")
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except _MALFORMED as error:
            self._file.close()
            raise fail(f"its zip directory is unreadable: {_describe(error)}") from None
        self.entries: dict[str, zipfile.ZipInfo] = {}
        try:
            for info in infos:
                self._check(info)
                self.entries[info.filename[: -len(NPY)]] = info
        except BaseException:
            self.close()
            raise

    def _check(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if not name.endswith(NPY):
            raise self._fail(f"its entry {name!r} is not an .npy array")
        if name[: -len(NPY)] in self.entries:
            raise self._fail(f"it holds the entry {name!r} twice")
        if info.compress_type not in _METHODS or info.flag_bits & ~_FLAGS:
            raise self._fail(
                f"its entry {name!r} uses compression method {info.compress_type} and flags {info.flag_bits:#06x}; "
                "pcframe writes uncompressed entries"
            )
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise self._fail(
                f"its uncompressed entry {name!r} declares {info.compress_size} and {info.file_size} bytes"
            )

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def npy_header(self, name: str) -> NpyHeader:
        """Parse the ``.npy`` header of entry `name`, inflating at most its first ``MAX_NPY_HEADER`` bytes."""
        info = self.entries[name]
        try:
            with self._zip.open(info) as stream:
                header = _parse_npy_header(stream.read(min(MAX_NPY_HEADER + 12, info.file_size)))
        except _MALFORMED as error:
            raise self._fail(f"its entry {name!r} is malformed: {_describe(error)}") from None
        if header is None:
            raise self._fail(f"its entry {name!r} has no valid .npy header")
        itemsize = _itemsize(header.descr)
        if itemsize is None or info.file_size != header.length + math.prod(header.shape) * itemsize:
            raise self._fail(
                f"its entry {name!r} declares {info.file_size} bytes, which its .npy header "
                f"({header.descr} {header.shape}) does not describe"
            )
        return header

    def read(self, name: str, header: NpyHeader, dtype: np.dtype) -> np.ndarray:
        """The array of entry `name` (whose header is `header`), read as `dtype`, CRC checked."""
        info, nbytes = self.entries[name], header.nbytes(dtype)
        if info.file_size != header.length + nbytes:
            raise self._fail(
                f"its entry {name!r} declares {info.file_size} bytes, but a {header.shape} array of "
                f"{dtype} with its header takes {header.length + nbytes}"
            )
        try:
            with self._zip.open(info) as stream:
                stream.read(header.length)
                data = stream.read(nbytes)
                complete = len(data) == nbytes and stream.read(1) == b""
        except _MALFORMED as error:
            raise self._fail(f"its entry {name!r} is damaged: {_describe(error)}") from None
        if not complete:
            raise self._fail(f"its entry {name!r} is shorter or longer than declared")
        order = "F" if header.fortran_order else "C"
        return np.frombuffer(data, dtype).reshape(header.shape, order=order)


def _itemsize(descr: str) -> int | None:
    """The item size of a plain ``.npy`` dtype description (``'<f4'`` -> 4, ``'<U3'`` -> 12), else `None`."""
    match = re.fullmatch(r"[<>|=]?([a-zA-Z])([0-9]{1,9})", descr)
    return None if match is None else int(match[2]) * (4 if match[1] == "U" else 1)


def _parse_npy_header(raw: bytes) -> NpyHeader | None:
    """The header at the start of `raw`, or `None` when it is not a valid ``.npy`` header."""
    if len(raw) < 10 or raw[:6] != _MAGIC or raw[6] not in (1, 2, 3):
        return None
    size_format = "<H" if raw[6] == 1 else "<I"
    start = 8 + struct.calcsize(size_format)
    (size,) = struct.unpack(size_format, raw[8:start])
    if size > MAX_NPY_HEADER or len(raw) < start + size:
        return None
    text = raw[start : start + size].decode("utf8" if raw[6] == 3 else "latin1")
    fields = ast.literal_eval(text)
    if not (isinstance(fields, dict) and set(fields) == {"descr", "fortran_order", "shape"}):
        return None
    descr, fortran, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not (
        isinstance(descr, str)
        and type(fortran) is bool
        and isinstance(shape, tuple)
        and all(type(n) is int and n >= 0 for n in shape)
    ):
        return None
    return NpyHeader(descr, fortran, shape, start + size)
