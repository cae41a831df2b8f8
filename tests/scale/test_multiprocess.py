"""Training, files and faults across two processes on localhost (JAX's multi-controller runtime, gloo collectives).

Four launches of tests/scale/multiprocess_run.py and tutorials/multi_host.py (see the runner's docstring):
a pair (equal training, sharded weights, a checkpoint, a save interrupted by a death), one process with two
devices (the references, 2 -> 1 resume, the tutorial uninterrupted), a pair (1 -> 2 resume, the tutorial with a
process killed during training) and a pair started with docs/multi-host.md's command (the restart from the last
checkpoint). Measured: 2 processes x 1 device equal 1 process x 2 devices exactly (a sum of two partial sums is
the same in either runtime) and 1 process x 1 device to 3e-7 after 10 steps; the survivor of a death stops with
pcframe's message within a second of it when the dead process runs on the same host.
"""

import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "scale" / "multiprocess_run.py"
TUTORIAL = ROOT / "tutorials" / "multi_host.py"
DOCS = ROOT / "docs" / "multi-host.md"
TIMEOUT = 300
SHARED = {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
"""The launches share a compilation cache (its folder set in `runs`): the restart reuses the killed pair's programs."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(commands, env=None):
    """Run the commands at once; returns per command (exit code, stdout, stderr, time.time() at its exit), and the start."""
    env = {k: v for k, v in dict(os.environ, **SHARED, **(env or {})).items() if v}
    start = time.time()
    procs = [
        subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    results = [None] * len(procs)

    def wait(i):
        try:
            out, err = procs[i].communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            procs[i].kill()
            out, err = procs[i].communicate()
        results[i] = (procs[i].returncode, out, err, time.time())

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(procs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [(rc, out, err, end) for rc, out, err, end in results], start


def shown(results) -> str:
    return "\n".join(
        f"--- process {i}: exit {rc}\n{out[-3000:]}\n{err[-3000:]}" for i, (rc, out, err, _) in enumerate(results)
    )


def pair(role_args):
    port = free_port()
    return launch([role_args(i, port) for i in range(2)], {"XLA_FLAGS": ""})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("multiprocess")
    SHARED["JAX_COMPILATION_CACHE_DIR"] = str(out / "compilation_cache")
    runs = {"out": out, "start": time.time()}
    runs["pair"], _ = pair(lambda i, p: [sys.executable, RUNNER, "pair", out, "--process-id", str(i), "--port", str(p)])
    assert [r[0] for r in runs["pair"]] == [1, 9], shown(runs["pair"])
    runs["single"], _ = launch(
        [[sys.executable, RUNNER, "single", out]], {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    )
    assert runs["single"][0][0] == 0, shown(runs["single"])
    runs["kill"], _ = pair(
        lambda i, p: [sys.executable, RUNNER, "killstep", out, "--process-id", str(i), "--port", str(p)]
    )
    assert [r[0] for r in runs["kill"]] == [1, 9], shown(runs["kill"])
    command = docs_command()
    runs["restart"], _ = pair(
        lambda i, p: [
            sys.executable,
            *[a.format(i=i, port=p) for a in command],
            "--steps",
            "10",
            "--shard",
            "--out",
            str(out / "tutorial_killed"),
        ]
    )
    assert [r[0] for r in runs["restart"]] == [0, 0], shown(runs["restart"])
    ends = [runs["start"], *(max(r[3] for r in runs[k]) for k in ("pair", "single", "kill", "restart"))]
    print("seconds per launch (pair, single, kill, restart):", [round(b - a, 1) for a, b in zip(ends, ends[1:])])
    return runs


def docs_command():
    """The launch in docs/multi-host.md, ``python tutorials/multi_host.py --process-id 0 ... --port 12345``."""
    text = DOCS.read_text()
    line = re.search(r"^python (tutorials/multi_host\.py --process-id 0 --num-processes 2 --port \d+)", text, re.M)
    assert line is not None, "docs/multi-host.md shows the two-process launch"
    args = line[1].split()
    args[args.index("--process-id") + 1], args[args.index("--port") + 1] = "{i}", "{port}"
    return args


def arrays(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


@pytest.mark.parametrize("kind", ["packaged", "hand", "sharded"])
def test_two_processes_train_as_one(runs, kind):
    out = runs["out"]
    two_procs, two_devices = arrays(out / f"pair_{kind}.npz"), arrays(out / f"two_{kind}.npz")
    one = arrays(out / f"one_{'packaged' if kind == 'sharded' else kind}.npz")  # one device: nothing to shard
    assert max(float(np.max(np.abs(w))) for w in one) > 0.1
    assert max_diff(two_procs, two_devices) == 0.0, "2 processes x 1 device == 1 process x 2 devices, bit for bit"
    assert max_diff(two_procs, one) < 1e-6


def test_random_keys_agree_and_rows_are_split(runs):
    keys, rows = arrays(runs["out"] / "pair_info.npz")
    assert np.array_equal(keys[0], keys[1]), "RKG holds the same key in both processes"
    assert rows.tolist() == [16], "each process holds 16 of the sharded layer's 32 rows"


def test_checkpoints_resume_across_process_counts(runs):
    out = runs["out"]
    assert max_diff(arrays(out / "resume_2to1.npz"), arrays(out / "pair_sharded.npz")) == 0.0
    assert max_diff(arrays(out / "resume_1to2.npz"), arrays(out / "two_sharded.npz")) == 0.0
    assert len(arrays(out / "ckpt_2p_on_one_device.npz")) == 6, "a sharded checkpoint loads into one device"


def test_a_death_during_a_save_leaves_the_previous_file(runs):
    out = runs["out"]
    assert (out / "kill_save.npz").read_bytes() == (out / "kill_save_expected.npz").read_bytes()
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    err = runs["pair"][0][2]
    assert "pcframe: process 0 of 2 stops: process 1 of 2 has died" in err, shown(runs["pair"])
    assert "last checkpoint" in err


def test_a_death_during_training_stops_the_survivor_with_a_message(runs):
    (rc0, _, err0, end0), (rc1, out1, _, _) = runs["kill"]
    died = float(re.search(r"DIES ([0-9.]+)", out1)[1])
    assert "pcframe: process 0 of 2 stops: process 1 of 2 has died" in err0, shown(runs["kill"])
    assert end0 - died < 5 + 10, f"the survivor stopped {end0 - died:.1f} s after the death"
    print(f"survivor stopped {end0 - died:.2f} s after the death")


def test_restart_from_the_last_checkpoint_equals_the_uninterrupted_run(runs):
    out = runs["out"]
    restarted = np.load(out / "tutorial_killed" / "params.npz")
    reference = np.load(out / "tutorial_ref" / "params.npz")
    assert sorted(restarted.files) == sorted(reference.files)
    for name in reference.files:
        assert np.array_equal(restarted[name], reference[name]), name
    assert "step 6:" in runs["restart"][0][1] and "step 5:" not in runs["restart"][0][1], "resumed after step 5"


def test_docs_show_the_tutorial_and_the_scheduler_form():
    text = DOCS.read_text()
    assert "jax.distributed.initialize()" in text or "initialize_distributed()" in text
    assert "srun" in text
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert line.split("  #")[0].rstrip() in TUTORIAL.read_text(), f"docs line not in the tutorial: {line}"


def test_shard_params_refuses_what_it_cannot_split():
    import jax
    from jax.sharding import PartitionSpec

    import pcframe.utils as pxu
    from pcframe.models import PCMLP

    model, mesh = PCMLP([3, 5, 2]), pxu.data_mesh(jax.devices()[:1])
    with pytest.raises(TypeError, match="PartitionSpec"):
        pxu.shard_params(model, mesh, ("batch",))
    with pytest.raises(ValueError, match=r"shape \(5,\) cannot be split"):
        pxu.shard_params(model.layers[0].nn.bias, mesh, PartitionSpec("batch", None))
    pxu.shard_params(model.layers[0], mesh, PartitionSpec("batch"))
    assert model.layers[0].nn.weight.value.sharding.spec == PartitionSpec("batch")
