"""File names and atomic writes: after any interruption the target is the complete old or new file."""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable
from typing import IO, Any

_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
_SUFFIX = ".tmp"


def npz_path(path: Any, where: str) -> str:
    """`path` (str, bytes or os.PathLike) as a str ending in ``.npz``; a folder is refused."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{where}: the path must be a str, bytes or os.PathLike, got {type(path).__name__}.")
    name = os.fsdecode(os.fspath(path))
    if not name:
        raise ValueError(f"{where}: the path is empty; give a file name such as 'model.npz'.")
    full = name if name.endswith(".npz") else name + ".npz"
    if name.endswith(tuple(filter(None, (os.sep, os.altsep)))) or os.path.isdir(name) or os.path.isdir(full):
        inside = os.path.join(name, "model.npz")
        raise IsADirectoryError(f"{where}: {name!r} is a folder; give a file name inside it, e.g. {inside!r}.")
    return full


def _temporary_prefix(path: str) -> str:
    """Temporaries of `path` are named ``.<name>.pcframe-<host>-<pid>-<random>.tmp`` next to it."""
    return f".{os.path.basename(path)}.pcframe-"


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host runs (a zombie, dead but not yet reaped, does not; `True` where unknown)."""
    if os.name != "posix":
        return True  # no cheap liveness test
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_stale_temporaries(path: str) -> None:
    """Delete the temporaries of `path` left by saves on this host whose process has died."""
    folder, prefix = os.path.dirname(os.path.abspath(path)), _temporary_prefix(path)
    for name in os.listdir(folder):
        if not (name.startswith(prefix) and name.endswith(_SUFFIX)):
            continue
        fields = name[len(prefix) : -len(_SUFFIX)].rsplit("-", 2)
        if len(fields) == 3 and fields[0] == _HOST and fields[1].isdigit() and not process_alive(int(fields[1])):
            try:
                os.remove(os.path.join(folder, name))
            except FileNotFoundError:
                pass  # another save removed it first


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


def _fsync_folder(folder: str) -> None:
    """Make a rename in `folder` durable (POSIX; Windows cannot open a folder and journals renames)."""
    if os.name != "posix":
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_atomically(path: str, write: Callable[[IO[bytes]], None], where: str) -> None:
    """Write `path` through a synced temporary file renamed over it, then sync the folder.

    An existing file keeps its permission bits; a new one gets ``0o666`` less the umask.
    Temporaries of `path` left by killed saves are removed first.

    **Arguments:**

    - `path`: the target file.
    - `write`: ``write(file)`` writes the content to a binary file object.
    - `where`: the public function, for error messages.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{where}: the folder {folder!r} does not exist; create it first.")
    remove_stale_temporaries(path)
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o666 & ~_umask()
    prefix = f"{_temporary_prefix(path)}{_HOST}-{os.getpid()}-"
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=_SUFFIX, dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
        _fsync_folder(folder)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
