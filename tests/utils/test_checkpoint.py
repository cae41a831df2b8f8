"""Resuming from a checkpoint in a fresh process equals training without interruption (bitwise on CPU)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, optax, numpy as np
    import pcframe as px, pcframe.utils as pxu, pcframe.nn as pxnn, pcframe.inference as pxi
    from pcframe.models import PCMLP

    mode, start, stop, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    checkpoint_after = 4
    px.RKG.seed(0)
    model = PCMLP([6, 12, 3], free_input=False)
    optim_w = pxu.Optim(optax.adam(1e-2), pxu.Mask(pxnn.LayerParam)(model))
    if mode == "resume":
        pxu.load_checkpoint(f"{folder}/checkpoint", model=model, optim_w=optim_w, rkg=px.RKG)
    data = jax.random.normal(jax.random.PRNGKey(42), (10, 16, 9))
    inference = pxi.DiscreteInference(optax.sgd(0.5), 4)
    for i in range(start, stop):
        x, y = data[i, :, :6], data[i, :, 6:]
        x = x + 0.1 * jax.random.normal(px.RKG(), x.shape)   # uses (and advances) the global key
        pxi.train_supervised(model, optim_w, x, y, inference=inference)
        if mode == "full" and i + 1 == checkpoint_after:
            pxu.save_checkpoint(f"{folder}/checkpoint", model=model, optim_w=optim_w, rkg=px.RKG)
    np.savez(f"{folder}/{mode}.npz", *[np.asarray(p.value) for p in model.parameters(pxnn.LayerParam)])
    """
)


def _run(tmp_path, mode, start, stop):
    subprocess.run([sys.executable, "-c", SCRIPT, mode, str(start), str(stop), str(tmp_path)], check=True)
    with np.load(tmp_path / f"{mode}.npz") as data:
        return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.slow
def test_resume_in_fresh_process_equals_uninterrupted(tmp_path):
    uninterrupted = _run(tmp_path, "full", 0, 10)
    resumed = _run(tmp_path, "resume", 4, 10)
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_array_equal(a, b)
