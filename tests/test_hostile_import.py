"""A model folder made by an attacker: `edgert import` copies exactly the bytes onnxruntime reads, from regular
files inside the model's folder, within the bounds the tensors declare, and writes nothing outside its work
directory. Every case snapshots the whole surrounding tree before and after. onnxruntime itself is the oracle for
which files it reads: a file it does not need can be deleted and the model still runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgert
from edgert.bundle import Bundle
from edgert.errors import BundleError
from edgert.external_data import locations, references
from edgert.importer import ImportOptions, ModelImportError, import_model

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

W = np.arange(4, dtype=np.float32) + 0.5
RAW = ImportOptions(task="raw")


def _graph(initializers):
    return helper.make_graph(
        [helper.make_node("Add", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        initializers,
    )


def _external(location: str, *, offset: int = 0, inline_too: bool = False) -> TensorProto:
    """W stored in ``location``; with ``inline_too`` the data stays inline and the location is a stale decoy,
    which onnxruntime ignores (its data_location is DEFAULT)."""
    t = numpy_helper.from_array(W, "W")
    if not inline_too:
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(W.nbytes))):
        e = t.external_data.add()
        e.key, e.value = key, value
    return t


def _save(path: Path, tensor: TensorProto) -> Path:
    model = helper.make_model(_graph([tensor]), opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = "special"
    return out


def _refused(tmp_path: Path, model: Path, match: str) -> None:
    before = _snapshot(tmp_path)
    with pytest.raises((ModelImportError, BundleError), match=match):
        import_model(model, tmp_path / "out", RAW)
    assert _snapshot(tmp_path) == before  # nothing written, nothing left behind


def test_a_normal_external_data_model_imports_and_runs(tmp_path):
    src = tmp_path / "src"
    _save(src / "m.onnx", _external("w.bin"))
    (src / "w.bin").write_bytes(W.tobytes())
    bundle = import_model(src / "m.onnx", tmp_path / "out", RAW)
    assert sorted(bundle.files) == ["m.onnx", "w.bin"]
    got = edgert.load(bundle.path).run({"x": np.ones(4, np.float32)})["y"]
    np.testing.assert_array_equal(got, W + 1)


def test_symlink_and_dotdot_cannot_write_outside(tmp_path):
    """s -> a/b/c and the location s/../../../.bashrc: the OS resolves it inside the folder, a lexical join
    outside it. Before, the importer wrote to .bashrc beside the output."""
    src = tmp_path / "src"
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "s").symlink_to("a/b/c")
    (src / ".bashrc").write_bytes(W.tobytes())
    (tmp_path / ".bashrc").write_text("the user's own\n")
    _save(src / "m.onnx", _external("s/../../../.bashrc"))
    _refused(tmp_path, src / "m.onnx", "is not a plain relative path")
    assert (tmp_path / ".bashrc").read_text() == "the user's own\n"


@pytest.mark.parametrize("location", ["../w.bin", "/etc/hostname", "./w.bin", "a//w.bin", "a\\w.bin"])
def test_locations_that_are_not_plain_relative_paths_are_refused(tmp_path, location):
    src = tmp_path / "src"
    _save(src / "m.onnx", _external(location))
    (tmp_path / "w.bin").write_bytes(W.tobytes())
    _refused(tmp_path, src / "m.onnx", "is not a plain relative path")


def test_a_symlink_to_a_secret_outside_the_folder_is_not_copied(tmp_path):
    """Before: /proc/self/environ (or any file a symlink reaches) was copied, hashed and shipped, exit 0."""
    src = tmp_path / "src"
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"API_KEY=hunter2!")  # 16 bytes, the size W declares
    src.mkdir()
    (src / "w.bin").symlink_to(secret)
    _save(src / "m.onnx", _external("w.bin"))
    _refused(tmp_path, src / "m.onnx", "resolves outside")
    (src / "w.bin").unlink()
    (src / "w.bin").symlink_to("/proc/self/environ")
    _refused(tmp_path, src / "m.onnx", "resolves outside")


def test_devices_fifos_and_directories_are_refused_without_reading(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _save(src / "m.onnx", _external("w.bin"))
    (src / "w.bin").mkdir()
    _refused(tmp_path, src / "m.onnx", "is a directory")
    (src / "w.bin").rmdir()
    os.mkfifo(src / "w.bin")  # opening it for reading would block forever
    _refused(tmp_path, src / "m.onnx", "not a regular file")
    (src / "w.bin").unlink()
    inside_dev = src / "dev"
    inside_dev.mkdir()
    os.mknod(inside_dev / "zero", 0o600 | 0o020000, os.makedev(1, 5)) if os.geteuid() == 0 else None
    if (inside_dev / "zero").exists():  # a character device inside the folder: /dev/zero would fill the disk
        _save(src / "m.onnx", _external("dev/zero"))
        _refused(tmp_path, src / "m.onnx", "not a regular file")


def test_only_the_declared_bytes_are_copied_from_a_huge_file(tmp_path):
    """An 8 GB (sparse) file behind a 16-byte tensor: 16 bytes are copied, not 8 GB."""
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "w.bin", "wb") as f:
        f.write(W.tobytes())
        f.truncate(8 << 30)
    _save(src / "m.onnx", _external("w.bin"))
    bundle = import_model(src / "m.onnx", tmp_path / "out", RAW)
    assert bundle.files["w.bin"].bytes == W.nbytes
    np.testing.assert_array_equal(edgert.load(bundle.path).run({"x": np.zeros(4, np.float32)})["y"], W)
    short = tmp_path / "short"
    _save(short / "m.onnx", _external("w.bin", offset=8))
    (short / "w.bin").write_bytes(W.tobytes())  # 16 bytes, the tensor reads bytes 8 to 24
    with pytest.raises(ModelImportError, match="is 16 bytes, but its tensors read up to byte 24"):
        import_model(short / "m.onnx", tmp_path / "out2", RAW)


def test_a_stale_location_on_inline_data_is_neither_copied_nor_hashed(tmp_path):
    """onnxruntime reads external data only when data_location is EXTERNAL; the oracle: it runs the model with
    the decoy file absent. edgert then neither copies it nor asks the manifest to list it."""
    src = tmp_path / "src"
    _save(src / "m.onnx", _external("decoy.bin", inline_too=True))
    import onnxruntime as ort

    got = ort.InferenceSession(str(src / "m.onnx")).run(None, {"x": np.zeros(4, np.float32)})[0]
    np.testing.assert_array_equal(got, W)  # no decoy.bin on disk, and onnxruntime did not need one
    assert locations(src / "m.onnx") == []
    (src / "decoy.bin").write_bytes(b"x" * 16)
    bundle = import_model(src / "m.onnx", tmp_path / "out", RAW)
    assert sorted(bundle.files) == ["m.onnx"]


def test_external_data_in_a_function_default_attribute_is_found(tmp_path):
    """A local function's default attribute value can hold an external tensor; onnxruntime reads it when the
    function is inlined, so edgert must hash it. Before, the scan skipped function attributes."""
    t = _external("fn.bin")
    attr = helper.make_attribute("value", t)
    fn = helper.make_function(
        "local", "AddW", ["x"], ["y"], [helper.make_node("Constant", [], ["w"], value=t)], [helper.make_opsetid("", 18)]
    )
    fn.attribute_proto.append(attr)
    graph = _graph([numpy_helper.from_array(W, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], functions=[fn])
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    refs = references(path)
    assert [r.location for r in refs] == ["fn.bin", "fn.bin"] and all(r.nbytes == W.nbytes for r in refs)
    del fn.attribute_proto[:]
    del fn.node[:]
    fn.attribute_proto.append(attr)  # the default attribute alone
    path.write_bytes(model.SerializeToString())
    assert locations(path) == ["fn.bin"]


def test_a_location_that_is_not_utf8_is_refused(tmp_path):
    """Decoded with replacement characters, a decoy file would be hashed while onnxruntime opened the raw name."""
    src = tmp_path / "src"
    path = _save(src / "m.onnx", _external("ABCD.bin"))
    data = path.read_bytes().replace(b"ABCD.bin", b"\xff\xfe\xfd\xfc.bin")
    path.write_bytes(data)
    with pytest.raises(BundleError, match="external-data location that is not UTF-8"):
        references(path)
    _refused(tmp_path, path, "not UTF-8")


def test_load_refuses_a_graph_whose_external_data_is_not_listed(tmp_path):
    src = tmp_path / "src"
    _save(src / "m.onnx", _external("w.bin"))
    (src / "w.bin").write_bytes(W.tobytes())
    bundle = import_model(src / "m.onnx", tmp_path / "out", RAW)
    _save(bundle.path / "m2.onnx", _external("other.bin"))  # swapped graph names an unlisted file
    os.replace(bundle.path / "m2.onnx", bundle.path / "m.onnx")
    with pytest.raises(BundleError):
        edgert.load(bundle.path)


def test_constructors_verify_too(tmp_path):
    """edgert.TextEmbedder(Bundle.open(p)) and friends hash what they run, as edgert.load does; an unverified
    pipeline does not touch the optimised-graph cache."""
    src = tmp_path / "src"
    _save(src / "m.onnx", _external("w.bin"))
    (src / "w.bin").write_bytes(W.tobytes())
    bundle = import_model(src / "m.onnx", tmp_path / "out", RAW)
    data = bytearray((bundle.path / "w.bin").read_bytes())
    data[0] ^= 1
    (bundle.path / "w.bin").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 mismatch"):
        edgert.RawModel(Bundle.open(bundle.path))
    raw = edgert.RawModel(Bundle.open(bundle.path), verify=False)
    assert raw.session_config.cache_optimized is False


def test_cli_refuses_a_hostile_import_in_one_line(tmp_path):
    src = tmp_path / "src"
    _save(src / "m.onnx", _external("../../etc/passwd"))
    r = subprocess.run(
        [sys.executable, "-m", "edgert", "import", str(src / "m.onnx"), "-o", str(tmp_path / "out"), "--task", "raw"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a plain relative path" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()
    none = subprocess.run(
        [sys.executable, "-m", "edgert", "import", str(src / "m.onnx"), "-o", str(tmp_path / "o2")],
        capture_output=True,
        text=True,
    )
    assert none.returncode == 2 and "--task" in none.stderr  # leaving out --task no longer makes a raw bundle
