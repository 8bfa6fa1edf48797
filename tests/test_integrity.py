"""Verification covers every byte that runs: external weights, the optimised-graph cache, remembered hashes, and
manifest paths that try to leave the bundle. Each test reproduces a way the check was bypassed before.

The bundles here are tiny raw models made with onnx.helper: y = x @ W, so a tampered W shows in the output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgert
from edgert import integrity
from edgert.bundle import MANIFEST, Bundle, sha256_file, write_manifest
from edgert.errors import BundleError
from edgert.session import SessionConfig, cached_model_path

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

W = np.arange(12, dtype=np.float32).reshape(3, 4)
X = np.ones((1, 3), dtype=np.float32)


def _model(w: np.ndarray = W):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def make_bundle(root: Path, *, external: bool, name: str = "model.onnx", w: np.ndarray = W) -> Path:
    root.mkdir(parents=True)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = Path(name).name + ".data"
    if external:
        onnx.save(_model(w), str(path), save_as_external_data=True, location=data, size_threshold=0)
    else:
        onnx.save(_model(w), str(path))
    manifest = {"task": "raw", "models": {"fp32": name}, "default_model": "fp32", "inputs": [], "outputs": []}
    write_manifest(root, manifest)
    return root


def _run(bundle: Path) -> np.ndarray:
    return edgert.load(bundle)({"x": X})["y"]


def _tamper(path: Path, new: bytes) -> None:
    """Same size, new bytes, then the old mtime back (as a careful attacker would)."""
    st = path.stat()
    assert len(new) == st.st_size
    path.write_bytes(new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_external_data_tamper_is_caught_at_load(tmp_path):
    bundle = make_bundle(tmp_path / "b", external=True)
    np.testing.assert_array_equal(_run(bundle), X @ W)
    data = bundle / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[:4] = np.float32(1000).tobytes()
    _tamper(data, bytes(raw))
    with pytest.raises(BundleError, match="model.onnx.data: sha256 mismatch"):
        _run(bundle)


def test_external_data_the_manifest_does_not_list_is_refused(tmp_path):
    """The graph, not the manifest, says what onnxruntime reads: an unlisted weights file is never run."""
    bundle = make_bundle(tmp_path / "b", external=True)
    manifest = json.loads((bundle / MANIFEST).read_text())
    del manifest["files"]["model.onnx.data"]
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="reads external data 'model.onnx.data', which edgert.json does not list"):
        _run(bundle)


def test_optimised_graph_cache_tamper_is_rebuilt_not_trusted(tmp_path):
    bundle = make_bundle(tmp_path / "b", external=False)
    np.testing.assert_array_equal(_run(bundle), X @ W)  # writes the optimised graph to the cache
    sha = Bundle.open(bundle).files["model.onnx"].sha256
    cached = cached_model_path(SessionConfig().resolved(), sha)
    assert cached.is_file()
    # a valid model with other weights, put where the cache entry was
    onnx.save(_model(W * -1), str(cached))
    np.testing.assert_array_equal(_run(bundle), X @ W)
    assert cached.is_file() and Path(str(cached) + ".sig").is_file()  # rebuilt and signed again
    np.testing.assert_array_equal(_run(bundle), X @ W)


def test_cache_entry_with_a_forged_signature_is_not_trusted(tmp_path):
    bundle = make_bundle(tmp_path / "b", external=False)
    sha = Bundle.open(bundle).files["model.onnx"].sha256
    cached = cached_model_path(SessionConfig().resolved(), sha)
    cached.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(_model(W * -1), str(cached))
    Path(str(cached) + ".sig").write_text(f"{sha256_file(cached)}\n{'0' * 64}\n")
    np.testing.assert_array_equal(_run(bundle), X @ W)


def test_prewritten_verified_stamps_do_not_bless_a_tampered_file(tmp_path):
    """A stamp is a file anyone could have written; only one signed with this user's key counts."""
    bundle = make_bundle(tmp_path / "b", external=True)
    data = bundle / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[:4] = np.float32(1000).tobytes()
    _tamper(data, bytes(raw))
    # the stamp a forger would write: the right name (it depends only on public facts), unsigned contents
    entry = Bundle.open(bundle).files["model.onnx.data"]
    key = integrity._file_key(data, entry.sha256)
    stamp = integrity._stamp_path(key)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text('{"forged": true}\n{}')
    with pytest.raises(BundleError, match="sha256 mismatch"):
        _run(bundle)


def test_a_key_others_can_read_signs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(integrity, "_cached_key", None)
    assert integrity.secret() is not None
    key = tmp_path / "home" / "secret"
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    monkeypatch.setattr(integrity, "_cached_key", None)
    assert integrity.secret() is None and integrity.sign("x") is None
    monkeypatch.setattr(integrity, "_cached_key", None)


@pytest.mark.parametrize("name", ["../outside.bin", "/etc/hostname", "a/../../outside.bin", "./model.onnx", ""])
def test_manifest_paths_must_stay_inside_the_bundle(tmp_path, name):
    bundle = make_bundle(tmp_path / "b", external=False)
    (tmp_path / "outside.bin").write_bytes(b"secret")
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] = {"bytes": 6, "sha256": "0" * 64}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="is not a plain relative path inside the bundle"):
        Bundle.open(bundle, verify=True)


def test_symlink_out_of_the_bundle_is_refused(tmp_path):
    bundle = make_bundle(tmp_path / "b", external=False)
    outside = tmp_path / "outside.onnx"
    shutil.move(bundle / "model.onnx", outside)
    (bundle / "model.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match="resolves outside the bundle"):
        Bundle.open(bundle)
    with pytest.raises(BundleError, match="resolves outside the bundle"):
        _run(bundle)


def test_symlink_inside_the_bundle_is_fine(tmp_path):
    bundle = make_bundle(tmp_path / "b", external=False)
    shutil.move(bundle / "model.onnx", bundle / "real.onnx")
    (bundle / "model.onnx").symlink_to("real.onnx")
    manifest = json.loads((bundle / MANIFEST).read_text())
    write_manifest(bundle, {k: v for k, v in manifest.items() if k not in ("files", "format", "schema_version")})
    np.testing.assert_array_equal(_run(bundle), X @ W)


@pytest.mark.parametrize("external", [False, True], ids=["single-file", "external-data"])
def test_model_in_a_subdirectory(tmp_path, external):
    bundle = make_bundle(tmp_path / "b", external=external, name="onnx/model.onnx")
    b = Bundle.open(bundle, verify=True)
    files = b.model_files(verify=True)
    assert files == (["onnx/model.onnx", "onnx/model.onnx.data"] if external else ["onnx/model.onnx"])
    np.testing.assert_array_equal(_run(bundle), X @ W)


def test_mismatch_message_names_only_bundle_files(tmp_path):
    bundle = make_bundle(tmp_path / "b", external=False)
    model = bundle / "model.onnx"
    raw = bytearray(model.read_bytes())
    raw[-1] ^= 1
    _tamper(model, bytes(raw))
    with pytest.raises(BundleError, match=r"model.onnx: sha256 mismatch \(expected [0-9a-f]{12}\.\., got"):
        Bundle.open(bundle, verify=True)


def test_an_unverified_load_does_not_seed_the_cache(tmp_path):
    """load(verify=False) runs a tampered model as asked, but its optimised graph must not be cached under the
    manifest's hash, where a later verified load would find it."""
    w = W + 7  # weights of its own: no other test has cached this model
    bundle = make_bundle(tmp_path / "b", external=False, w=w)
    model = bundle / "model.onnx"
    good = model.read_bytes()
    onnx.save(_model(w * -1), str(model))
    assert model.stat().st_size == len(good)  # same size: only the hash tells
    np.testing.assert_array_equal(edgert.load(bundle, verify=False)({"x": X})["y"], X @ (w * -1))
    sha = Bundle.open(bundle).files["model.onnx"].sha256
    assert not cached_model_path(SessionConfig().resolved(), sha).exists()
    model.write_bytes(good)
    np.testing.assert_array_equal(_run(bundle), X @ w)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB filesystem (tmpfs), so "no space left" comes from the kernel, not from a mock."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount command here (the aarch64 root has none): a small tmpfs cannot be made")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path) -> None:
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_full_cache_disk_costs_the_cache_never_the_result(tmp_path, tiny_disk, monkeypatch):
    """Before: INVALID_PROTOBUF from every load once EDGERT_HOME was full. Now one warning and the right answer."""
    monkeypatch.setenv("EDGERT_HOME", str(tiny_disk / "home"))
    monkeypatch.setattr(integrity, "_cached_key", None)
    monkeypatch.setattr(integrity, "_said", set())
    w = np.ones((256, 200), dtype=np.float32)  # 200 KB: the optimised copy cannot fit in 64 KiB
    root = tmp_path / "b"
    root.mkdir()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 200])],
        [numpy_helper.from_array(w, "W")],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(root / "model.onnx")
    )
    write_manifest(root, {"task": "raw", "models": {"fp32": "model.onnx"}, "default_model": "fp32", "inputs": [],
                          "outputs": []})  # fmt: skip
    x = np.ones((1, 256), dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="caching is off: cannot write the optimised-graph cache"):
        got = edgert.load(root)({"x": x})["y"]
    np.testing.assert_array_equal(got, x @ w)
    assert not [p for p in (tiny_disk / "home" / "ort-cache").iterdir()]  # no partial file left behind
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per process, not at every load
        np.testing.assert_array_equal(edgert.load(root)({"x": x})["y"], x @ w)


def test_no_room_for_the_key_leaves_no_empty_key_behind(tmp_path, tiny_disk, monkeypatch):
    """Before: a 0-byte secret stayed on a full disk, and remembering was off for good even after space returned."""
    monkeypatch.setenv("EDGERT_HOME", str(tiny_disk / "home"))
    monkeypatch.setattr(integrity, "_cached_key", None)
    monkeypatch.setattr(integrity, "_said", set())
    (tiny_disk / "home").mkdir()
    _fill(tiny_disk)
    with pytest.warns(RuntimeWarning, match="cannot create the signing key"):
        assert integrity.secret() is None
    assert not os.path.lexists(tiny_disk / "home" / "secret")
    (tiny_disk / "filler").unlink()
    assert integrity.secret() is not None and len((tiny_disk / "home" / "secret").read_bytes()) == 32
    # a short key an older edgert left is replaced, not trusted and not kept forever
    monkeypatch.setattr(integrity, "_cached_key", None)
    (tiny_disk / "home" / "secret").write_bytes(b"")
    assert integrity.secret() is not None and len((tiny_disk / "home" / "secret").read_bytes()) == 32
