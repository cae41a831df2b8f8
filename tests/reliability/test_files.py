"""Parameter files beyond tests/utils/test_io.py: every layer type, format upgrades, failing
writes at each stage, the umask, and a float64 round trip in a process with x64 enabled."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import equinox as eqx
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import pcframe as px
import pcframe.nn as pxnn
import pcframe.utils as pxu


class AllLayers(px.Module):
    """One of every layer type of pcframe.nn (pools and dropout hold no array: nothing to save)."""

    def __init__(self, seed):
        rkg = px.RandomKeyGenerator(seed)
        self.linear = pxnn.Linear(3, 4, rkg=rkg)
        self.conv1 = pxnn.Conv1d(2, 3, 3, rkg=rkg)
        self.conv2 = pxnn.Conv2d(2, 3, 3, rkg=rkg)
        self.conv3 = pxnn.Conv3d(2, 3, 2, rkg=rkg)
        self.deconv = pxnn.ConvTranspose(2, 3, 2, 3, rkg=rkg)
        self.generic = pxnn.Conv(2, 1, 2, (2, 3), bias=False, rkg=rkg)
        self.norm = pxnn.LayerNorm(4)
        self.norm.nn.weight.value = jnp.asarray(np.random.default_rng(seed).standard_normal(4), jnp.float32)
        self.gru = pxnn.Layer(eqx.nn.GRUCell(3, 2, key=rkg()))
        self.pools = [pxnn.MaxPool2d(2), pxnn.AvgPool2d(2)]
        self.dropout = pxnn.Dropout(0.5, rkg=rkg)
        self.tied = self.linear.nn.weight  # shared


def values(model):
    return [
        (str(p.value.dtype), p.value.shape, np.asarray(p.value).tobytes()) for p in model.parameters(pxnn.LayerParam)
    ]


def test_every_layer_type_round_trips_exactly(tmp_path):
    source, target = AllLayers(1), AllLayers(2)
    assert len(values(source)) == 17 and values(source) != values(target)
    pxu.save_params(source, tmp_path / "all")
    pxu.load_params(target, tmp_path / "all")
    assert values(target) == values(source)
    assert target.tied is target.linear.nn.weight


def test_a_file_in_the_old_format_is_upgraded_with_a_warning(tmp_path):
    source, target = AllLayers(1), AllLayers(2)
    pxu.save_params(source, tmp_path / "new")
    with np.load(tmp_path / "new.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "__pcframe__"}
    np.savez(tmp_path / "old.npz", **arrays)  # format 0: plain arrays, no header
    with pytest.warns(UserWarning, match=r"old\.npz' is in the old format 0 .* Save it again with save_params"):
        pxu.load_params(target, tmp_path / "old")
    assert values(target) == values(source)


def test_old_format_bfloat16_is_refused_by_dtype(tmp_path):
    class Half(px.Module):
        def __init__(self):
            self.w = pxnn.LayerParam(jnp.ones(3, ml_dtypes.bfloat16))

    np.savez(tmp_path / "old.npz", w=np.ones(3, np.uint16))  # what an old writer stored for bfloat16
    with pytest.warns(UserWarning, match="old format 0"):
        with pytest.raises(ValueError, match=r"w has shape \(3,\) and dtype bfloat16 in the model but \(3,\) uint16"):
            pxu.load_params(Half(), tmp_path / "old")


@pytest.mark.parametrize(
    "header, reason",
    [
        ('{"format": "1"}', "its header has no format number"),
        ("[1]", "its header has no format number"),
        ('{"format": 1, "dtypes": 3}', "its header's 'dtypes' is not a mapping"),
    ],
)
def test_malformed_header_is_refused(tmp_path, header, reason):
    np.savez(tmp_path / "model.npz", __pcframe__=np.array(header))
    with pytest.raises(pxu.UnreadableFileError, match=f"is not a readable pcframe file \\({reason}"):
        pxu.load_params(AllLayers(1), tmp_path / "model")


@pytest.mark.parametrize("stage", ["fsync", "chmod", "replace"])
def test_a_failure_at_any_stage_of_the_write_keeps_the_old_file(tmp_path, monkeypatch, stage):
    pxu.save_params(AllLayers(1), tmp_path / "model")
    old = (tmp_path / "model.npz").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, stage, disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        pxu.save_params(AllLayers(2), tmp_path / "model")
    monkeypatch.undo()
    assert (tmp_path / "model.npz").read_bytes() == old
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_file_mode_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        pxu.save_params(AllLayers(1), tmp_path / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "model.npz").st_mode) == 0o666 & ~umask


def test_float64_round_trip_with_x64_enabled_in_a_fresh_process(tmp_path):
    script = textwrap.dedent(
        f"""
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp, numpy as np
        import pcframe as px, pcframe.nn as pxnn, pcframe.utils as pxu

        class M(px.Module):
            def __init__(self, v):
                self.w = pxnn.LayerParam(jnp.asarray(v, jnp.float64))

        value = np.array([1.0 + 2.0**-50, np.pi, -1e-300])
        pxu.save_params(M(value), {str(tmp_path / "f64")!r})
        target = M(np.zeros(3))
        pxu.load_params(target, {str(tmp_path / "f64")!r})
        assert target.w.value.dtype == jnp.float64
        assert np.asarray(target.w.value).tobytes() == value.tobytes()
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
    with np.load(tmp_path / "f64.npz") as data:
        assert json.loads(str(data["__pcframe__"]))["entries"]["w"]["dtype"] == "float64"
