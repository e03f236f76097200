"""Model files: format-1 fixture, format-2 nesting and state, and every way a file can be bad.

Whatever is wrong with a file, ``load_model`` must raise one ``ValueError`` that starts with
the path ("<path> is not a valid tinycnn model file: <reason>") -- never ``BadZipFile``,
``EOFError``, ``KeyError``, a constructor's ``TypeError`` or a ``MemoryError`` -- and it must
refuse oversized declarations before allocating anything.
"""
import gzip
import io
import json
import os
import re
import stat
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinycnn as tc
from tinycnn import layers, saving
from tinycnn.layers.base import REGISTRY, Layer
from tinycnn.model_schema import SCHEMA
from tinycnn.parameter import Parameter

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
DOC = os.path.join(HERE, os.pardir, "docs", "model_file_format.md")


# ------------------------------------------------------------------ test layers (module level,
# so they register themselves like any layer in a new module would)
class FilesTestAffine(Layer):
    """``y = x·weight + shift`` with ``shift`` a *state* array (saved, never optimised)."""

    def __init__(self, features):
        super().__init__()
        self.features = features
        self.weight = Parameter(np.ones(features, np.float32), "weight")
        self.shift = np.zeros(features, np.float32)

    def forward(self, x):
        return x * self.weight.data + self.shift

    def config(self):
        return {"features": self.features}

    @classmethod
    def array_shapes(cls, config):
        return {"weight": (config["features"],), "shift": (config["features"],)}

    def state_arrays(self):
        return {"shift": self.shift}


class FilesTestBranch(Layer):
    """``y = body(x) + skip(x)``: a container, like a residual block, holding two groups."""

    def __init__(self, *body, skip=None, scale=1.0):
        super().__init__()
        self.body, self.skip, self.scale = list(body), list(skip or []), scale

    def forward(self, x):
        y, s = x, x
        for layer in self.body:
            y = layer.forward(y)
        for layer in self.skip:
            s = layer.forward(s)
        return self.scale * y + s

    def parameters(self):
        return [p for layer in self.body + self.skip for p in layer.parameters()]

    def config(self):
        return {"scale": self.scale}

    def children(self):
        return {"body": self.body, "skip": self.skip}

    @classmethod
    def from_config(cls, config, children):
        return cls(*children["body"], skip=children["skip"], **config)


class FilesTestForgetful(Layer):
    """Has a weight but does not override ``array_shapes``: must not be saveable."""

    def __init__(self):
        super().__init__()
        self.weight = Parameter(np.ones(3, np.float32), "weight")


# ------------------------------------------------------------------ helpers
def small_model(seed=0):
    rng = np.random.default_rng(seed)
    model = tc.Sequential(layers.Conv2D(1, 2, kernel_size=3, rng=rng), layers.ReLU(),
                          layers.Flatten(), layers.Dense(2 * 4 * 4, 3, rng=rng))
    model.meta.update({"input_shape": [1, 6, 6], "mean": 0.5, "std": 0.25, "class_names": ["a", "b", "c"]})
    return model


def nested_model(seed=0):
    rng = np.random.default_rng(seed)
    inner = FilesTestBranch(layers.Dense(4, 4, rng=rng), FilesTestAffine(4), scale=0.5)
    model = tc.Sequential(layers.Dense(3, 4, rng=rng),
                          FilesTestBranch(inner, layers.ReLU(), skip=[FilesTestAffine(4)]),
                          layers.Dense(4, 2, rng=rng))
    for p in model.parameters():
        p.data += rng.normal(0, 0.3, p.shape).astype(np.float32)
    for affine in (inner.body[1], model[1].skip[0]):
        affine.shift[:] = rng.normal(0, 1, 4)
    return model


def arrays_of(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def write(path, arrays, spec=None):
    arrays = dict(arrays)
    if spec is not None:
        arrays["architecture"] = np.array(json.dumps(spec))
    np.savez(path, **arrays)
    return path


def rewrite(good, out, edit):
    """Copy the model file ``good`` to ``out`` after ``edit(spec, arrays)``."""
    arrays = arrays_of(good)
    spec = json.loads(str(arrays["architecture"]))
    edit(spec, arrays)
    return write(out, arrays, spec)


def refused(path, reason=None):
    """Load ``path``; it must fail with the one ValueError naming the path (and ``reason``)."""
    with pytest.raises(ValueError) as info:
        tc.load_model(path)
    assert type(info.value) is ValueError
    message = str(info.value)
    assert message.startswith(f"{os.fspath(path)} is not a valid tinycnn model file: "), message
    assert "allow_pickle" not in message
    if reason is not None:
        assert re.search(reason, message), message
    return message


def load_or_refuse(path):
    """Either a model or the one ValueError: nothing else is acceptable."""
    try:
        return tc.load_model(path)
    except ValueError as err:
        assert type(err) is ValueError
        assert str(err).startswith(f"{os.fspath(path)} is not a valid tinycnn model file: "), str(err)
        return None


def data_offset(path, entry):
    """Byte offset, in the file, of the first array element of ``entry`` (a stored .npy)."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry)
        with z.open(info) as f:
            np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f)
            npy_header = f.tell()
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name_len + extra_len + npy_header


# ------------------------------------------------------------------ format 1 still loads
def test_format1_fixture_loads_and_predicts_as_saved():
    path = os.path.join(FIXTURES, "format1_lenet.npz")
    assert json.loads(str(arrays_of(path)["architecture"]))["format"] == 1
    model = tc.load_model(path)
    expected = np.load(os.path.join(FIXTURES, "format1_lenet_expected.npz"))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "Tanh", "AvgPool2D", "Flatten", "Dense",
        "LeakyReLU", "Dropout", "Dense", "Sigmoid"]
    assert model.meta == {"input_shape": [1, 12, 12], "mean": 0.25, "std": 0.5, "class_names": ["a", "b", "c"]}
    for backend in ("reference", "numba"):
        with tc.use_backend(backend):
            y = model.eval().forward(expected["x"])
        np.testing.assert_allclose(y, expected["y"], rtol=1e-5, atol=1e-6)


def test_format1_file_resaved_as_format2_keeps_everything(tmp_path):
    model = tc.load_model(os.path.join(FIXTURES, "format1_lenet.npz"))
    path = model.save(tmp_path / "again.npz")
    assert json.loads(str(arrays_of(path)["architecture"]))["format"] == saving.FORMAT == 2
    again = tc.load_model(path)
    x = np.load(os.path.join(FIXTURES, "format1_lenet_expected.npz"))["x"]
    np.testing.assert_array_equal(again.eval().forward(x), model.eval().forward(x))
    assert again.meta == model.meta


# ------------------------------------------------------------------ format 2: nesting and state
def test_nested_layers_and_state_round_trip(tmp_path):
    model = nested_model()
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    path = model.save(tmp_path / "nested.npz")
    arrays = arrays_of(path)
    assert sorted(arrays) == sorted([
        "architecture", "layer0.weight", "layer0.bias", "layer2.weight", "layer2.bias",
        "layer1.body.0.body.0.weight", "layer1.body.0.body.0.bias",
        "layer1.body.0.body.1.weight", "layer1.body.0.body.1.shift",
        "layer1.skip.0.weight", "layer1.skip.0.shift"])
    spec = json.loads(str(arrays["architecture"]))
    assert spec["layers"][1]["children"]["body"][0]["children"]["body"][1] == {
        "class": "FilesTestAffine", "config": {"features": 4}}
    loaded = tc.load_model(path)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    shift = loaded[1].skip[0].shift
    np.testing.assert_array_equal(shift, model[1].skip[0].shift)
    assert not any(p.data is shift for p in loaded.parameters())     # state is not a parameter
    assert len(loaded.parameters()) == len(model.parameters()) == 8


def test_children_in_a_format1_file_are_refused(tmp_path):
    good = nested_model().save(tmp_path / "good.npz")
    bad = rewrite(good, tmp_path / "bad.npz", lambda s, a: s.update({"format": 1}))
    refused(bad, r"layers\[1\] \(FilesTestBranch\) has 'children', which format 1 files cannot have")


def test_nested_array_of_the_wrong_shape_is_named_by_its_path(tmp_path):
    good = nested_model().save(tmp_path / "good.npz")
    bad = rewrite(good, tmp_path / "bad.npz",
                  lambda s, a: a.update({"layer1.skip.0.shift": np.zeros(5, np.float32)}))
    refused(bad, r"layers\[1\]\.children\.skip\[0\] \(FilesTestAffine\): array 'layer1.skip.0.shift' "
                 r"has shape \(5,\), expected \(4,\)")


def test_float64_model_round_trips_and_mixed_dtypes_are_refused(tmp_path):
    model = small_model().to(np.float64)
    loaded = tc.load_model(model.save(tmp_path / "f64.npz"))
    assert loaded.dtype == np.float64
    bad = rewrite(tmp_path / "f64.npz", tmp_path / "mixed.npz",
                  lambda s, a: a.update({"layer0.bias": a["layer0.bias"].astype(np.float32)}))
    refused(bad, r"mix dtypes \['float32', 'float64'\]")


def test_fortran_order_and_big_endian_arrays_load(tmp_path):
    model = small_model()
    arrays = arrays_of(model.save(tmp_path / "m.npz"))
    arrays["layer0.weight"] = np.asfortranarray(arrays["layer0.weight"]).astype(">f4")
    arrays["layer3.weight"] = np.asfortranarray(arrays["layer3.weight"])
    loaded = tc.load_model(write(tmp_path / "odd.npz", arrays))
    x = np.random.default_rng(0).random((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert loaded[0].weight.data.dtype == np.float32 and loaded[0].weight.data.flags.c_contiguous


# ------------------------------------------------------------------ files that are not models
def _bytes(data):
    return lambda path: path.write_bytes(data)


def _png(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))


@pytest.mark.parametrize("make, reason", [
    (_bytes(b""), "the file is empty"),
    (_png, "it is a PNG image; were the model and the image swapped"),
    (_bytes(b"\xff\xd8\xff\xe0" + bytes(50)), "it is a JPEG image; were the model and the image swapped"),
    (lambda p: np.save(open(p, "wb"), np.zeros(4)), r"a single \.npy array, not an \.npz archive"),
    (_bytes(gzip.compress(b"hello")), "gzip-compressed data"),
    (_bytes(b"{\"format\": 2}"), r"not an \.npz \(zip\) archive"),
    (_bytes(b"PK\x03\x04" + bytes(40)), "truncated or corrupted"),
    (lambda p: zipfile.ZipFile(p, "w").close(), "no 'architecture' entry"),
    (lambda p: np.savez(p, architecture=np.array([{"class": "Dense"}], dtype=object)), "pickled data"),
    (lambda p: np.savez(p, architecture=np.array(3.0)), "'architecture' entry is not a JSON text"),
    (lambda p: np.savez(p, architecture=np.array("{not json")), "not valid JSON"),
    (lambda p: np.savez(p, architecture=np.array("[1, 2]")), "architecture must be object, got a list"),
    (lambda p: np.savez(p, architecture=np.array("[" * 100000 + "]" * 100000)), "nested too deeply|not valid JSON"),
    (lambda p: np.savez(p, x=np.zeros(3, [("a", "<f4")])), "structured dtype"),
    (lambda p: zipfile.ZipFile(p, "w").writestr("readme.txt", "hi"), "unexpected entry 'readme.txt'"),
])
def test_not_a_model_file(tmp_path, make, reason):
    path = tmp_path / "model.npz"
    make(path)
    refused(path, reason)


def test_a_directory_and_a_missing_file(tmp_path):
    refused(tmp_path, "it is a directory")
    with pytest.raises(FileNotFoundError, match="no such file"):
        tc.load_model(tmp_path / "nothing.npz")


def test_truncated_file_at_every_length_is_refused(tmp_path):
    good = small_model().save(tmp_path / "good.npz")
    data = open(good, "rb").read()
    cut = tmp_path / "cut.npz"
    for n in list(range(0, 64)) + list(range(64, len(data), 37)) + [len(data) - 1]:
        cut.write_bytes(data[:n])
        refused(cut)


def test_flipped_weight_byte_fails_the_crc(tmp_path):
    good = small_model().save(tmp_path / "good.npz")
    data = bytearray(open(good, "rb").read())
    data[data_offset(good, "layer3.weight.npy") + 5] ^= 0x10
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    refused(tmp_path / "bad.npz", "CRC")


# ------------------------------------------------------------------ sizes before allocation
def _npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _arch(spec):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(json.dumps(spec)))
    return buf.getvalue()


def test_terabyte_array_header_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    spec = {"format": 2, "tinycnn_version": "0.1.0", "meta": {},
            "layers": [{"class": "Dense", "config": {"in_features": 1 << 19, "out_features": 1 << 19}}]}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("architecture.npy", _arch(spec))
        z.writestr("layer0.weight.npy", _npy_header((1 << 19, 1 << 19)) + bytes(64))   # declares 1 TiB
        z.writestr("layer0.bias.npy", _npy_header((1 << 19,)) + bytes(1 << 21))
    refused(path, r"array 'layer0.weight' declares shape \(524288, 524288\) of float32 "
                  r"\(1,099,511,627,776 bytes\) but its entry holds 64 bytes")


def test_compressed_entries_are_refused_so_no_entry_outgrows_the_file(tmp_path):
    path = tmp_path / "bomb.npz"
    spec = {"format": 2, "tinycnn_version": "0.1.0", "meta": {}, "layers": []}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("architecture.npy", _arch(spec))
        z.writestr("zeros.npy", _npy_header((1 << 24,)) + bytes(1 << 26))   # 64 MiB in ~65 KiB
    assert os.path.getsize(path) < 100_000
    refused(path, r"entry 'architecture.npy' is compressed \(zip method 8\); model files store arrays uncompressed")
    np.savez_compressed(tmp_path / "c.npz", **arrays_of(small_model().save(tmp_path / "m.npz")))
    refused(tmp_path / "c.npz", "is compressed")


def test_zip_entry_whose_sizes_disagree_is_refused(tmp_path):
    good = small_model().save(tmp_path / "good.npz")
    data = bytearray(open(good, "rb").read())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("layer3.weight.npy")
    # the uncompressed size sits 24 bytes into the entry's central-directory record
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(info.filename)] != info.filename.encode():
        central = data.index(b"PK\x01\x02", central + 1)
    data[central + 24:central + 28] = struct.pack("<I", 2 ** 32 - 2)
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    refused(tmp_path / "bad.npz", r"entry 'layer3.weight.npy' claims 4,294,967,294 bytes but stores")


def test_config_asking_for_terabytes_is_refused_before_any_layer_is_built(tmp_path, monkeypatch):
    good = small_model().save(tmp_path / "good.npz")
    bad = rewrite(good, tmp_path / "bad.npz",
                  lambda s, a: s["layers"][3]["config"].update({"in_features": 10 ** 6, "out_features": 10 ** 6}))
    built = []
    original = layers.Dense.__init__
    monkeypatch.setattr(layers.Dense, "__init__", lambda self, *a, **k: built.append(a) or original(self, *a, **k))
    refused(bad, r"layers\[3\] \(Dense\): array 'layer3.weight' has shape \(3, 32\), expected \(1000000, 1000000\)")
    assert built == []


# ------------------------------------------------------------------ JSON of the wrong structure
BAD_SPECS = [
    (lambda s, a: s.pop("layers"), "architecture lacks the key 'layers'"),
    (lambda s, a: s.pop("meta"), "architecture lacks the key 'meta'"),
    (lambda s, a: s.update({"format": "2"}), "architecture.format must be integer"),
    (lambda s, a: s.update({"format": 99, "tinycnn_version": "9.0"}),
     r"format 99 \(written by tinycnn 9.0\); upgrade tinycnn to load it; tinycnn .* reads formats 1, 2"),
    (lambda s, a: s.update({"format": 0}), "format 0; tinycnn .* reads formats 1, 2"),
    (lambda s, a: s.update({"layers": {"0": {}}}), "architecture.layers must be array, got an object"),
    (lambda s, a: s.update({"extra": 1}), "unknown key 'extra'"),
    (lambda s, a: s["layers"].__setitem__(0, ["Conv2D"]), r"layers\[0\] must be object, got a list"),
    (lambda s, a: s["layers"][0].pop("config"), r"layers\[0\] lacks the key 'config'"),
    (lambda s, a: s["layers"][0].update({"config": [1, 6]}), r"layers\[0\].config must be object"),
    (lambda s, a: s["layers"][0].update({"class": 3}), r"layers\[0\].class must be string"),
    (lambda s, a: s["layers"][0].update({"class": "os.system"}), r"class must match"),
    (lambda s, a: s["layers"][0].update({"class": "EvilLayer"}), r"layers\[0\] has unknown class 'EvilLayer'"),
    (lambda s, a: s["layers"][0]["config"].update({"colour": "red"}),
     r"layers\[0\] \(Conv2D\) has unknown config key\(s\) \['colour'\]"),
    (lambda s, a: s["layers"][0]["config"].pop("kernel_size"), r"config lacks \['kernel_size'\]"),
    (lambda s, a: s["layers"][0]["config"].update({"in_channels": "1"}),
     r"layers\[0\] \(Conv2D\): bad config .*in_channels must be an int"),
    (lambda s, a: s["layers"][0]["config"].update({"in_channels": True}), "in_channels must be an int"),
    (lambda s, a: s["layers"][0]["config"].update({"kernel_size": [3, 3, 3]}), "kernel_size must be"),
    (lambda s, a: s["layers"][0]["config"].update({"stride": 0}), r"config .* rejected: .*stride must be >= 1"),
    (lambda s, a: s["layers"][0]["config"].update({"rng": 3}), r"config key\(s\) \['rng'\] that Conv2D does not save"),
    (lambda s, a: s["layers"][1].update({"config": {"alpha": 2}}), r"unknown config key\(s\) \['alpha'\]"),
    (lambda s, a: s["layers"][0].update({"children": {"x": []}}), "holds no sub-layers"),
    (lambda s, a: s["meta"].update({"input_shape": "1x6x6"}), "meta.input_shape must be array or null"),
    (lambda s, a: s["meta"].update({"input_shape": [1, 0, 6]}), r"meta.input_shape\[1\] must be >= 1"),
    (lambda s, a: s["meta"].update({"class_names": ["a", 2]}), r"meta.class_names\[1\] must be string"),
    (lambda s, a: s["meta"].update({"mean": "0.5"}), "meta.mean must be number or array"),
    (lambda s, a: s.update({"meta": []}), "meta must be object"),
]


@pytest.mark.parametrize("edit, reason", BAD_SPECS)
def test_architecture_of_the_wrong_structure(tmp_path, edit, reason):
    good = small_model().save(tmp_path / "good.npz")
    refused(rewrite(good, tmp_path / "bad.npz", edit), reason)


def test_duplicate_json_keys_are_refused(tmp_path):
    arrays = arrays_of(small_model().save(tmp_path / "good.npz"))
    text = str(arrays["architecture"])
    arrays["architecture"] = np.array(text.replace('"format": 2', '"format": 2, "format": 1'))
    refused(write(tmp_path / "bad.npz", arrays), "repeats the key 'format'")


@pytest.mark.parametrize("edit, reason", [
    (lambda s, a: a.pop("layer0.weight"), r"layers\[0\] \(Conv2D\) is missing weights 'layer0.weight'"),
    (lambda s, a: a.update({"layer9.weight": np.zeros(3, np.float32)}), r"weights no layer uses: \['layer9.weight'\]"),
    (lambda s, a: a.update({"layer1.weight": np.zeros(3, np.float32)}), r"weights no layer uses: \['layer1.weight'\]"),
    (lambda s, a: a.update({"layer0.bias": np.zeros(5, np.float32)}), r"has shape \(5,\), expected \(2,\)"),
    (lambda s, a: a.update({"layer0.weight": a["layer0.weight"].astype(np.int64)}),
     "array 'layer0.weight' has dtype int64; model arrays are float32 or float64"),
    (lambda s, a: a.update({"layer0.weight": a["layer0.weight"].astype(np.float16)}), "has dtype float16"),
    (lambda s, a: a.update({"layer0.weight": a["layer0.weight"].astype(np.complex64)}), "has dtype complex64"),
    (lambda s, a: a.update({"layer0.weight": a["layer0.weight"][0]}), r"has shape \(1, 3, 3\), expected \(2, 1, 3, 3\)"),
])
def test_weights_of_the_wrong_kind(tmp_path, edit, reason):
    good = small_model().save(tmp_path / "good.npz")
    refused(rewrite(good, tmp_path / "bad.npz", edit), reason)


# ------------------------------------------------------------------ hypothesis: anything goes
_GOOD = {}


def _good_bytes(tmp_path_factory):
    if "bytes" not in _GOOD:
        path = tmp_path_factory.mktemp("good") / "good.npz"
        small_model().save(path)
        _GOOD["bytes"] = path.read_bytes()
    return _GOOD["bytes"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_loads_or_raises_the_one_value_error(tmp_path_factory, data):
    good = _good_bytes(tmp_path_factory)
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)),
                               min_size=1, max_size=4))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(good))))
    corrupted = bytearray(good)
    for position, value in edits:
        corrupted[position] = value
    path = tmp_path_factory.mktemp("c") / "corrupt.npz"
    path.write_bytes(bytes(corrupted[:cut]))
    model = load_or_refuse(path)
    if model is not None:          # only bytes no reader looks at changed: same model
        x = np.linspace(0, 1, 36, dtype=np.float32).reshape(1, 1, 6, 6)
        np.testing.assert_array_equal(model.forward(x), small_model().forward(x))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10 ** 12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _mutate(value, draw):
    """Replace, delete or add one thing somewhere inside the JSON ``value``."""
    if isinstance(value, (dict, list)) and value and draw(st.booleans()):
        keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        key = draw(st.sampled_from(keys))
        value[key] = _mutate(value[key], draw)
        return value
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace" or not isinstance(value, (dict, list)):
        return draw(_json)
    if action == "delete" and value:
        key = draw(st.sampled_from(list(value) if isinstance(value, dict) else list(range(len(value)))))
        del value[key]
    elif isinstance(value, dict):
        value[draw(st.sampled_from(["class", "config", "children", "format", "meta", "layers",
                                    "in_channels", "kernel_size", "input_shape", "x"]))] = draw(_json)
    else:
        value.append(draw(_json))
    return value


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_json_mutations_load_or_raise_the_one_value_error(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("j")
    good = folder / "good.npz"
    good.write_bytes(_good_bytes(tmp_path_factory))
    arrays = arrays_of(good)
    spec = json.loads(str(arrays["architecture"]))
    for _ in range(data.draw(st.integers(1, 3))):
        spec = _mutate(spec, data.draw)
    load_or_refuse(write(folder / "mutated.npz", arrays, spec))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=st.sampled_from(["f4", "f8", "f2", "i4", "u1", "c8", "b1", "U3", "S3", ">f4", "<f8"]),
       shape=st.lists(st.integers(0, 4), max_size=4).map(tuple),
       name=st.sampled_from(["layer0.weight", "layer0.bias", "layer3.weight", "layer3.bias", "layer1.weight"]))
def test_random_replacement_arrays_load_or_raise_the_one_value_error(tmp_path_factory, dtype, shape, name):
    folder = tmp_path_factory.mktemp("a")
    good = folder / "good.npz"
    good.write_bytes(_good_bytes(tmp_path_factory))
    arrays = arrays_of(good)
    arrays[name] = np.zeros(shape, dtype)
    model = load_or_refuse(write(folder / "replaced.npz", arrays))
    if model is not None:
        assert arrays_of(good)[name].shape == shape and np.dtype(dtype).kind == "f"


# ------------------------------------------------------------------ saving
def test_saved_file_gets_the_umask_permissions_and_keeps_an_existing_files(tmp_path):
    old = os.umask(0o027)
    try:
        path = small_model().save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    os.chmod(path, 0o604)
    small_model(seed=1).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o604
    assert os.listdir(tmp_path) == ["m.npz"]


def test_meta_accepts_numpy_scalars_and_arrays(tmp_path):
    model = small_model()
    model.meta.update({"mean": np.float32(0.5), "std": np.array([0.25]), "seed": np.int64(3),
                       "class_names": np.array(["a", "b", "c"]), "input_shape": (1, 6, 6),
                       "notes": {np.str_("flag"): np.bool_(True), "grid": np.arange(4).reshape(2, 2)}})
    loaded = tc.load_model(model.save(tmp_path / "m.npz"))
    assert loaded.meta == {"mean": 0.5, "std": [0.25], "seed": 3, "class_names": ["a", "b", "c"],
                           "input_shape": [1, 6, 6], "notes": {"flag": True, "grid": [[0, 1], [2, 3]]}}


@pytest.mark.parametrize("meta, error, message", [
    ({"notes": {"when": object()}}, TypeError, r"meta\['notes'\]\['when'\] has type object, which a model file cannot hold"),
    ({"path": os}, TypeError, r"meta\['path'\] has type module"),
    ({3: "x"}, TypeError, "meta has the key 3"),
    ({"weights": np.array([1 + 2j])}, TypeError, r"meta\['weights'\] has type ndarray \(dtype kind 'c'\)"),
    ({"class_names": [1, 2]}, ValueError, r"meta.class_names\[0\] must be string, .*load_model would refuse"),
    ({"input_shape": [1, -6, 6]}, ValueError, r"meta.input_shape\[1\] must be >= 1"),
])
def test_meta_that_json_cannot_hold_names_the_key(tmp_path, meta, error, message):
    model = small_model()
    model.meta.update(meta)
    with pytest.raises(error, match=message):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_layers_that_cannot_be_saved_say_why(tmp_path):
    class Local(Layer):
        pass
    with pytest.raises(TypeError, match="define the class at module level"):
        tc.Sequential(Local()).save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"FilesTestForgetful.array_shapes\(config\) gives \{\}, but"):
        tc.Sequential(FilesTestForgetful()).save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="model files hold float32 or float64"):
        small_model().to(np.float16).save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_layers_register_themselves_and_keep_their_names():
    assert REGISTRY["FilesTestAffine"] is FilesTestAffine
    impostor = type(Layer)("Dense", (Layer,), {"__module__": "elsewhere", "__qualname__": "Dense"})
    assert REGISTRY["Dense"] is layers.Dense and impostor is not layers.Dense
    assert "Local" not in REGISTRY and "_Pool2D" not in REGISTRY


# ------------------------------------------------------------------ the format, written down
def test_the_document_states_the_codes_schema_formats_and_layers():
    text = open(DOC, encoding="utf-8").read()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    assert any(json.loads(block) == SCHEMA for block in blocks), "docs: the JSON schema differs from SCHEMA"
    assert re.search(rf"current format: \*\*{saving.FORMAT}\*\*", text)
    readable = ", ".join(str(f) for f in saving.READABLE_FORMATS)
    assert f"readable formats: **{readable}**" in text
    built_in = sorted(n for n, c in REGISTRY.items() if c.__module__.startswith("tinycnn."))
    listed = re.search(r"<!-- layer classes -->(.*?)<!-- /layer classes -->", text, re.S).group(1)
    assert sorted(re.findall(r"^\| `(\w+)` \|", listed, re.M)) == built_in
    for name in built_in:
        row = re.search(rf"^\| `{name}` \|(.*)\|(.*)\|$", listed, re.M)
        arrays = sorted(re.findall(r"`(\w+)`", row.group(2)))
        assert arrays == sorted(_example_arrays(name)), name


def _example_arrays(name):
    """Names of the arrays a built-in layer saves itself, from one small instance."""
    import inspect
    cls = REGISTRY[name]
    small = {"in_channels": 1, "out_channels": 1, "kernel_size": 1, "in_features": 1,
             "out_features": 1, "num_features": 1}
    params = inspect.signature(cls).parameters
    args = [layers.ReLU()] if any(p.kind == p.VAR_POSITIONAL for p in params.values()) else []
    layer = cls(*args, **{k: v for k, v in small.items() if k in params and params[k].default is params[k].empty})
    own_params, state = saving._own_arrays(layer)
    return list(own_params) + list(state)


# ------------------------------------------------------------------ the command line
def test_cli_reports_a_bad_model_file_in_one_line(tmp_path, capsys):
    from tinycnn.cli import main
    good = small_model().save(tmp_path / "good.npz")
    bad = rewrite(good, tmp_path / "bad.npz", lambda s, a: a.pop("layer3.bias"))
    assert main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} is not a valid tinycnn model file: layers[3] (Dense) is missing weights 'layer3.bias'" in err
    assert len(err.strip().splitlines()) == 1


def test_stored_input_shape_must_fit_the_layers(tmp_path):
    good = small_model().save(tmp_path / "good.npz")
    bad = rewrite(good, tmp_path / "bad.npz", lambda s, a: s["meta"].update({"input_shape": [1, 8, 8]}))
    refused(bad, r"meta.input_shape \[1, 8, 8\] does not fit its layers")


def test_children_the_container_does_not_keep_are_refused(tmp_path):
    good = nested_model().save(tmp_path / "good.npz")

    def add_group(spec, arrays):
        spec["layers"][1]["children"]["spare"] = [{"class": "ReLU", "config": {}}]
    refused(rewrite(good, tmp_path / "bad.npz", add_group),
            r"layers\[1\] \(FilesTestBranch\) was given children \{.*'spare': 1\} but holds")


def test_long_names_in_a_file_are_cut_short_in_the_message(tmp_path):
    good = small_model().save(tmp_path / "good.npz")
    bad = rewrite(good, tmp_path / "bad.npz", lambda s, a: s["layers"][0].update({"class": "X" * 100000}))
    assert len(refused(bad, "unknown class 'XXX")) < 1000


def test_real_residual_block_with_batchnorm_state_is_checked_by_path(tmp_path):
    rng = np.random.default_rng(0)
    block = layers.Residual(layers.Conv2D(2, 4, 3, stride=2, padding=1, bias=False, rng=rng),
                            layers.BatchNorm2D(4), layers.ReLU(),
                            shortcut=[layers.Conv2D(2, 4, 1, stride=2, bias=False, rng=rng), layers.BatchNorm2D(4)])
    model = tc.Sequential(block, layers.GlobalAvgPool2D(), layers.Dense(4, 2, rng=rng))
    model.forward(rng.normal(size=(8, 2, 6, 6)).astype(np.float32))        # moves the running statistics
    path = model.save(tmp_path / "res.npz")
    assert "layer0.shortcut.1.running_var" in arrays_of(path) and "layer0.layers.0.bias" not in arrays_of(path)
    loaded = tc.load_model(path)
    np.testing.assert_array_equal(loaded[0].shortcut[1].running_var, block.shortcut[1].running_var)
    bad = rewrite(path, tmp_path / "bad.npz",
                  lambda s, a: a.update({"layer0.shortcut.1.running_var": np.ones(3, np.float32)}))
    refused(bad, r"layers\[0\]\.children\.shortcut\[1\] \(BatchNorm2D\): array 'layer0.shortcut.1.running_var' "
                 r"has shape \(3,\), expected \(4,\)")
    no_bias = rewrite(path, tmp_path / "no_bias.npz",
                      lambda s, a: a.update({"layer0.layers.0.bias": np.zeros(4, np.float32)}))
    refused(no_bias, r"weights no layer uses: \['layer0.layers.0.bias'\]")


def test_layers_nested_too_deeply_are_refused_without_recursion_errors(tmp_path):
    node = '{"class": "ReLU", "config": {}}'
    for depth, reason in [(40, "nested deeper than 32 levels"), (5000, "nested too deeply")]:
        text = node
        for _ in range(depth):
            text = '{"class": "Residual", "config": {}, "children": {"layers": [' + text + ']}}'
        spec = '{"format": 2, "tinycnn_version": "0.1.0", "meta": {}, "layers": [' + text + ']}'
        np.savez(tmp_path / "deep.npz", architecture=np.array(spec))
        assert len(refused(tmp_path / "deep.npz", reason)) < 300
