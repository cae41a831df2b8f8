"""A second error catalogue: bad files, paths and constructor or step arguments, each refused with a message
that names the object and says what to do; advice that names a keyword or a call is then followed."""

import io
import json
import math
import zipfile

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP, PCVGG

SGD = pxi.DiscreteInference(optax.sgd(0.1), 2)
UNREADABLE = pxu.UnreadableFileError


class Small(px.Module):
    def __init__(self, seed=0, shape=(3, 4), dtype=jnp.float32):
        rng = np.random.default_rng(seed)
        self.w = pxnn.LayerParam(jnp.asarray(rng.standard_normal(shape), dtype))
        self.b = pxnn.LayerParam(jnp.asarray(rng.standard_normal(4), jnp.float32))


def values(model):
    return [np.asarray(p.value).tobytes() for p in model.parameters(pxnn.LayerParam)]


def member(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def header(**changes):
    entries = {"w": {"dtype": "float32", "shape": [3, 4]}, "b": {"dtype": "float32", "shape": [4]}}
    return json.dumps({"format": 2, "kind": "params", "entries": entries, **changes})


def archive(tmp, members, compression=zipfile.ZIP_STORED):
    """Write a zip of raw members (name -> bytes) and load it into a fresh Small."""
    with zipfile.ZipFile(tmp / "m.npz", "w", compression) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    pxu.load_params(Small(2), tmp / "m")


def good(**override):
    source = Small(1)
    members = {
        "__pcframe__.npy": member(np.array(header())),
        "w.npy": member(np.asarray(source.w.value)),
        "b.npy": member(np.asarray(source.b.value)),
    }
    return {**members, **override}


def patched(tmp, offset_of, change):
    """Save Small(1), apply `change(bytearray, offset)` at `offset_of(bytes)`, load it."""
    pxu.save_params(Small(1), tmp / "m")
    raw = bytearray((tmp / "m.npz").read_bytes())
    change(raw, offset_of(bytes(raw)))
    (tmp / "m.npz").write_bytes(bytes(raw))
    pxu.load_params(Small(2), tmp / "m")


def central(raw):
    return raw.index(b"PK\x01\x02")


def set_flag(bit):
    def change(raw, at):
        raw[at + 8] |= 1 << bit if bit < 8 else 0
        raw[at + 9] |= 1 << (bit - 8) if bit >= 8 else 0

    return change


def npy_text(text, version=1):
    raw = text.encode("latin1")
    return b"\x93NUMPY" + bytes([version, 0]) + len(raw).to_bytes(2, "little") + raw


def saved(tmp, model=None, **kw):
    pxu.save_params(Small(1) if model is None else model, tmp / "m", **kw)
    return tmp / "m"


def checkpoint(tmp):
    model = PCMLP([3, 4, 2])
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    pxu.save_checkpoint(tmp / "ck", model=model, optim_w=optim, rkg=px.RKG)
    return tmp / "ck", model, optim


def train(x=None, y=None, **kw):
    model = PCMLP([3, 4, 2])
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    x = jnp.ones((4, 3)) if x is None else x
    y = jnp.ones((4, 2)) if y is None else y
    return pxi.train_supervised(model, optim, x, y, inference=SGD, **kw)


def unsupervised(y):
    model = PCMLP([3, 4, 2], free_input=True)
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    return pxi.train_unsupervised(model, optim, y, inference=SGD)


def folder_named(tmp, name):
    (tmp / name).mkdir()
    return tmp / name


WRONG_FILE = "is not a readable pcframe file"
CASES = {
    # saving: paths
    "save-path-int": (
        lambda tmp: pxu.save_params(Small(), 3),
        TypeError,
        "save_params: the path must be a str, bytes or os.PathLike, got int",
    ),
    "save-path-none": (
        lambda tmp: pxu.save_params(Small(), None),
        TypeError,
        "the path must be a str, bytes or os.PathLike, got NoneType",
    ),
    "save-path-list": (lambda tmp: pxu.save_params(Small(), ["m"]), TypeError, "got list"),
    "save-path-empty": (
        lambda tmp: pxu.save_params(Small(), ""),
        ValueError,
        "save_params: the path is empty; give a file name such as 'model.npz'",
    ),
    "save-trailing-separator": (
        lambda tmp: pxu.save_params(Small(), f"{tmp}/runs/"),
        IsADirectoryError,
        r"runs/' is a folder; give a file name inside it, e\.g\. '.*runs/model\.npz'",
    ),
    "save-bytes-trailing-separator": (
        lambda tmp: pxu.save_params(Small(), f"{tmp}/runs/".encode()),
        IsADirectoryError,
        "is a folder",
    ),
    "save-existing-folder": (
        lambda tmp: pxu.save_params(Small(), folder_named(tmp, "runs")),
        IsADirectoryError,
        "runs' is a folder",
    ),
    "save-folder-named-like-the-file": (
        lambda tmp: pxu.save_params(Small(), folder_named(tmp, "m.npz").with_suffix("")),
        IsADirectoryError,
        "is a folder",
    ),
    "save-missing-folder": (
        lambda tmp: pxu.save_params(Small(), tmp / "no" / "m"),
        FileNotFoundError,
        r"save_params: the folder .*no' does not exist; create it first",
    ),
    "save-none-module": (
        lambda tmp: pxu.save_params(None, tmp / "m"),
        ValueError,
        "save_params: the filter .* selects no parameter with a value in NoneType",
    ),
    "save-filter-selects-nothing": (
        lambda tmp: pxu.save_params(Small(), tmp / "m", filter=pxu.OptimState),
        ValueError,
        "selects no parameter with a value in Small",
    ),
    "save-checkpoint-folder": (
        lambda tmp: pxu.save_checkpoint(f"{tmp}/", model=Small()),
        IsADirectoryError,
        "save_checkpoint: .* is a folder",
    ),
    "save-checkpoint-path-int": (
        lambda tmp: pxu.save_checkpoint(7, model=Small()),
        TypeError,
        "save_checkpoint: the path must be a str",
    ),
    # loading: paths, models, kinds of file
    "load-path-int": (
        lambda tmp: pxu.load_params(Small(), 3),
        TypeError,
        "load_params: the path must be a str, bytes or os.PathLike, got int",
    ),
    "load-missing-file": (
        lambda tmp: pxu.load_params(Small(), tmp / "none"),
        FileNotFoundError,
        r"load_params: no file at .*none\.npz'\. Check the path",
    ),
    "load-folder": (
        lambda tmp: pxu.load_params(Small(), folder_named(tmp, "runs")),
        IsADirectoryError,
        "load_params: .*runs' is a folder",
    ),
    "load-into-none": (
        lambda tmp: pxu.load_params(None, saved(tmp)),
        ValueError,
        "load_params: the filter .* selects no parameter with a value in NoneType. Pass the model itself",
    ),
    "load-filter-selects-nothing": (
        lambda tmp: pxu.load_params(Small(), saved(tmp), filter=pxu.OptimState),
        ValueError,
        "selects no parameter with a value in Small",
    ),
    "load-checkpoint-as-params": (
        lambda tmp: pxu.load_params(PCMLP([3, 4, 2]), checkpoint(tmp)[0]),
        ValueError,
        r"load_params: .*ck\.npz' is a checkpoint written by save_checkpoint, not a parameter file\. Restore it with load_checkpoint\('.*ck\.npz', model=model, optim_w=optim_w, rkg=rkg\)",
    ),
    "load-params-as-checkpoint": (
        lambda tmp: pxu.load_checkpoint(saved(tmp), model=Small()),
        ValueError,
        r"load_checkpoint: .*m\.npz' is a parameter file written by save_params, not a checkpoint\. Load it with load_params\(model, '.*m\.npz'\)",
    ),
    "checkpoint-missing-objects": (
        lambda tmp: pxu.load_checkpoint(checkpoint(tmp)[0], model=PCMLP([3, 4, 2])),
        ValueError,
        r"also holds \['optim_w', 'rkg'\], which were not given.*load_checkpoint\('.*ck\.npz', model=model, optim_w=optim_w, rkg=rkg\)",
    ),
    "checkpoint-unknown-object": (
        lambda tmp: pxu.load_checkpoint(checkpoint(tmp)[0], modle=PCMLP([3, 4, 2])),
        ValueError,
        r"holds no object named \['modle'\]; it holds \['model', 'optim_w', 'rkg'\]",
    ),
    "checkpoint-strict-keyword": (
        lambda tmp: pxu.load_checkpoint(checkpoint(tmp)[0], model=PCMLP([3, 4, 2]), strict=False),
        ValueError,
        r"holds no object named \['strict'\]",
    ),
    "load-missing-entry": (
        lambda tmp: pxu.load_params(Small(), saved(tmp, filter=pxu.m(lambda p: p.shape == (4,)))),
        ValueError,
        r"has no entry for w, which Small has\. Was it saved from this model\? It holds 1 entries, e\.g\. \['b'\]",
    ),
    "load-extra-entry": (
        lambda tmp: archive(
            tmp,
            good(
                **{"x.npy": member(np.ones(2, np.float32))},
                **{
                    "__pcframe__.npy": member(
                        np.array(
                            header(
                                entries={
                                    "w": {"dtype": "float32", "shape": [3, 4]},
                                    "b": {"dtype": "float32", "shape": [4]},
                                    "x": {"dtype": "float32", "shape": [2]},
                                }
                            )
                        )
                    )
                },
            ),
        ),
        ValueError,
        r"holds entries the model does not have: \['x'\]\. Use strict=False to ignore them",
    ),
    "load-wrong-shape": (
        lambda tmp: pxu.load_params(Small(shape=(4, 3)), saved(tmp)),
        ValueError,
        r"load_params: w has shape \(4, 3\) and dtype float32 in the model but \(3, 4\) float32 in",
    ),
    "load-wrong-dtype": (
        lambda tmp: pxu.load_params(Small(dtype=jnp.bfloat16), saved(tmp)),
        ValueError,
        r"w has shape \(3, 4\) and dtype bfloat16 in the model but \(3, 4\) float32",
    ),
    "load-no-value": (
        lambda tmp: pxu.load_params(nulled(Small()), saved(tmp)),
        ValueError,
        "load_params: w has no value to load into; build the model",
    ),
    "load-newer-format": (
        lambda tmp: with_header(tmp, header(format=99)),
        UNREADABLE,
        r"written by a newer pcframe: format 99, this one reads up to 2\)\. Upgrade pcframe",
    ),
    # damaged and crafted files
    "file-empty": (
        lambda tmp: raw_file(tmp, b""),
        UNREADABLE,
        WRONG_FILE + r" \(its zip directory is unreadable: BadZipFile",
    ),
    "file-garbage": (lambda tmp: raw_file(tmp, b"weights" * 100), UNREADABLE, "its zip directory is unreadable"),
    "file-truncated": (
        lambda tmp: raw_file(tmp, saved_bytes(tmp)[:300]),
        UNREADABLE,
        "its zip directory is unreadable",
    ),
    "file-last-byte-missing": (
        lambda tmp: raw_file(tmp, saved_bytes(tmp)[:-1]),
        UNREADABLE,
        "its zip directory is unreadable",
    ),
    "file-npy-not-npz": (lambda tmp: raw_file(tmp, member(np.ones(3))), UNREADABLE, "its zip directory is unreadable"),
    "file-pickle": (lambda tmp: raw_file(tmp, b"\x80\x04\x95" + b"\x00" * 40), UNREADABLE, WRONG_FILE),
    "entry-not-npy": (
        lambda tmp: archive(tmp, good(**{"notes.txt": b"hello"})),
        UNREADABLE,
        r"its entry 'notes\.txt' is not an \.npy array",
    ),
    "entry-twice": (lambda tmp: raw_file(tmp, duplicated()), UNREADABLE, r"it holds the entry 'w\.npy' twice"),
    "entry-bzip2": (
        lambda tmp: archive(tmp, good(), zipfile.ZIP_BZIP2),
        UNREADABLE,
        "uses compression method 12 .*pcframe writes uncompressed entries",
    ),
    "entry-lzma": (lambda tmp: archive(tmp, good(), zipfile.ZIP_LZMA), UNREADABLE, "uses compression method 14"),
    "entry-encrypted-flag": (lambda tmp: patched(tmp, central, set_flag(0)), UNREADABLE, "flags 0x0001"),
    "entry-patched-data-flag": (lambda tmp: patched(tmp, central, set_flag(5)), UNREADABLE, "flags 0x0020"),
    "entry-strong-encryption-flag": (lambda tmp: patched(tmp, central, set_flag(6)), UNREADABLE, "flags 0x0040"),
    "entry-stored-sizes-differ": (
        lambda tmp: patched(tmp, central, lambda raw, at: raw.__setitem__(at + 20, raw[at + 20] ^ 1)),
        UNREADABLE,
        "declares .* bytes",
    ),
    "entry-crc-mismatch": (
        lambda tmp: patched(
            tmp,
            lambda raw: raw.index(b"{'descr'", raw.index(b"w.npy")) + 130,
            lambda raw, at: raw.__setitem__(at, raw[at] ^ 4),
        ),
        UNREADABLE,
        r"its entry 'w' is malformed: BadZipFile: Bad CRC-32",
    ),
    "entry-local-name-differs": (
        lambda tmp: patched(tmp, lambda raw: raw.index(b"w.npy"), lambda raw, at: raw.__setitem__(at, ord("v"))),
        UNREADABLE,
        "File name in directory 'w.npy' and header b'v.npy' differ",
    ),
    "entry-bad-local-magic": (
        lambda tmp: patched(tmp, lambda raw: 0, lambda raw, at: raw.__setitem__(1, 0)),
        UNREADABLE,
        "Bad magic number for file header",
    ),
    "entry-name-flipped": (
        lambda tmp: patched(tmp, lambda raw: raw.rindex(b"w.npy"), lambda raw, at: raw.__setitem__(at, ord("v"))),
        UNREADABLE,
        r"its entries do not match its header \(not listed: \['v'\]; listed but absent: \['w'\]\)",
    ),
    "entry-missing-from-header": (
        lambda tmp: archive(tmp, good(**{"x.npy": member(np.ones(2, np.float32))})),
        UNREADABLE,
        r"not listed: \['x'\]",
    ),
    "entry-listed-but-absent": (lambda tmp: archive(tmp, without("b.npy")), UNREADABLE, r"listed but absent: \['b'\]"),
    "header-entry-damaged-name": (
        lambda tmp: archive(tmp, renamed("__pcframe__.npy", "__pcfrane__.npy")),
        UNREADABLE,
        "its header entry is damaged: it is named '__pcfrane__'",
    ),
    "header-not-json": (
        lambda tmp: with_header(tmp, "{format: 2"),
        UNREADABLE,
        "its header is not JSON",
    ),
    "header-json-list": (
        lambda tmp: with_header(tmp, "[2]"),
        UNREADABLE,
        "its header has no format number: \\[2\\]",
    ),
    "header-format-string": (
        lambda tmp: with_header(tmp, header(format="2")),
        UNREADABLE,
        "its header has no format number",
    ),
    "header-format-negative": (
        lambda tmp: with_header(tmp, header(format=-1)),
        UNREADABLE,
        "its header has no format number",
    ),
    "header-format-bool": (
        lambda tmp: with_header(tmp, header(format=True)),
        UNREADABLE,
        "its header has no format number",
    ),
    "header-kind-unknown": (
        lambda tmp: with_header(tmp, header(kind="weights")),
        UNREADABLE,
        r"its header's 'kind' is 'weights', not one of \['checkpoint', 'params'\]",
    ),
    "header-kind-list": (
        lambda tmp: with_header(tmp, header(kind=[])),
        UNREADABLE,
        "its header's 'kind' is \\[\\]",
    ),
    "header-objects-not-list": (
        lambda tmp: with_header(tmp, header(objects="model")),
        UNREADABLE,
        "its header's 'objects' is not a list of names",
    ),
    "header-entries-not-mapping": (
        lambda tmp: with_header(tmp, header(entries=[1])),
        UNREADABLE,
        "its header's 'entries' is not a mapping",
    ),
    "header-record-negative-shape": (
        lambda tmp: with_w_record(tmp, {"dtype": "float32", "shape": [-3, 4]}),
        UNREADABLE,
        "its header's record of 'w' is not",
    ),
    "header-record-unknown-dtype": (
        lambda tmp: with_w_record(tmp, {"dtype": "float99", "shape": [3, 4]}),
        UNREADABLE,
        r"its entry 'w' holds <f4 \(3, 4\) but its header records float99 \(3, 4\)",
    ),
    "header-record-wrong-shape": (
        lambda tmp: with_w_record(tmp, {"dtype": "float32", "shape": [4, 3]}),
        UNREADABLE,
        r"holds <f4 \(3, 4\) but its header records float32 \(4, 3\)",
    ),
    "header-dtypes-not-mapping": (
        lambda tmp: with_header(tmp, '{"format": 1, "dtypes": [1]}'),
        UNREADABLE,
        "its header's 'dtypes' is not a mapping",
    ),
    "header-not-a-string": (
        lambda tmp: archive(tmp, good(**{"__pcframe__.npy": member(np.ones(3))})),
        UNREADABLE,
        r"its header entry holds <f8 \(3,\), not one JSON string",
    ),
    "header-huge-string": (
        lambda tmp: archive(
            tmp,
            good(**{"__pcframe__.npy": npy_text("{'descr': '<U99999999', 'fortran_order': False, 'shape': (), }\n")}),
        ),
        UNREADABLE,
        "its entry '__pcframe__' declares .* bytes, which its .npy header",
    ),
    "npy-bad-magic": (
        lambda tmp: archive(tmp, good(**{"w.npy": b"\x93NUMPZ" + member(np.ones((3, 4), np.float32))[6:]})),
        UNREADABLE,
        "its entry 'w' has no valid .npy header",
    ),
    "npy-version-9": (
        lambda tmp: archive(tmp, good(**{"w.npy": npy_text("{}", version=9)})),
        UNREADABLE,
        "no valid .npy header",
    ),
    "npy-header-too-long": (
        lambda tmp: archive(tmp, good(**{"w.npy": b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little")})),
        UNREADABLE,
        "no valid .npy header",
    ),
    "npy-header-not-python": (
        lambda tmp: archive(tmp, good(**{"w.npy": npy_text("{'descr': <f4}")})),
        UNREADABLE,
        r"its entry 'w' is malformed: SyntaxError",
    ),
    "npy-header-a-call": (
        lambda tmp: archive(tmp, good(**{"w.npy": npy_text("__import__('os').system('true')")})),
        UNREADABLE,
        "its entry 'w' is malformed: ValueError",
    ),
    "npy-header-missing-keys": (
        lambda tmp: archive(tmp, good(**{"w.npy": npy_text("{'descr': '<f4'}")})),
        UNREADABLE,
        "no valid .npy header",
    ),
    "npy-fortran-order-int": (
        lambda tmp: archive(tmp, good(**{"w.npy": npy_text("{'descr': '<f4', 'fortran_order': 0, 'shape': (3, 4)}")})),
        UNREADABLE,
        "no valid .npy header",
    ),
    "npy-negative-shape": (
        lambda tmp: archive(
            tmp, good(**{"w.npy": npy_text("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4)}")})
        ),
        UNREADABLE,
        "no valid .npy header",
    ),
    "npy-structured-dtype": (
        lambda tmp: archive(
            tmp, good(**{"w.npy": npy_text("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}")})
        ),
        UNREADABLE,
        "no valid .npy header",
    ),
    "npy-object-dtype": (
        lambda tmp: archive(
            tmp, good(**{"w.npy": npy_text("{'descr': '|O', 'fortran_order': False, 'shape': (3, 4)}")})
        ),
        UNREADABLE,
        "which its .npy header \\(\\|O \\(3, 4\\)\\) does not describe",
    ),
    "npy-declares-128-tib": (
        lambda tmp: archive(
            tmp, good(**{"w.npy": npy_text("{'descr': '<f4', 'fortran_order': False, 'shape': (35184372088832,)}")})
        ),
        UNREADABLE,
        r"its entry 'w' declares \d+ bytes, which its .npy header \(<f4 \(35184372088832,\)\) does not describe",
    ),
    "npy-data-short": (
        lambda tmp: archive(tmp, good(**{"w.npy": member(np.ones((3, 4), np.float32))[:-4]})),
        UNREADABLE,
        "does not describe",
    ),
    "npy-data-long": (
        lambda tmp: archive(tmp, good(**{"w.npy": member(np.ones((3, 4), np.float32)) + b"xxxx"})),
        UNREADABLE,
        "does not describe",
    ),
    "npy-disagrees-with-header": (
        lambda tmp: archive(tmp, good(**{"w.npy": member(np.ones((3, 4), np.float16))})),
        UNREADABLE,
        r"its entry 'w' holds <f2 \(3, 4\) but its header records float32 \(3, 4\)",
    ),
    "legacy-bfloat16-as-uint16": (
        lambda tmp: legacy(tmp, w=np.ones((3, 4), np.uint16)),
        ValueError,
        r"w has shape \(3, 4\) and dtype float32 in the model but \(3, 4\) uint16",
    ),
    "legacy-huge-shape": (
        lambda tmp: archive(
            tmp,
            {
                "w.npy": npy_text("{'descr': '<f4', 'fortran_order': False, 'shape': (35184372088832,)}"),
                "b.npy": member(np.ones(4, np.float32)),
            },
        ),
        UNREADABLE,
        "does not describe",
    ),
    # constructors: models
    "pcmlp-int-sizes": (
        lambda: PCMLP(784),
        TypeError,
        r"PCMLP sizes must be a list of layer widths, input first, e\.g\. \[784, 128, 10\]; got 784",
    ),
    "pcmlp-string-sizes": (lambda: PCMLP("784"), TypeError, "PCMLP sizes must be a list of layer widths"),
    "pcmlp-negative-width": (lambda: PCMLP([3, -1, 2]), ValueError, r"PCMLP sizes\[1\] must be a positive int, got -1"),
    "pcmlp-zero-width": (lambda: PCMLP([3, 0, 2]), ValueError, r"PCMLP sizes\[1\] must be a positive int, got 0"),
    "pcmlp-float-width": (
        lambda: PCMLP([3, 2.5, 2]),
        TypeError,
        r"PCMLP sizes\[1\] must be a positive int, got 2\.5 \(float\)",
    ),
    "pcmlp-bool-width": (
        lambda: PCMLP([3, True, 2]),
        TypeError,
        r"PCMLP sizes\[1\] must be a positive int, got True \(bool\)",
    ),
    "pcmlp-none-width": (lambda: PCMLP([3, None]), TypeError, r"PCMLP sizes\[1\] must be a positive int, got None"),
    "pcmlp-unknown-activation": (
        lambda: PCMLP([3, 2], act_fn="tanhh"),
        ValueError,
        r"PCMLP act_fn 'tanhh' is not a known activation; give a function \(e\.g\. jax\.nn\.tanh\) or one of \['gelu', 'hard_tanh', 'leaky_relu', 'linear', 'relu', 'selu', 'silu', 'tanh'\]",
    ),
    "pcmlp-activation-number": (
        lambda: PCMLP([3, 2], act_fn=3),
        TypeError,
        "PCMLP act_fn must be a function such as jax.nn.tanh, or a name such as 'tanh'; got 3",
    ),
    "pcmlp-output-energy-string": (
        lambda: PCMLP([3, 2], output_energy="ce"),
        TypeError,
        "PCMLP output_energy must be an energy function such as se_energy, got 'ce'",
    ),
    "pcvgg-float-channels": (
        lambda: PCVGG(channels=(1, 2.5)),
        TypeError,
        r"PCVGG channels entry 1 must be a positive int, got 2\.5",
    ),
    "pcvgg-one-channel": (
        lambda: PCVGG(channels=(1,)),
        ValueError,
        "PCVGG channels must be \\(C_in, C_1, ...\\) with at least one block",
    ),
    "pcvgg-int-channels": (
        lambda: PCVGG(channels=3),
        TypeError,
        r"PCVGG channels must be a tuple of ints such as \(3,\), got 3",
    ),
    "pcvgg-zero-classes": (
        lambda: PCVGG(channels=(1, 4), num_classes=0, image_size=4),
        ValueError,
        "PCVGG num_classes must be a positive int, got 0",
    ),
    "pcvgg-even-kernel": (
        lambda: PCVGG(channels=(1, 4), image_size=4, kernel_sizes=2),
        ValueError,
        r"PCVGG kernel_sizes must be odd \(same padding\), got \(2,\)",
    ),
    "pcvgg-kernel-count": (
        lambda: PCVGG(channels=(1, 4), image_size=4, kernel_sizes=(3, 3)),
        ValueError,
        r"PCVGG kernel_sizes \(one per block\) must have 1 entries",
    ),
    "pcvgg-pool-min": (
        lambda: PCVGG(channels=(1, 4), image_size=4, pool="min"),
        ValueError,
        "PCVGG pool must be 'max' or 'avg', got 'min'",
    ),
    "pcvgg-zero-image": (
        lambda: PCVGG(channels=(1, 4), image_size=0),
        ValueError,
        r"PCVGG image_size \(height, width\) must be a positive int, got 0",
    ),
    "pcvgg-unknown-activation": (
        lambda: PCVGG(channels=(1, 4), image_size=4, act_fn="swish"),
        ValueError,
        "PCVGG act_fn 'swish' is not a known activation",
    ),
    "pcvgg-too-many-blocks": (
        lambda: PCVGG(channels=(1, 2, 2, 2), image_size=4),
        ValueError,
        "PCVGG: 3 poolings halve a 4x4 image to nothing; pool less",
    ),
    # constructors: layers and nodes
    "linear-negative": (lambda: pxnn.Linear(3, -4), ValueError, "Linear out_features must be a positive int, got -4"),
    "linear-zero-in": (lambda: pxnn.Linear(0, 4), ValueError, "Linear in_features must be a positive int, got 0"),
    "linear-float": (
        lambda: pxnn.Linear(3, 2.5),
        TypeError,
        r"Linear out_features must be a positive int, got 2\.5 \(float\)",
    ),
    "linear-string": (lambda: pxnn.Linear("3", 2), TypeError, "Linear in_features must be a positive int, got '3'"),
    "conv-zero-kernel": (lambda: pxnn.Conv2d(3, 4, 0), ValueError, "Conv kernel_size must be a positive int, got 0"),
    "conv-zero-channels": (lambda: pxnn.Conv2d(0, 4, 3), ValueError, "Conv in_channels must be a positive int, got 0"),
    "conv-negative-out": (
        lambda: pxnn.Conv1d(3, -4, 3),
        ValueError,
        "Conv out_channels must be a positive int, got -4",
    ),
    "conv-four-dims": (lambda: pxnn.Conv(4, 3, 4, 3), ValueError, "Conv num_spatial_dims must be 1, 2 or 3, got 4"),
    "conv-kernel-length": (
        lambda: pxnn.Conv2d(3, 4, (3, 3, 3)),
        ValueError,
        r"Conv kernel_size must have 2 entries \(one per dimension\), got \(3, 3, 3\)",
    ),
    "conv-groups": (
        lambda: pxnn.Conv2d(3, 4, 3, groups=2),
        ValueError,
        "Conv groups=2 must divide in_channels=3 and out_channels=4",
    ),
    "conv-zero-stride": (
        lambda: pxnn.Conv2d(3, 4, 3, stride=0),
        ValueError,
        "Conv stride must be a positive int, got 0",
    ),
    "conv-zero-dilation": (
        lambda: pxnn.Conv3d(3, 4, 3, dilation=0),
        ValueError,
        "Conv dilation must be a positive int, got 0",
    ),
    "conv-transpose-negative": (
        lambda: pxnn.ConvTranspose(2, 3, -1, 3),
        ValueError,
        "ConvTranspose out_channels must be a positive int, got -1",
    ),
    "layernorm-negative": (lambda: pxnn.LayerNorm(-1), ValueError, "LayerNorm shape must be a positive int, got -1"),
    "layernorm-zero-dim": (
        lambda: pxnn.LayerNorm((3, 0)),
        ValueError,
        "LayerNorm shape entry 1 must be a positive int, got 0",
    ),
    "layernorm-eps": (lambda: pxnn.LayerNorm(3, eps=0.0), ValueError, "LayerNorm eps must be positive, got 0.0"),
    "maxpool-zero": (lambda: pxnn.MaxPool2d(0), ValueError, "MaxPool2d kernel_size must be a positive int, got 0"),
    "avgpool-three-dims": (lambda: pxnn.AvgPool2d((2, 2, 2)), ValueError, "AvgPool2d kernel_size must have 2 entries"),
    "dropout-one": (
        lambda: pxnn.Dropout(1.0),
        ValueError,
        r"Dropout p is the drop probability, a number in \[0, 1\); got 1\.0",
    ),
    "dropout-negative": (lambda: pxnn.Dropout(-0.1), ValueError, "Dropout p is the drop probability"),
    "dropout-string": (lambda: pxnn.Dropout("half"), ValueError, "got 'half'"),
    "layer-not-equinox": (
        lambda: pxnn.Layer(3),
        TypeError,
        r"Layer wraps an equinox Module \(e\.g\. eqx\.nn\.Linear\), got int",
    ),
    "vode-int-shape": (
        lambda: pxc.Vode(3),
        TypeError,
        r"Vode shape must be a tuple such as \(3,\), got 3\. Write Vode\(\(3,\)\)",
    ),
    "vode-string-shape": (lambda: pxc.Vode("3"), TypeError, "Vode shape must be a tuple such as"),
    "vode-negative-dim": (lambda: pxc.Vode((3, -1)), ValueError, r"Vode shape\[1\] must be a positive int, got -1"),
    "vode-float-dim": (lambda: pxc.Vode((2.5,)), TypeError, r"Vode shape\[0\] must be a positive int, got 2\.5"),
    "vode-energy-string": (
        lambda: pxc.Vode((3,), energy_fn="se"),
        TypeError,
        "Vode energy_fn must be a function such as se_energy, got 'se'",
    ),
    # inference engines
    "ode-negative-dt": (
        lambda: pxi.ODEInference(dt=-0.1),
        ValueError,
        "ODEInference dt must be a positive number or None, got -0.1",
    ),
    "ode-zero-dt": (
        lambda: pxi.ODEInference(dt=0),
        ValueError,
        "ODEInference dt must be a positive number or None, got 0",
    ),
    "ode-nan-dt": (
        lambda: pxi.ODEInference(dt=math.nan),
        ValueError,
        "ODEInference dt must be a positive number or None, got nan",
    ),
    "ode-string-dt": (
        lambda: pxi.ODEInference(dt="0.1"),
        ValueError,
        "ODEInference dt must be a positive number or None, got '0.1'",
    ),
    "ode-zero-steady-rtol": (
        lambda: pxi.ODEInference(steady_rtol=0.0),
        ValueError,
        "ODEInference steady_rtol must be a positive number or None, got 0.0",
    ),
    "ode-negative-steady-atol": (
        lambda: pxi.ODEInference(steady_atol=-1e-3),
        ValueError,
        "ODEInference steady_atol must be a positive number",
    ),
    "ode-negative-controller-rtol": (
        lambda: pxi.ODEInference(stepsize_controller=diffrax.PIDController(rtol=-1e-3, atol=1e-3)),
        ValueError,
        r"ODEInference: the tolerances must be non-negative and not both zero, got rtol=-0\.001, atol=0\.001",
    ),
    "ode-zero-tolerances": (
        lambda: pxi.ODEInference(stepsize_controller=diffrax.PIDController(rtol=0.0, atol=0.0)),
        ValueError,
        "the tolerances must be non-negative and not both zero",
    ),
    "ode-zero-max-steps": (
        lambda: pxi.ODEInference(max_steps=0),
        ValueError,
        "ODEInference max_steps must be a positive int, got 0",
    ),
    "ode-nan-max-t1": (
        lambda: pxi.ODEInference(max_t1=math.nan),
        ValueError,
        "ODEInference max_t1 must be positive, got nan",
    ),
    "discrete-bool-steps": (
        lambda: pxi.DiscreteInference(optax.sgd(0.1), True),
        ValueError,
        "DiscreteInference steps must be a non-negative int, got True",
    ),
    # training steps
    "train-integer-labels": (
        lambda: train(y=jnp.array([0, 1, 1, 0])),
        ValueError,
        r"train_supervised: y holds 4 integer class labels \(shape \(4,\)\), but the output node takes one target vector per sample\. One-hot encode them: jax\.nn\.one_hot\(y, num_classes\)",
    ),
    "train-numpy-integer-labels": (lambda: train(y=np.array([0, 1, 1, 0])), ValueError, "One-hot encode them"),
    "train-empty-x": (
        lambda: train(x=jnp.ones((0, 3)), y=jnp.ones((0, 2))),
        ValueError,
        r"train_supervised: x is an empty batch \(shape \(0, 3\)\); give at least one sample",
    ),
    "train-empty-y": (lambda: train(y=jnp.ones((0, 2))), ValueError, r"train_supervised: y is an empty batch"),
    "unsupervised-empty": (
        lambda: unsupervised(jnp.ones((0, 2))),
        ValueError,
        r"train_unsupervised: y is an empty batch \(shape \(0, 2\)\)",
    ),
}


def with_header(tmp, text):
    archive(tmp, good(**{"__pcframe__.npy": member(np.array(text))}))


def with_w_record(tmp, record):
    with_header(tmp, header(entries={"w": record, "b": {"dtype": "float32", "shape": [4]}}))


def nulled(model):
    model.w.value = None
    return model


def raw_file(tmp, data):
    (tmp / "m.npz").write_bytes(data)
    pxu.load_params(Small(2), tmp / "m")


def saved_bytes(tmp):
    return saved(tmp).with_suffix(".npz").read_bytes()


def duplicated():
    members = good()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, raw in [*members.items(), ("w.npy", members["w.npy"])]:
            zf.writestr(name, raw)
    return buffer.getvalue()


def without(name):
    return {k: v for k, v in good().items() if k != name}


def renamed(old, new):
    return {new if k == old else k: v for k, v in good().items()}


def legacy(tmp, **arrays):
    np.savez(tmp / "m.npz", b=np.ones(4, np.float32), **arrays)
    pxu.load_params(Small(2), tmp / "m")


@pytest.mark.filterwarnings("ignore:.*old format 0:UserWarning", "ignore:Duplicate name:UserWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_with_a_helpful_message(case, tmp_path):
    call, error, message = CASES[case]
    with pytest.raises(error, match=message):
        call(tmp_path) if call.__code__.co_argcount else call()


def test_the_catalogue_has_over_100_cases():
    assert len(CASES) >= 100


# ---- every error that suggests a keyword or a call: doing what it says succeeds


def test_advice_one_hot_encode_the_labels_works():
    labels = jnp.array([0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"jax\.nn\.one_hot\(y, num_classes\)"):
        train(y=labels)
    train(y=jax.nn.one_hot(labels, 2))


def test_advice_give_at_least_one_sample_works():
    with pytest.raises(ValueError, match="give at least one sample"):
        train(x=jnp.ones((0, 3)), y=jnp.ones((0, 2)))
    train(x=jnp.ones((1, 3)), y=jnp.ones((1, 2)))


def test_advice_for_shapes_sizes_and_activations_works():
    with pytest.raises(TypeError, match=r"Write Vode\(\(3,\)\)"):
        pxc.Vode(3)
    assert pxc.Vode((3,)).shape == (3,)
    with pytest.raises(TypeError, match=r"e\.g\. \[784, 128, 10\]"):
        PCMLP(784)
    assert PCMLP([784, 128, 10]).sizes == (784, 128, 10)
    for name, function in [("tanh", jax.nn.tanh), ("leaky_relu", jax.nn.leaky_relu), ("hard_tanh", jax.nn.hard_tanh)]:
        assert PCMLP([3, 2], act_fn=name).act_fn.value is function
    x = jnp.array([-2.0, 0.5])
    np.testing.assert_array_equal(PCMLP([3, 2], act_fn="linear").act_fn.value(x), x)
    train_model = PCMLP([3, 4, 2], act_fn="tanh")
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(train_model))
    pxi.train_supervised(train_model, optim, jnp.ones((4, 3)), jnp.ones((4, 2)), inference=SGD)


def test_advice_give_a_file_name_inside_the_folder_works(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(IsADirectoryError, match="e.g. '(.*)'") as error:
        pxu.save_params(Small(1), f"{tmp_path}/runs/")
    suggested = error.value.args[0].split("e.g. ")[1].strip(".'")
    pxu.save_params(Small(1), suggested)
    pxu.load_params(Small(2), suggested)


def test_advice_load_the_checkpoint_with_load_checkpoint_works(tmp_path):
    path, model, optim = checkpoint(tmp_path)
    target = PCMLP([3, 4, 2])
    with pytest.raises(ValueError, match=r"load_checkpoint\('.*', model=model, optim_w=optim_w, rkg=rkg\)"):
        pxu.load_params(target, path)
    target_optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(target))
    with pytest.raises(
        ValueError, match=r"pass them all: load_checkpoint\('.*', model=model, optim_w=optim_w, rkg=rkg\)"
    ):
        pxu.load_checkpoint(path, model=target)
    pxu.load_checkpoint(path, model=target, optim_w=target_optim, rkg=px.RKG)
    assert values_of(target) == values_of(model)


def values_of(model):
    return [np.asarray(p.value).tobytes() for p in model.parameters(pxnn.LayerParam)]


def test_advice_load_the_parameter_file_with_load_params_works(tmp_path):
    path = saved(tmp_path)
    target = Small(2)
    with pytest.raises(ValueError, match=r"Load it with load_params\(model, '.*m\.npz'\)"):
        pxu.load_checkpoint(path, model=target)
    pxu.load_params(target, path)
    assert values(target) == values(Small(1))


def test_advice_pass_the_model_itself_works(tmp_path):
    path = saved(tmp_path)
    with pytest.raises(ValueError, match="Pass the model itself"):
        pxu.load_params(None, path)
    target = Small(2)
    pxu.load_params(target, path)
    assert values(target) == values(Small(1))


def test_advice_strict_false_works_and_loads_what_the_model_has(tmp_path):
    class Bigger(Small):
        def __init__(self, seed):
            super().__init__(seed)
            self.extra = pxnn.LayerParam(jnp.ones(2))

    pxu.save_params(Bigger(1), tmp_path / "big")
    target = Small(2)
    with pytest.raises(ValueError, match="Use strict=False to ignore them"):
        pxu.load_params(target, tmp_path / "big")
    pxu.load_params(target, tmp_path / "big", strict=False)
    assert values(target) == values(Small(1))
