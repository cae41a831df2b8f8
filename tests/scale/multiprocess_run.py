"""Run by tests/scale/test_multiprocess.py: one role of the multi-process checks, results written to OUTDIR.

Roles (``python multiprocess_run.py ROLE OUTDIR [--process-id I --port P]``):

- ``pair`` (2 processes x 1 device): 10 steps of the packaged step, the hand-written step and the packaged step
  with the first layer's rows sharded; a checkpoint of the sharded run at step 5 (``ckpt_2p``); the random keys of
  both processes; then process 1 dies in the middle of a save (the previous file must stay intact).
- ``single`` (1 process, 2 devices): the same three runs on 1 device and on 2; the sharded run resumed from
  ``ckpt_2p`` (2 -> 1) and its own checkpoint at step 5 (``ckpt_1p``); the tutorial, uninterrupted.
- ``killstep`` (2 processes): the sharded run resumed from ``ckpt_1p`` (1 -> 2); then the tutorial, where
  process 1 dies after step 6.
"""

import argparse
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.join(ROOT, "tutorials")]

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from data_parallel_run import BATCH, FREE, INFERENCE, SIZES, data, energy, forward  # noqa: E402
from jax.sharding import PartitionSpec  # noqa: E402

import pcframe as px  # noqa: E402
import pcframe.functional as pxf  # noqa: E402
import pcframe.inference as pxi  # noqa: E402
import pcframe.nn as pxnn  # noqa: E402
import pcframe.pc as pxc  # noqa: E402
import pcframe.utils as pxu  # noqa: E402
from pcframe.io._distributed import host_value  # noqa: E402
from pcframe.models import PCMLP  # noqa: E402

STEPS, HEARTBEAT = 10, 5


@pxf.jit(overwrites=pxc.VodeParam)
def hand_written_step(x, y, *, model, optim_w):
    """The README's step: feedforward start, 6 activity steps (each sample its own), one weight step."""
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
    optim_h = pxu.Optim(optax.sgd(0.2), pxu.Mask(pxc.VodeParam)(model))
    for _ in range(6):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            grads = pxf.grad(pxu.Mask(FREE, (False, True)))(energy)(x, model=model)
        optim_h.step(model, grads["model"], True)
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        grads = pxf.grad(pxu.Mask(pxnn.LayerParam, (False, True)))(energy)(x, model=model)
    optim_w.step(model, grads["model"])


def build(kind, mesh):
    px.RKG.seed(0)
    model = PCMLP(SIZES, act_fn=jax.nn.tanh)
    pxu.replicate([model, px.RKG], mesh)
    if kind == "sharded":
        pxu.shard_params(model.layers[0], mesh, PartitionSpec("batch"))  # the first 32 hidden units
        pxu.shard_params(model.layers[1].nn.weight, mesh, PartitionSpec(None, "batch"))
    optim_w = pxu.Optim(optax.adam(1e-2), pxu.Mask(pxnn.LayerParam)(model))
    return model, optim_w


def weights(model):
    """Every weight as a NumPy array (sharded ones gathered: every process calls this)."""
    return [np.asarray(host_value(p.value)) for p in pxu.Mask(pxnn.LayerParam)(model).parameters()]


def train(kind, mesh, start=0, resume=None, checkpoint=None):
    """Steps `start`..STEPS of `kind` on `mesh`; optionally resumed from / checkpointed at step 5. Returns weights."""
    model, optim_w = build(kind, mesh)
    if resume is not None:
        pxu.load_checkpoint(resume, model=model, optim_w=optim_w, rkg=px.RKG)
    xs, ys = data()
    xs, ys = np.concatenate([xs, xs]), np.concatenate([ys, ys])  # 10 batches
    part = BATCH // jax.process_count()
    rows = slice(jax.process_index() * part, (jax.process_index() + 1) * part)
    for step in range(start, STEPS):
        x, y = pxu.shard_batch((xs[step][rows], ys[step][rows]), mesh, process_local=True)
        if kind == "hand":
            hand_written_step(x, y, model=model, optim_w=optim_w)
        else:
            pxi.train_supervised(model, optim_w, x, y, inference=INFERENCE)
        if checkpoint is not None and step + 1 == 5:
            pxu.save_checkpoint(checkpoint, model=model, optim_w=optim_w, rkg=px.RKG)
    return model, optim_w, weights(model)


def save(out, name, arrays):
    if jax.process_index() == 0:
        np.savez(os.path.join(out, name), *arrays)


def pair(out):
    mesh = pxu.data_mesh()
    for kind in ("packaged", "hand", "sharded"):
        model, optim_w, w = train(kind, mesh, checkpoint=os.path.join(out, "ckpt_2p") if kind == "sharded" else None)
        save(out, f"pair_{kind}.npz", w)
    shard = model.layers[0].nn.weight.value
    key = px.RKG.key.value
    keys = jax.experimental.multihost_utils.process_allgather(np.asarray(key.addressable_data(0)))
    save(out, "pair_info.npz", [keys, np.array([s.data.shape[0] for s in shard.addressable_shards])])
    # a save that process 1 leaves in the middle: the file written before must stay as it was
    path = os.path.join(out, "kill_save.npz")
    pxu.save_checkpoint(path, model=model, optim_w=optim_w, rkg=px.RKG)
    if jax.process_index() == 0:
        shutil.copy(path, os.path.join(out, "kill_save_expected.npz"))
    else:
        die_on_call(2)
    print("SAVING", flush=True)
    pxu.save_checkpoint(path, model=model, optim_w=optim_w, rkg=px.RKG)
    print("SAVED", flush=True)


def die_on_call(n):
    """Make this process die inside a save: on the `n`-th value it prepares for the file."""
    import pcframe.io._params as params

    calls, original = [0], params.host_value

    def dying(leaf):
        calls[0] += 1
        if calls[0] == n:
            print(f"DIES {time.time()}", flush=True)
            os._exit(9)
        return original(leaf)

    params.host_value = dying


def single(out):
    mesh1, mesh2 = pxu.data_mesh(jax.devices()[:1]), pxu.data_mesh()
    for kind in ("packaged", "hand", "sharded"):
        if kind != "sharded":  # on one device the sharded run is the packaged one
            save(out, f"one_{kind}.npz", train(kind, mesh1)[2])
        checkpoint = os.path.join(out, "ckpt_1p") if kind == "sharded" else None
        save(out, f"two_{kind}.npz", train(kind, mesh2, checkpoint=checkpoint)[2])
    save(out, "resume_2to1.npz", train("sharded", mesh2, start=5, resume=os.path.join(out, "ckpt_2p"))[2])
    model, optim_w = build("packaged", mesh1)  # a sharded checkpoint into one device
    pxu.load_checkpoint(os.path.join(out, "ckpt_2p"), model=model, optim_w=optim_w, rkg=px.RKG)
    save(out, "ckpt_2p_on_one_device.npz", weights(model))
    import multi_host

    multi_host.main(["--steps", "10", "--shard", "--out", os.path.join(out, "tutorial_ref")])


def killstep(out):
    save(out, "resume_1to2.npz", train("sharded", pxu.data_mesh(), start=5, resume=os.path.join(out, "ckpt_1p"))[2])
    import multi_host

    def after_step(step):
        if step == 6 and jax.process_index() == 1:
            print(f"DIES {time.time()}", flush=True)
            os._exit(9)

    argv = ["--process-id", str(jax.process_index()), "--num-processes", "2", "--steps", "10", "--shard"]
    multi_host.main([*argv, "--out", os.path.join(out, "tutorial_killed")], after_step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role")
    parser.add_argument("out")
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.role != "single":
        pxu.initialize_distributed(f"127.0.0.1:{args.port}", 2, args.process_id, heartbeat_timeout_seconds=HEARTBEAT)
    {"pair": pair, "single": single, "killstep": killstep}[args.role](args.out)


if __name__ == "__main__":
    main()
