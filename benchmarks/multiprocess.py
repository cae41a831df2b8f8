"""Steps per second of W2 (784-512x5-10, batch 256, T=20) in 1 process and in 2 processes of one device each.

``python benchmarks/multiprocess.py [--steps 20] [--warmup 3]`` starts the workers itself: first one process
alone, then two on localhost (gloo collectives), each process with one CPU device and half of every batch.
Every worker runs `train_supervised` with the weights replicated and the batch split over the processes,
and process 0 prints its median seconds per step.

On one machine the two processes share its cores, so ``2 processes / 1 process`` is not the speed-up of two
hosts: it weighs one XLA program on the whole batch against two programs on half batches that all-reduce their
weight gradients over localhost. Above 1.0, the halves ran side by side on free cores and gained more than the
all-reduce cost. Measured on a 2-core machine shared with other jobs (load about 13): 1.35 / 1.86 steps/s
(ratio 1.38) and 1.91 / 2.08 (1.09) in two runs. The gain of several processes comes when each has its own
host or GPU.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import pcframe.utils as pxu

    if args.num_processes > 1:
        pxu.initialize_distributed(f"127.0.0.1:{args.port}", args.num_processes, args.process_id)
    import jax
    from variants import packaged_inference
    from workloads import WORKLOADS, batches

    import pcframe as px
    import pcframe.inference as pxi
    import pcframe.nn as pxnn
    import pcframe.pc as pxc
    from pcframe.models import PCMLP

    w = WORKLOADS["W2"]
    mesh = pxu.data_mesh()
    px.RKG.seed(0)
    model = PCMLP(w.sizes, w.act_fn, pxc.se_energy)
    pxu.replicate([model, px.RKG], mesh)
    optim_w = pxu.Optim(w.w_optimiser(), pxu.Mask(pxnn.LayerParam)(model))
    inference = packaged_inference(w)
    part = w.batch // jax.process_count()
    rows = slice(jax.process_index() * part, (jax.process_index() + 1) * part)
    data = [pxu.shard_batch((x[rows], y[rows]), mesh, process_local=True) for x, y in batches(w, 4)]
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        out = pxi.train_supervised(model, optim_w, *data[i % 4], inference=inference)
        jax.block_until_ready(out["energy"])
        times.append(time.perf_counter() - start)
    if jax.process_index() == 0:
        print(f"SECONDS_PER_STEP={statistics.median(times[args.warmup :])}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(count: int, args: argparse.Namespace) -> float:
    """Median seconds per step of process 0 with `count` processes of one CPU device each."""
    port, env = free_port(), {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    common = [sys.executable, os.path.abspath(__file__), "--worker", "--num-processes", str(count)]
    common += ["--port", str(port), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    procs = [
        subprocess.Popen([*common, "--process-id", str(i)], env=env, stdout=subprocess.PIPE, text=True)
        for i in range(count)
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a worker failed: exit codes {[p.returncode for p in procs]}")
    return float(re.search(r"SECONDS_PER_STEP=([0-9.e-]+)", outputs[0])[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    one, two = run(1, args), run(2, args)
    print(f"W2, {os.cpu_count()} CPU cores, median of {args.steps} steps")
    print(f"1 process  x 1 device: {1 / one:6.2f} steps/s")
    print(f"2 processes x 1 device: {1 / two:6.2f} steps/s (each process half of the batch of 256)")
    print(f"ratio 2 / 1: {one / two:.2f}")


if __name__ == "__main__":
    main()
