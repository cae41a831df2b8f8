"""`save_params` / `load_params`: exact round trips, validation before any change, atomic writes."""

import json
import os
import stat

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import pcframe as px
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.io._format import FORMAT_VERSION
from tests.conftest import x64


class Net(px.Module):
    def __init__(self, seed=0, hidden=4, extra=False):
        rkg = px.RandomKeyGenerator(seed)
        self.lin = pxnn.Linear(3, hidden, rkg=rkg)
        self.conv = pxnn.Conv2d(4, 6, kernel_size=3, rkg=rkg)
        self.norm = pxnn.LayerNorm(hidden)
        rng = np.random.default_rng(seed)
        self.norm.nn.weight.value = jnp.asarray(rng.standard_normal(hidden), jnp.float32)
        self.norm.nn.bias.value = jnp.asarray(rng.standard_normal(hidden), jnp.float32)
        self.tied = [self.lin.nn.bias]  # the same Param object in a second place
        if extra:
            self.extra = pxnn.Linear(2, 2, rkg=rkg)


def snapshot(model):
    """Every LayerParam value as (dtype, shape, bytes): a bitwise fingerprint of the model."""
    return [
        (str(np.asarray(p.value).dtype), np.shape(p.value), np.asarray(p.value).tobytes())
        for p in model.parameters(pxnn.LayerParam)
    ]


def test_round_trip_is_bitwise_exact(tmp_path):
    source, target = Net(seed=1), Net(seed=2)
    assert snapshot(source) != snapshot(target)
    written = pxu.save_params(source, tmp_path / "model")
    assert written == str(tmp_path / "model.npz")
    pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == snapshot(source)
    assert all(isinstance(p.value, jax.Array) for p in target.parameters())


def test_file_holds_one_entry_per_param_keyed_by_path(tmp_path):
    model = Net()
    pxu.save_params(model, tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]  # ".npz" not appended twice
    with np.load(tmp_path / "model.npz") as data:
        names = set(data.files)
        np.testing.assert_array_equal(data["lin.nn.weight"], np.asarray(model.lin.nn.weight.value))
        np.testing.assert_array_equal(data["norm.nn.bias"], np.asarray(model.norm.nn.bias.value))
    keys = {"lin.nn.weight", "lin.nn.bias", "conv.nn.weight", "conv.nn.bias", "norm.nn.weight", "norm.nn.bias"}
    assert names - keys == {"__pcframe__"}
    assert keys <= names  # the shared bias is stored once, under its first path


def test_shared_param_stays_shared_after_load(tmp_path):
    source, target = Net(seed=1), Net(seed=2)
    pxu.save_params(source, tmp_path / "model")
    shared = target.lin.nn.bias
    pxu.load_params(target, tmp_path / "model")
    assert target.tied[0] is target.lin.nn.bias is shared
    np.testing.assert_array_equal(target.tied[0].value, source.lin.nn.bias.value)
    target.lin.nn.bias.value = target.lin.nn.bias.value + 1.0
    assert target.tied[0].value is target.lin.nn.bias.value


def test_file_records_format_version_and_dtypes(tmp_path):
    pxu.save_params(Net(), tmp_path / "model")
    with np.load(tmp_path / "model.npz") as data:
        header = json.loads(str(data["__pcframe__"]))
    assert header["format"] == FORMAT_VERSION == 2
    assert header["kind"] == "params"
    assert header["entries"]["conv.nn.weight"] == {"dtype": "float32", "shape": [6, 4, 3, 3]}


class Typed(px.Module):
    def __init__(self, dtype, seed):
        rng = np.random.default_rng(seed)
        self.w = pxnn.LayerParam(jnp.asarray(rng.standard_normal((3, 5)).astype(dtype)))
        self.i = pxnn.LayerParam(jnp.asarray(rng.integers(-100, 100, 4), jnp.int32))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16], ids=["f32", "f16", "bf16"])
def test_dtypes_round_trip(tmp_path, dtype):
    source, target = Typed(dtype, 1), Typed(dtype, 2)
    assert source.w.value.dtype == dtype
    pxu.save_params(source, tmp_path / "typed")
    pxu.load_params(target, tmp_path / "typed")
    assert target.w.value.dtype == dtype
    assert snapshot(target) == snapshot(source)


def test_float64_round_trip(tmp_path):
    with x64():
        source, target = Typed(np.float64, 1), Typed(np.float64, 2)
        assert source.w.value.dtype == jnp.float64
        source.w.value = source.w.value + 1e-12  # needs all 64 bits to survive
        pxu.save_params(source, tmp_path / "f64")
        pxu.load_params(target, tmp_path / "f64")
        assert target.w.value.dtype == jnp.float64
        assert snapshot(target) == snapshot(source)


def test_numpy_float64_param_without_x64_round_trips(tmp_path):
    class Host(px.Module):
        def __init__(self, offset):
            self.w = pxnn.LayerParam(np.arange(3.0) + offset)

    source, target = Host(0.5), Host(0.0)
    pxu.save_params(source, tmp_path / "host")
    pxu.load_params(target, tmp_path / "host")
    np.testing.assert_array_equal(target.w.value, np.arange(3.0) + 0.5)


def test_pytree_valued_param_and_custom_filter(tmp_path):
    class State(px.Module):
        def __init__(self, offset):
            self.state = px.Param({"mu": jnp.full(2, offset), "nu": (jnp.full(3, 2 * offset),)})
            self.layer = pxnn.Linear(2, 2)

    source, target = State(1.0), State(0.0)
    only_state = pxu.m(lambda p: type(p) is px.Param)
    pxu.save_params(source, tmp_path / "state", filter=only_state)
    with np.load(tmp_path / "state.npz") as data:
        assert set(data.files) == {"__pcframe__", "state::mu", "state::nu[0]"}
    pxu.load_params(target, tmp_path / "state", filter=only_state)
    np.testing.assert_array_equal(target.state.value["mu"], np.full(2, 1.0))
    np.testing.assert_array_equal(target.state.value["nu"][0], np.full(3, 2.0))
    assert not np.array_equal(target.layer.nn.weight.value, source.layer.nn.weight.value)  # not selected


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at .*nothing.npz"):
        pxu.load_params(Net(), tmp_path / "nothing")


def test_missing_key_names_it_and_leaves_the_model_untouched(tmp_path):
    pxu.save_params(Net(seed=1), tmp_path / "small")
    target = Net(seed=2, extra=True)  # `extra` comes last: everything before it would load fine
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"has no entry for extra\.nn\.weight, which Net has\. Was it saved"):
        pxu.load_params(target, tmp_path / "small")
    assert snapshot(target) == before


def test_wrong_shape_names_it_and_leaves_the_model_untouched(tmp_path):
    pxu.save_params(Net(seed=1, hidden=4), tmp_path / "model")
    target = Net(seed=2, hidden=5)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"lin\.nn\.weight has shape \(5, 3\) .* but \(4, 3\)"):
        pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == before


def test_wrong_dtype_names_it_and_leaves_the_model_untouched(tmp_path):
    pxu.save_params(Net(seed=1), tmp_path / "model")
    target = Net(seed=2)
    target.norm.nn.bias.value = target.norm.nn.bias.value.astype(jnp.float16)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"norm\.nn\.bias has shape \(4,\) and dtype float16 .* float32"):
        pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == before


def test_extra_key_is_refused_when_strict(tmp_path):
    source = Net(seed=1, extra=True)
    pxu.save_params(source, tmp_path / "big")
    target = Net(seed=2)
    before = snapshot(target)
    with pytest.raises(
        ValueError, match=r"entries the model does not have: \['extra\.nn\.bias', 'extra\.nn\.weight'\]"
    ):
        pxu.load_params(target, tmp_path / "big")
    assert snapshot(target) == before
    pxu.load_params(target, tmp_path / "big", strict=False)
    assert snapshot(target) == snapshot(source)[:6]


def test_param_without_value_is_refused(tmp_path):
    pxu.save_params(Net(seed=1), tmp_path / "model")
    target = Net(seed=2)
    target.conv.nn.bias.value = None
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"conv\.nn\.bias has no value to load into"):
        pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == before


def _corrupt(path, kind):
    raw = path.read_bytes()
    data = {
        "truncated": raw[: len(raw) // 2],
        "truncated-tail": raw[:-20],
        "garbage": b"this is not a parameter file" * 10,
        "empty": b"",
        "zip-magic-only": b"PK\x03\x04" + b"\x00" * 30,
    }[kind]
    path.write_bytes(data)


@pytest.mark.parametrize("kind", ["truncated", "truncated-tail", "garbage", "empty", "zip-magic-only"])
def test_unreadable_file_is_a_value_error(tmp_path, kind):
    pxu.save_params(Net(seed=1), tmp_path / "model")
    _corrupt(tmp_path / "model.npz", kind)
    target = Net(seed=2)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"model\.npz' is not a readable pcframe file"):
        pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == before


def test_npy_file_under_an_npz_name_is_a_value_error(tmp_path):
    with open(tmp_path / "model.npz", "wb") as file:
        np.save(file, np.ones(3))
    with pytest.raises(ValueError, match="is not a readable pcframe file"):
        pxu.load_params(Net(), tmp_path / "model")


@pytest.mark.parametrize("header", ["not json", '{"version": 1}'], ids=["not-json", "no-format"])
def test_corrupt_header_is_a_clear_value_error(tmp_path, header):
    np.savez(tmp_path / "model.npz", __pcframe__=np.array(header))
    with pytest.raises(ValueError, match="is not a readable pcframe file"):
        pxu.load_params(Net(), tmp_path / "model", strict=False)


def test_newer_format_is_refused(tmp_path):
    source = Net(seed=1)
    pxu.save_params(source, tmp_path / "model")
    with np.load(tmp_path / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["__pcframe__"]))
    header["format"] = FORMAT_VERSION + 1
    arrays["__pcframe__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "model.npz", **arrays)
    target = Net(seed=2)
    before = snapshot(target)
    with pytest.raises(
        ValueError,
        match=rf"written by a newer pcframe: format {FORMAT_VERSION + 1}, this one reads up to {FORMAT_VERSION}\)\. Upgrade",
    ):
        pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == before


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    pxu.save_params(Net(seed=1), tmp_path / "model")
    old = (tmp_path / "model.npz").read_bytes()
    listing = sorted(os.listdir(tmp_path))

    def broken_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        pxu.save_params(Net(seed=2), tmp_path / "model")
    with pytest.raises(OSError, match="disk full"):
        pxu.save_params(Net(seed=2), tmp_path / "fresh")
    assert (tmp_path / "model.npz").read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == listing
    monkeypatch.undo()
    target = Net(seed=3)
    pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == snapshot(Net(seed=1))


def test_save_overwrites_an_existing_file(tmp_path):
    pxu.save_params(Net(seed=1), tmp_path / "model")
    pxu.save_params(Net(seed=2), tmp_path / "model")
    target = Net(seed=3)
    pxu.load_params(target, tmp_path / "model")
    assert snapshot(target) == snapshot(Net(seed=2))
    assert os.listdir(tmp_path) == ["model.npz"]


def test_saved_file_gets_ordinary_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        pxu.save_params(Net(), tmp_path / "model")
        (tmp_path / "plain.bin").write_bytes(b"")
    finally:
        os.umask(old_umask)
    mode = stat.S_IMODE(os.stat(tmp_path / "model.npz").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.bin").st_mode) == 0o644
