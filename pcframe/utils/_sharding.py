"""Data parallelism with JAX's own SPMD: place the batch split over a device mesh, the state replicated.

Nothing in pcframe's transforms needs to change for this: `jax.jit` (under pcframe's
stateful `jit`) compiles one program for the whole mesh, propagates the input shardings
(activities follow the batch, weights stay replicated) and inserts the all-reduce of the
weight gradients, which are batch means. These two helpers only put the inputs in place.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..core._tree import collect_params


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def data_mesh(devices: Any = None, axis: str = "batch") -> Mesh:
    """A one-axis device mesh for data parallelism, its axis in JAX's automatic sharding mode.

    **Arguments:**

    - `devices`: the devices (default: ``jax.devices()``, every device of every host).
    - `axis`: the name of the mesh axis.

    **Returns:** ``Mesh(devices, (axis,), axis_types=(AxisType.Auto,))``. Automatic axes let
    `jax.jit` propagate shardings on its own; a mesh from ``jax.make_mesh`` has *explicit*
    axes by default, which pcframe's `vmap` does not support.

    **Example:** ``mesh = data_mesh()``
    """
    devices = np.asarray(jax.devices() if devices is None else list(devices))
    return Mesh(devices, (axis,), axis_types=(AxisType.Auto,))


def _check_mesh(mesh: Any, axis: str | None, caller: str) -> None:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{caller} needs a jax.sharding.Mesh, e.g. pcframe.utils.data_mesh(); got {mesh!r}.")
    if AxisType.Explicit in tuple(mesh.axis_types):
        raise ValueError(
            f"{caller}: the mesh has explicit axes {mesh.axis_names}; pcframe relies on jit's sharding propagation. "
            "Build it with pcframe.utils.data_mesh() or axis_types=(jax.sharding.AxisType.Auto, ...)."
        )
    if axis is not None and axis not in mesh.axis_names:
        raise ValueError(f"{caller}: the mesh has axes {mesh.axis_names}, not {axis!r}; pass axis=one of them.")


def shard_batch(tree: Any, mesh: Mesh, axis: str = "batch", *, process_local: bool = False) -> Any:
    """Place every array of `tree` on `mesh`, its leading (batch) axis split along the mesh axis `axis`.

    Sample $i$ of a batch of $N$ lands on device $\\lfloor i / (N/D) \\rfloor$ of the $D$ devices
    along `axis`, as ``NamedSharding(mesh, PartitionSpec(axis))``.

    **Arguments:**

    - `tree`: an array or a pytree of arrays (e.g. ``(x, y)``), each with the batch first.
    - `mesh`: a `jax.sharding.Mesh` (e.g. `data_mesh()`).
    - `axis`: the mesh axis that splits the batch.
    - `process_local`: with several processes (``jax.distributed.initialize``), `tree` holds
      only this process's part of the global batch (each process loads its own slice);
      by default every process passes the same global batch.

    **Returns:** the same pytree, with (global) sharded arrays.

    **Example:**

    ```python
    mesh = data_mesh()
    x, y = shard_batch((x, y), mesh)
    ```
    """
    _check_mesh(mesh, axis, "shard_batch")
    devices = mesh.shape[axis] // (jax.process_count() if process_local else 1)
    for leaf in jax.tree_util.tree_leaves(tree):
        if np.ndim(leaf) == 0 or np.shape(leaf)[0] % devices:
            raise ValueError(
                f"shard_batch: an array of shape {np.shape(leaf)} cannot be split over the {devices} devices of "
                f"mesh axis {axis!r}; use a batch size that is a multiple of {devices}."
            )
    sharding = NamedSharding(mesh, PartitionSpec(axis))
    if process_local:
        return jax.tree_util.tree_map(lambda a: jax.make_array_from_process_local_data(sharding, a), tree)
    return jax.device_put(tree, sharding)


def replicate(tree: Any, mesh: Mesh) -> None:
    """Copy every parameter value of `tree` (models, optimisers, key generators) to all devices of `mesh`, in place.

    Each array becomes ``NamedSharding(mesh, PartitionSpec())``: every device holds
    the whole weight (and optimiser state), as data parallelism needs. With several
    processes, every process must hold the same values (build the model with the
    same seed everywhere); JAX checks this.

    **Arguments:**

    - `tree`: a `Module` (e.g. the model, an `Optim`, `RKG`) or any pytree of them.
    - `mesh`: a `jax.sharding.Mesh`.

    **Returns:** `None`; the parameters are updated in place.

    **Example:**

    ```python
    replicate([model, optim_w, RKG], mesh)
    ```
    """
    _check_mesh(mesh, None, "replicate")
    everywhere = NamedSharding(mesh, PartitionSpec())
    for param in collect_params(tree):
        if param.value is not None:
            param.value = jax.tree_util.tree_map(
                lambda v: jax.device_put(v, everywhere) if _is_array(v) else v, param.value
            )


def shard_params(tree: Any, mesh: Mesh, spec: PartitionSpec) -> None:
    """Split every parameter value of `tree` over the devices of `mesh` as `spec` says, in place.

    Each array becomes ``NamedSharding(mesh, spec)``: with ``PartitionSpec("batch", None)``
    the rows of a weight are split over the devices of mesh axis ``"batch"`` (each holds
    ``rows / devices`` of them). Training is unchanged: `jax.jit` propagates the sharding
    and inserts the communication. Shard the weights before building the optimisers (their
    states then follow the weights), and replicate the rest with `replicate` first. With
    several processes every process calls it with the same values, as for `replicate`.

    **Arguments:**

    - `tree`: a parameter (e.g. ``model.layers[0].nn.weight``), a `Module`, or any pytree of them.
    - `mesh`: a `jax.sharding.Mesh`.
    - `spec`: a `jax.sharding.PartitionSpec`, one entry per leading axis of the values.

    **Returns:** `None`; the parameters are updated in place.

    **Example:**

    ```python
    replicate([model, RKG], mesh)
    shard_params(model.layers[0].nn.weight, mesh, PartitionSpec("batch", None))  # rows split
    ```
    """
    _check_mesh(mesh, None, "shard_params")
    if not isinstance(spec, PartitionSpec):
        raise TypeError(
            f"shard_params needs a jax.sharding.PartitionSpec, e.g. PartitionSpec('batch', None); got {spec!r}."
        )
    sharding = NamedSharding(mesh, spec)
    for param in collect_params(tree):
        for leaf in jax.tree_util.tree_leaves(param.value):
            if not _is_array(leaf):
                continue
            shape = np.shape(leaf)
            axes = [(size, entry) for size, entry in zip(shape, spec) if entry is not None]
            if len(spec) > len(shape) or any(size % _axis_size(mesh, entry) for size, entry in axes):
                raise ValueError(
                    f"shard_params: {type(param).__name__} of shape {shape} cannot be split as {spec} over the mesh "
                    f"{dict(mesh.shape)}; each split axis must be a multiple of its mesh axis size. Choose another "
                    "spec or leave this parameter replicated."
                )
        if param.value is not None:
            param.value = jax.tree_util.tree_map(
                lambda v: jax.device_put(v, sharding) if _is_array(v) else v, param.value
            )


def _axis_size(mesh: Mesh, entry: Any) -> int:
    names = entry if isinstance(entry, tuple) else (entry,)
    return int(np.prod([mesh.shape[name] for name in names]))
