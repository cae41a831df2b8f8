"""Several processes (JAX's multi-controller runtime): starting it, and files every process saves and loads.

Each process runs the same script. A file is saved by all of them: every process takes part in
gathering the sharded values, process 0 alone writes the file, and the others return once process
0 reports it complete. A file is loaded by every process, and each loaded value is placed with the
sharding its parameter had. With one process nothing here changes what the file functions do.
"""

from __future__ import annotations

import inspect
import os
import socket
import sys
import time
from typing import Any

import jax
import numpy as np

from ._atomic import process_alive

SAVE_TIMEOUT_SECONDS = 3600
"""How long the other processes wait for process 0 to finish writing a file."""
_state: dict[str, Any] = {"saves": 0, "peers": {}, "heartbeat": None}


def _client() -> Any:
    from jax._src import distributed

    return distributed.global_state.client


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    heartbeat_timeout_seconds: int = 10,
    initialization_timeout: int = 120,
    **options: Any,
) -> None:
    """Start JAX's distributed runtime (``jax.distributed.initialize``), set up to stop cleanly when a process dies.

    Call it in every process right after the imports, before any array is made (importing
    pcframe makes none). On top of ``jax.distributed.initialize`` it

    - selects the gloo collectives for CPU devices (a CPU run across processes needs them);
    - lowers JAX's heartbeat timeout from 100 s to `heartbeat_timeout_seconds`: a process that
      stops answering is declared dead, and the others are stopped, after that long;
    - installs an exception hook: when this process stops on an uncaught exception (a
      collective that lost its peer, or any error of its own), it prints which process stopped
      and what to do (restart every process from the last checkpoint), and exits at once with
      status 1 instead of waiting in JAX's shutdown barrier.

    **Arguments:**

    - `coordinator_address`, `num_processes`, `process_id`: as ``jax.distributed.initialize``;
      leave them out under a cluster scheduler (SLURM, Open MPI, TPU pods), which JAX detects.
    - `heartbeat_timeout_seconds`: seconds without a heartbeat after which a process counts as dead.
    - `initialization_timeout`: seconds to wait for every process to join.
    - `**options`: passed on to ``jax.distributed.initialize`` (e.g. ``local_device_ids``).

    A second call, once the runtime has started, does nothing.

    **Example:**

    ```python
    pxu.initialize_distributed("127.0.0.1:12345", num_processes=2, process_id=0)   # on one machine
    pxu.initialize_distributed()                                                  # under SLURM
    ```
    """
    if _client() is not None:  # already started (by an earlier call): nothing to do
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if "heartbeat_timeout_seconds" in inspect.signature(jax.distributed.initialize).parameters:
        options["heartbeat_timeout_seconds"] = heartbeat_timeout_seconds  # JAX 0.4.36 and later
    try:
        jax.distributed.initialize(
            coordinator_address, num_processes, process_id, initialization_timeout=initialization_timeout, **options
        )
    except RuntimeError as error:
        if "before any JAX computations" not in str(error) and "backend" not in str(error):
            raise
        raise RuntimeError(
            "initialize_distributed: JAX has already started its single-process runtime (an array was made before "
            "this call). Call initialize_distributed right after the imports, before creating models or arrays."
        ) from error
    client, me = _client(), jax.process_index()
    client.key_value_set(f"pcframe/process/{me}", f"{socket.gethostname()}:{os.getpid()}")
    for other in range(jax.process_count()):
        host, pid = client.blocking_key_value_get(f"pcframe/process/{other}", initialization_timeout * 1000).rsplit(
            ":", 1
        )
        _state["peers"][other] = (host, int(pid))
    _state["heartbeat"] = heartbeat_timeout_seconds
    previous = sys.excepthook

    def stop_all(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
        previous(kind, error, traceback)
        sys.stderr.write(stop_message(error) + "\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)

    sys.excepthook = stop_all


def _lost_peer(error: BaseException) -> bool:
    text = str(error)
    return any(sign in text for sign in ("Gloo", "by peer", "UNAVAILABLE", "heartbeat", "coordination service"))


def _stopped_processes() -> list[int]:
    """The processes found dead: on this host by their process id, elsewhere by JAX's heartbeats."""
    here = socket.gethostname()
    dead = []
    for index, (host, pid) in _state["peers"].items():
        if host == here and index != jax.process_index() and not process_alive(pid):
            dead.append(index)
    if dead or not _state["peers"]:
        return dead
    deadline = time.monotonic() + (_state["heartbeat"] or 10) + 2
    everyone = list(range(jax.process_count()))
    while time.monotonic() < deadline:
        try:
            live = _client().get_live_nodes(everyone)
        except Exception:  # the coordinator (process 0) is gone
            return [0]
        if len(live) < len(everyone):
            return sorted(set(everyone) - set(live))
        time.sleep(0.5)
    return []


def stop_message(error: BaseException) -> str:
    """What a process prints when it stops on `error` in a multi-process run: who stopped and what to do."""
    me, count = jax.process_index(), jax.process_count()
    restart = (
        "Stop every process and start them all again from the last checkpoint (load_checkpoint in every "
        "process; see docs/multi-host.md)."
    )
    if _lost_peer(error):
        stopped = _stopped_processes()
        who = f"process {', '.join(map(str, stopped))} of {count}" if stopped else "another process"
        return (
            f"pcframe: process {me} of {count} stops: {who} has died or stopped answering, so the collective "
            f"operations cannot go on ({type(error).__name__}). {restart}"
        )
    return (
        f"pcframe: process {me} of {count} stops on {type(error).__name__}; the other processes stop within "
        f"about {_state['heartbeat']} s (JAX's heartbeat timeout). Fix the error, then: {restart}"
    )


def host_value(leaf: Any) -> Any:
    """`leaf` as this process can write it: a sharded array spanning several processes gathered whole.

    Every process must call this for the same arrays in the same order (the gathering is collective).
    A value that every process holds in full (replicated) is read from a local copy, without communication.
    """
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
        return leaf
    from jax.experimental import multihost_utils

    key = jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(leaf) if key else leaf
    if data.is_fully_replicated:
        host = np.asarray(data.addressable_data(0))
    else:
        host = multihost_utils.process_allgather(data, tiled=True)
    return jax.random.wrap_key_data(host, impl=jax.random.key_impl(leaf)) if key else host


def is_writer() -> bool:
    """Whether this process writes files: process 0 (and the only process of a single-process run)."""
    return jax.process_index() == 0


def write_together(write: Any, path: str, where: str) -> None:
    """Process 0 runs ``write()``; every process returns once the file at `path` is complete.

    Process 0 reports the outcome through JAX's coordination service; the others wait for it and
    raise an error naming process 0's own error if the write failed.
    """
    if jax.process_count() == 1:
        write()
        return
    _state["saves"] += 1
    key, client = f"pcframe/save/{_state['saves']}", _client()
    if is_writer():
        try:
            write()
        except BaseException as error:
            client.key_value_set(key, f"{type(error).__name__}: {error}")
            raise
        client.key_value_set(key, f"ok {path}")
        return
    outcome = client.blocking_key_value_get(key, SAVE_TIMEOUT_SECONDS * 1000)
    if outcome.startswith("ok ") and outcome != f"ok {path}":
        raise RuntimeError(
            f"{where}: the processes' saves do not match: process 0 wrote {outcome[3:]!r} as its save number "
            f"{_state['saves']}, this process {jax.process_index()} saves {path!r}. Call save_params / "
            "save_checkpoint in every process, with the same arguments in the same order."
        )
    if outcome != f"ok {path}":
        raise RuntimeError(
            f"{where}: process 0, which writes the file, could not write {path!r}: {outcome}. Every process "
            "calls the same save; fix process 0's error (the previous file, if any, is intact)."
        )


def placements(tree: list[Any]) -> list[Any]:
    """The sharding of every array in `tree` that spans several devices (`None` for the others)."""
    return [
        leaf.sharding if isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) > 1 else None
        for leaf in jax.tree_util.tree_leaves(tree)
    ]


def _place(value: Any, sharding: Any) -> Any:
    key = jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)
    data = np.asarray(jax.random.key_data(value) if key else value)
    if key and not isinstance(sharding, jax.sharding.NamedSharding):
        return jax.device_put(value, sharding)
    placed = jax.make_array_from_callback(data.shape, sharding, lambda index: data[index])
    return jax.random.wrap_key_data(placed, impl=jax.random.key_impl(value)) if key else placed


def placed_like(value: Any, like: Any) -> Any:
    """`value` (a value read from a file) with each leaf on the sharding of the same leaf of `like`, where that
    spans several devices (a replicated or sharded parameter keeps its placement across a load)."""
    shardings = placements(like)
    if all(sharding is None for sharding in shardings):
        return value
    leaves, structure = jax.tree_util.tree_flatten(value)
    placed = [leaf if sharding is None else _place(leaf, sharding) for leaf, sharding in zip(leaves, shardings)]
    return jax.tree_util.tree_unflatten(structure, placed)
