"""Data-parallel training over 8 (forced) CPU devices gives the weights of single-device training.

The run happens in a subprocess, since the device count is fixed when JAX starts. Measured: after 5 steps
(Adam 1e-2, 6 SGD inference steps, batch 64 split 8 ways) the largest weight difference is 1.7e-5 for weights
of size up to 0.33, the same for the packaged `train_supervised` and the README's hand-written loop; the
difference is the order of the cross-device sums, amplified by Adam's normalisation.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

import pcframe.utils as pxu

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scale" / "data_parallel_run.py"), "engine", "hand", "batchnorm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    match = re.search(r"^REPORT=(.*)$", run.stdout, re.MULTILINE)
    assert run.returncode == 0 and match is not None, run.stderr[-4000:]
    return json.loads(match.group(1))


@pytest.mark.parametrize("kind", ["engine", "hand", "batchnorm"])
def test_sharded_training_matches_single_device(report, kind):
    """For "batchnorm" the weights and running statistics: the batch statistics are taken across all devices."""
    assert report["devices"] == 8
    r = report[kind]
    assert r["max_abs_weight"] > 0.1, "the weights are not trivially small"
    assert r["max_abs_diff"] < 2e-4, r
    assert r["single"]["hidden_devices"] == 1 and r["single"]["hidden_shard_rows"] == [64]


def test_process_local_batches_build_the_same_global_array(report):
    assert report["process_local_same"]


def test_batchnorm_keeps_running_statistics(report):
    assert report["batchnorm"]["single"]["running_stats"] == 2


@pytest.mark.parametrize("kind", ["engine", "hand", "batchnorm"])
def test_activities_are_sharded_and_weights_replicated(report, kind):
    sharded = report[kind]["sharded"]
    assert sharded["hidden_batch_split"], sharded["hidden_spec"]
    assert sharded["hidden_devices"] == 8 and sharded["hidden_shard_rows"] == [8], "each device holds 64 / 8 rows"
    assert sharded["weights_replicated"] and sharded["weight_devices"] == 8


def test_helpers_refuse_wrong_meshes_and_batches():
    with pytest.raises(TypeError, match="needs a jax.sharding.Mesh"):
        pxu.shard_batch(jnp.zeros((4, 2)), "batch")
    with pytest.raises(ValueError, match="explicit axes"):
        pxu.replicate([], jax.make_mesh((1,), ("batch",), axis_types=(jax.sharding.AxisType.Explicit,)))
    mesh = pxu.data_mesh(jax.devices()[:1])
    with pytest.raises(ValueError, match="not 'data'"):
        pxu.shard_batch(jnp.zeros((4, 2)), mesh, axis="data")
    with pytest.raises(ValueError, match=r"shape \(\) cannot be split"):
        pxu.shard_batch(jnp.zeros(()), mesh)
    x = pxu.shard_batch(jnp.arange(6.0).reshape(3, 2), mesh)
    assert x.sharding.spec == jax.sharding.PartitionSpec("batch")
