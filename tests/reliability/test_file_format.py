"""The file reader against damaged and crafted files, and saves against awkward paths.

Every corruption is refused with `UnreadableFileError` before anything is allocated and the model stays
untouched; every dtype JAX holds and typed PRNG keys round-trip; saves keep permissions and clean up after
killed saves."""

import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
import zipfile

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pcframe as px
import pcframe.nn as pxnn
import pcframe.utils as pxu
from tests.conftest import x64


class Small(px.Module):
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.w = pxnn.LayerParam(jnp.asarray(rng.standard_normal((3, 4)), jnp.float32))
        self.b = pxnn.LayerParam(jnp.asarray(rng.standard_normal(4), jnp.float32))


def values(model):
    return [np.asarray(p.value).tobytes() for p in model.parameters(pxnn.LayerParam)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("format")


@pytest.fixture(scope="module")
def saved(folder):
    pxu.save_params(Small(1), folder / "source")
    return (folder / "source.npz").read_bytes()


def outcome(data, folder, **kw):
    """Load `data` into a fresh model: 'loaded' (bit-exact) or 'refused' (the file error, model untouched)."""
    path = folder / "probe.npz"
    path.write_bytes(data)
    target = Small(2)
    before = values(target)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pxu.load_params(target, path, **kw)
    except pxu.UnreadableFileError as error:
        assert values(target) == before
        assert error.path == str(path) and error.reason
        return "refused"
    assert values(target) == values(Small(1))
    return "loaded"


# ---- property tests: random damage is loaded bit-exactly or refused with the one file error


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_bit_flip_is_loaded_exactly_or_refused(folder, saved, data):
    bit = data.draw(st.integers(0, 8 * len(saved) - 1))
    damaged = bytearray(saved)
    damaged[bit // 8] ^= 1 << (bit % 8)
    outcome(bytes(damaged), folder)


def test_every_byte_flipped_in_turn(folder, saved):
    results = {"loaded": 0, "refused": 0}
    for i in range(len(saved)):
        damaged = bytearray(saved)
        damaged[i] ^= 1 << (i % 8)
        results[outcome(bytes(damaged), folder)] += 1
    assert results["refused"] > len(saved) // 2  # most bytes matter; timestamps and spare fields do not


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_truncation_or_extension_is_refused(folder, saved, data):
    cut = data.draw(st.integers(0, len(saved) - 1))
    assert outcome(saved[:cut], folder) == "refused"
    tail = data.draw(st.binary(min_size=1, max_size=64))
    assert outcome(saved[:cut] + tail, folder) in ("loaded", "refused")


def npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def valid_header():
    entries = {"w": {"dtype": "float32", "shape": [3, 4]}, "b": {"dtype": "float32", "shape": [4]}}
    return {"format": 2, "kind": "params", "entries": entries}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["whole", "format", "kind", "entries", "w", "w.dtype", "w.shape", "objects"]), json_values)
def test_crafted_headers_are_loaded_exactly_or_refused(folder, field, value):
    source = Small(1)
    header = valid_header()
    if field == "whole":
        header = value
    elif field.startswith("w"):
        target = header["entries"]["w"]
        if "." in field:
            target[field.split(".")[1]] = value
        else:
            header["entries"]["w"] = value
    else:
        header[field] = value
    arrays = {"w": np.asarray(source.w.value), "b": np.asarray(source.b.value)}
    text = json.dumps(header)
    outcome(npz(__pcframe__=np.array(text), **arrays), folder)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_npy_headers_are_refused(folder, raw):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__pcframe__.npy", npz_member(np.array(json.dumps(valid_header()))))
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00" + raw)
        archive.writestr("b.npy", npz_member(np.asarray(Small(1).b.value)))
    assert outcome(buffer.getvalue(), folder) == "refused"


def npz_member(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ---- memory stays bounded on crafted files


def crafted(entries, header=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__pcframe__.npy", npz_member(np.array(json.dumps(header or valid_header()))))
        for name, raw in entries.items():
            archive.writestr(name + ".npy", raw)
    return buffer.getvalue()


def peak_while(call):
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def huge_npy(shape):
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape!r}, }}"
    header = header + " " * (63 - len(header) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


@pytest.mark.parametrize("with_header", [True, False], ids=["format-2", "no-header"])
def test_a_small_file_declaring_128_tib_is_refused_without_allocating(folder, with_header):
    b = npz_member(np.asarray(Small(1).b.value))
    entries = {"w": huge_npy((2**45,)), "b": b}
    data = crafted(entries) if with_header else zipped(entries)
    assert len(data) < 1500
    result, peak = peak_while(lambda: outcome(data, folder))
    assert result == "refused" and peak < 2**20


def zipped(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, raw in entries.items():
            archive.writestr(name + ".npy", raw)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb_file(folder):
    source = Small(1)
    header = valid_header()
    header["entries"]["bomb"] = {"dtype": "uint8", "shape": [64 * 2**20]}
    path = folder / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__pcframe__.npy", npz_member(np.array(json.dumps(header))))
        archive.writestr("w.npy", npz_member(np.asarray(source.w.value)))
        archive.writestr("b.npy", npz_member(np.asarray(source.b.value)))
        with archive.open("bomb.npy", "w", force_zip64=True) as member:
            head = huge_npy((64 * 2**20,)).replace(b"<f4", b"|u1")
            member.write(head)
            for _ in range(64):
                member.write(bytes(2**20))
    assert os.path.getsize(path) < 200_000
    return path


def test_a_decompression_bomb_the_model_does_not_have_is_never_inflated(bomb_file):
    target = Small(2)
    with pytest.raises(ValueError, match=r"holds entries the model does not have: \['bomb'\]\. Use strict=False"):
        peak_while(lambda: pxu.load_params(target, bomb_file))
    _, peak = peak_while(lambda: pxu.load_params(target, bomb_file, strict=False))
    assert values(target) == values(Small(1)) and peak < 2**20


def test_a_bomb_under_a_model_entry_name_is_refused_within_bounded_memory(folder):
    with zipfile.ZipFile(folder / "disguised.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__pcframe__.npy", npz_member(np.array(json.dumps(valid_header()))))
        archive.writestr("b.npy", npz_member(np.asarray(Small(1).b.value)))
        with archive.open("w.npy", "w", force_zip64=True) as member:
            member.write(npz_member(np.zeros((3, 4), np.float32)))
            for _ in range(32):
                member.write(bytes(2**20))
    result, peak = peak_while(lambda: outcome((folder / "disguised.npz").read_bytes(), folder))
    assert result == "refused" and peak < 2**20


# ---- every dtype JAX holds, and typed keys


def dtypes_jax_holds():
    names = ["bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float16", "float32", "complex64"]
    names += [n for n in dir(ml_dtypes) if n.startswith(("bfloat", "float", "int", "uint"))]
    held = []
    for name in dict.fromkeys(names):
        dtype = np.dtype(getattr(ml_dtypes, name, None) or name)
        try:
            if jnp.zeros(2, dtype).dtype == dtype:
                held.append(name)
        except (TypeError, ValueError, RuntimeError):
            continue
    return held


def sample(dtype, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.integers(0, 2, (3, 5)).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (3, 5), dtype=dtype, endpoint=True)
    if "int" in dtype.name:  # ml_dtypes' narrow ints
        info = ml_dtypes.iinfo(dtype)
        return rng.integers(int(info.min), int(info.max) + 1, (3, 5)).astype(dtype)
    scale = 4.0 if dtype.kind != "c" else 4.0 + 2.0j
    return (rng.standard_normal((3, 5)) * scale).astype(dtype)


class Holder(px.Module):
    def __init__(self, value):
        self.w = pxnn.LayerParam(jnp.asarray(value))


@pytest.mark.parametrize("name", dtypes_jax_holds())
def test_every_dtype_jax_holds_round_trips_exactly(tmp_path, name):
    dtype = np.dtype(getattr(ml_dtypes, name, None) or name)
    source, target = Holder(sample(dtype, 1)), Holder(sample(dtype, 2))
    assert source.w.value.dtype == dtype
    pxu.save_params(source, tmp_path / "m")
    pxu.load_params(target, tmp_path / "m")
    assert target.w.value.dtype == dtype and values(target) == values(source)


def test_the_64_bit_dtypes_round_trip_with_x64(tmp_path):
    with x64():
        for dtype in (np.float64, np.int64, np.uint64, np.complex128):
            source, target = Holder(sample(np.dtype(dtype), 1)), Holder(sample(np.dtype(dtype), 2))
            pxu.save_params(source, tmp_path / "m")
            pxu.load_params(target, tmp_path / "m")
            assert target.w.value.dtype == dtype and values(target) == values(source)


@pytest.mark.parametrize("name", ["float8_e5m2", "float8_e4m3fn", "int4", "bfloat16"])
def test_files_of_format_1_holding_ml_dtypes_are_recovered(tmp_path, name):
    dtype = np.dtype(getattr(ml_dtypes, name))
    array = sample(dtype, 1)
    stored = array.view(np.uint16) if name == "bfloat16" else array  # what the format-1 writer stored
    header = json.dumps({"format": 1, "dtypes": {"w": name}})
    np.savez(tmp_path / "old.npz", __pcframe__=np.array(header), w=stored)
    target = Holder(sample(dtype, 2))
    pxu.load_params(target, tmp_path / "old")
    assert np.asarray(target.w.value).tobytes() == array.tobytes()


class Keyed(px.Module):
    def __init__(self, seed, impl=None):
        self.key = px.Param(jax.random.split(jax.random.key(seed, impl=impl), 3))
        self.legacy = px.Param(jax.random.PRNGKey(seed))


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_typed_prng_keys_round_trip_in_a_checkpoint(tmp_path, impl):
    source, target = Keyed(1, impl), Keyed(2, impl)
    pxu.save_checkpoint(tmp_path / "ck", model=source)
    pxu.load_checkpoint(tmp_path / "ck", model=target)
    assert target.key.value.dtype == source.key.value.dtype
    assert str(jax.random.key_impl(target.key.value)) == impl
    np.testing.assert_array_equal(jax.random.key_data(target.key.value), jax.random.key_data(source.key.value))
    np.testing.assert_array_equal(target.legacy.value, source.legacy.value)


def test_a_key_of_another_implementation_is_named(tmp_path):
    pxu.save_checkpoint(tmp_path / "ck", model=Keyed(1, "rbg"))
    with pytest.raises(ValueError, match=r"model\.key has shape \(3,\) and dtype key<fry> in the model but .*rbg"):
        pxu.load_checkpoint(tmp_path / "ck", model=Keyed(2))


# ---- saves


def test_paths_may_be_str_bytes_or_path_like(tmp_path):
    for path in (str(tmp_path / "a"), os.fsencode(tmp_path / "b"), tmp_path / "c"):
        written = pxu.save_params(Small(1), path)
        target = Small(2)
        pxu.load_params(target, path)
        assert values(target) == values(Small(1)) and isinstance(written, str)
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz", "c.npz"]


def test_a_folder_is_refused_and_the_advice_works(tmp_path):
    (tmp_path / "runs").mkdir()
    for given_path in (str(tmp_path / "runs") + os.sep, tmp_path / "runs"):
        with pytest.raises(
            IsADirectoryError, match=r"runs/?' is a folder; give a file name inside it, e.g. '.*model\.npz'"
        ):
            pxu.save_params(Small(1), given_path)
    assert os.listdir(tmp_path / "runs") == []
    pxu.save_params(Small(1), os.path.join(tmp_path / "runs", "model.npz"))
    assert os.listdir(tmp_path / "runs") == ["model.npz"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_a_resave_keeps_the_permission_bits(tmp_path, mode):
    pxu.save_params(Small(1), tmp_path / "m")
    os.chmod(tmp_path / "m.npz", mode)
    pxu.save_params(Small(2), tmp_path / "m")
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == mode


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(handle):
        synced.append(stat.S_ISDIR(os.fstat(handle).st_mode))
        real_fsync(handle)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    pxu.save_params(Small(1), tmp_path / "m")
    assert synced == [False, True]


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_of_dead_saves_are_removed_and_live_ones_kept(tmp_path):
    from pcframe.io._atomic import _HOST

    dead = tmp_path / f".m.npz.pcframe-{_HOST}-{dead_pid()}-abc123.tmp"
    live = tmp_path / f".m.npz.pcframe-{_HOST}-{os.getpid()}-def456.tmp"
    other_target = tmp_path / f".other.npz.pcframe-{_HOST}-{dead_pid()}-ghi789.tmp"
    for path in (dead, live, other_target):
        path.write_bytes(b"half a file")
    pxu.save_params(Small(1), tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz", live.name, other_target.name])


def test_a_save_killed_mid_write_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path):
    pxu.save_params(Small(1), tmp_path / "m")
    old = (tmp_path / "m.npz").read_bytes()
    script = textwrap.dedent(
        f"""
        import os, time, numpy as np
        import pcframe as px, pcframe.utils as pxu
        from tests.reliability.test_file_format import Small
        real = np.savez
        def slow(file, *a, **k):
            real(file, *a, **k)
            file.flush()
            print("written", flush=True)
            time.sleep(60)
        np.savez = slow
        pxu.save_params(Small(3), {str(tmp_path / "m")!r})
        """
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=os.getcwd())
    assert process.stdout.readline().strip() == b"written"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    leftovers = [n for n in os.listdir(tmp_path) if n != "m.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".m.npz.pcframe-")
    assert (tmp_path / "m.npz").read_bytes() == old
    pxu.save_params(Small(2), tmp_path / "m")
    assert os.listdir(tmp_path) == ["m.npz"]
