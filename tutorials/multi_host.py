"""One PC classifier trained by several processes (JAX's multi-controller runtime), on one machine or a cluster.

Two processes on this machine, one CPU device each (two shells, or `&`):

    python tutorials/multi_host.py --process-id 0 --num-processes 2 --port 12345 &
    python tutorials/multi_host.py --process-id 1 --num-processes 2 --port 12345

Under SLURM, one task per host: ``srun python tutorials/multi_host.py --cluster`` (JAX reads the rest from SLURM).
Without flags it trains in one process on that process's devices. Every process runs this same script: it builds
the same model from the same seed, loads its own half of each batch, and takes part in every save. A checkpoint is
written every ``--checkpoint-every`` steps; started again, the script resumes from the newest one.
"""

from __future__ import annotations

import argparse
import os
import re

import jax
import numpy as np
import optax
from jax.sharding import PartitionSpec
from sklearn.datasets import load_digits

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP

BATCH = 64  # the global batch: each of n processes loads BATCH / n samples of it


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--num-processes", type=int, default=1, help="1: no distributed runtime")
    parser.add_argument("--port", type=int, default=12345, help="the coordinator's port on 127.0.0.1")
    parser.add_argument("--cluster", action="store_true", help="under SLURM / Open MPI: JAX finds the processes")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--shard", action="store_true", help="split the 256 hidden units over the devices")
    parser.add_argument("--out", default="results/multi_host")
    return parser.parse_args(argv)


def newest_checkpoint(folder: str) -> tuple[int, str | None]:
    """The step and path of the newest ``step_<n>.npz`` in `folder` (``(0, None)`` if there is none)."""
    steps = [int(m[1]) for name in os.listdir(folder) if (m := re.fullmatch(r"step_(\d+)\.npz", name))]
    return (max(steps), os.path.join(folder, f"step_{max(steps)}.npz")) if steps else (0, None)


def main(argv: list[str] | None = None, after_step=None) -> dict:
    """Train; `after_step(step)` is called after every step (the tests use it to stop a process)."""
    args = parse(argv)
    if args.cluster:
        pxu.initialize_distributed()
    elif args.num_processes > 1:
        pxu.initialize_distributed(f"127.0.0.1:{args.port}", args.num_processes, args.process_id)
    me, count = jax.process_index(), jax.process_count()

    mesh = pxu.data_mesh()  # every device of every process, one axis "batch"
    px.RKG.seed(0)  # the same seed in every process: the same initial weights
    model = PCMLP([64, 256, 10], act_fn=jax.nn.tanh)
    pxu.replicate([model, px.RKG], mesh)  # weights and random key on every device
    if args.shard:  # the 256 hidden units split over the devices: layer 0's rows and biases, layer 1's columns
        pxu.shard_params(model.layers[0], mesh, PartitionSpec("batch"))
        pxu.shard_params(model.layers[1].nn.weight, mesh, PartitionSpec(None, "batch"))
    optim_w = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))  # its state follows the weights
    inference = pxi.DiscreteInference(step_size=0.1, steps=8)

    os.makedirs(args.out, exist_ok=True)  # a folder every process sees (shared file system)
    start, checkpoint = newest_checkpoint(args.out)
    if checkpoint is not None:  # every process loads it; values land on the parameters' shardings
        pxu.load_checkpoint(checkpoint, model=model, optim_w=optim_w, rkg=px.RKG)

    images, labels = load_digits(return_X_y=True)
    x_all, y_all = (images / 16.0).astype(np.float32), np.eye(10, dtype=np.float32)[labels]
    local = BATCH // count
    for step in range(start, args.steps):
        rows = slice((step * BATCH) % 1728 + me * local, (step * BATCH) % 1728 + (me + 1) * local)  # my part
        x, y = pxu.shard_batch((x_all[rows], y_all[rows]), mesh, process_local=True)
        out = pxi.train_supervised(model, optim_w, x, y, inference=inference)
        if (step + 1) % args.checkpoint_every == 0:  # every process calls it; process 0 writes
            pxu.save_checkpoint(f"{args.out}/step_{step + 1}", model=model, optim_w=optim_w, rkg=px.RKG)
        if me == 0:
            print(f"step {step + 1}: energy {float(out['energy']):.4f}", flush=True)
        if after_step is not None:
            after_step(step + 1)
    path = pxu.save_params(model, f"{args.out}/params")
    accuracy = pxi.evaluate_accuracy(model, x_all[1728:], y_all[1728:])  # the 69 held-out digits
    if me == 0:
        print(f"{count} process(es), {jax.device_count()} device(s): accuracy {accuracy:.3f}, saved {path}")
    return {"model": model, "accuracy": float(accuracy), "path": path}


if __name__ == "__main__":
    main()
