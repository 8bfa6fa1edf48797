"""A real export of the packaged all-MiniLM-L6-v2 (fp32 and dynamic int8), its manifest, card and hashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgert
from edgert import Bundle
from edgert.errors import BundleError, ExportError

from .conftest import CORPUS, needs_export


def test_manifest_describes_the_bundle(minilm_bundle):
    raw = json.loads((minilm_bundle / "edgert.json").read_text())
    assert raw["format"] == "edgert.bundle" and raw["schema_version"] == 1
    assert raw["task"] == "sentence-embedding"
    assert raw["models"] == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    # the search keeps int8 weights; it is the default only where it is faster than fp32 on this CPU
    assert raw["default_model"] == ("fp32" if raw["card"]["search"]["default"] == "fp32" else "int8")
    assert [i["name"] for i in raw["inputs"]] == ["input_ids", "attention_mask"]
    assert all(i["dtype"] == "int64" for i in raw["inputs"])
    assert {o["name"] for o in raw["outputs"]} >= {"token_embeddings", "sentence_embedding"}
    assert raw["pre"]["max_length"] == 256  # from the model's sentence_bert_config.json, not tokenizer.json's 128
    assert raw["post"] == {"output": "token_embeddings", "pooling": "mean", "normalize": True, "dim": 384}
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json"):
        entry = raw["files"][name]
        assert entry["bytes"] == (minilm_bundle / name).stat().st_size
        assert len(entry["sha256"]) == 64
    prov = raw["provenance"]
    assert prov["source"] == "minilm" and prov["seed"] == 0
    for dist in ("edgert", "optimum", "onnxruntime", "torch", "transformers"):
        assert prov["versions"][dist], dist
    assert prov["options"]["quantize"] == "auto"


def test_tokenizer_in_bundle_no_longer_pads_to_128(minilm_bundle):
    tok = json.loads((minilm_bundle / "tokenizer.json").read_text())
    assert tok["padding"] is None
    assert tok["truncation"]["max_length"] == 256


def test_parameter_count_matches_pytorch(minilm_bundle, st_model):
    card = Bundle.open(minilm_bundle).card
    torch_params = sum(p.numel() for p in st_model.parameters())
    assert card["parameters"] == torch_params == 22_713_216
    # The graph drops BERT's pooler, which sentence embeddings never use.
    unused = sum(p.numel() for n, p in st_model.named_parameters() if ".pooler." in n)
    assert card["onnx_parameters"] == torch_params - unused


def test_macs_match_the_analytic_count(minilm_bundle, minilm_dir):
    config = json.loads((minilm_dir / "config.json").read_text())
    h, i, layers, t = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"], 128
    per_layer = t * (4 * h * h + 2 * h * i) + 2 * t * t * h  # projections + FFN + QK^T and AV
    card = Bundle.open(minilm_bundle).card
    assert card["macs"] == layers * per_layer
    assert card["flops"] == 2 * card["macs"]
    assert card["reference_input"] == {"batch_size": 1, "sequence_length": 128}


def test_card_records_quantization_and_agreement(minilm_bundle):
    card = Bundle.open(minilm_bundle).card
    assert card["opset"] >= 14
    q = card["quantization"]
    assert q["mode"] == "nbits" and q["accuracy_level"] == 4
    assert q["target"] in ("avx2", "avx512", "avx512_vnni", "arm64", "arm64_dotprod")
    assert card["quantized_ops"].get("MatMulNBits", 0) == 36  # 6 layers x 6 weight matmuls
    assert card["size_bytes"]["int8"] < card["size_bytes"]["fp32"] / 3
    agreement = card["agreement"]
    assert agreement["optimum_validation"] == "passed"
    assert agreement["fp32_vs_pytorch"]["min_cosine"] >= 0.9999
    assert 0.99 < agreement["int8_vs_fp32"]["mean_cosine"] < 1.0


def test_fp32_bundle_matches_sentence_transformers(minilm_bundle, st_model):
    model = edgert.load(minilm_bundle, variant="fp32")
    got = model.embed(CORPUS, batch_size=4)
    want = st_model.encode(CORPUS, convert_to_numpy=True)
    cos = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cos.min() >= 0.9999, dict(zip(CORPUS, cos))


def test_flipped_byte_is_refused(minilm_bundle, copy_bundle):
    bundle = copy_bundle(minilm_bundle)
    model = bundle / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.int8\.onnx: sha256 mismatch"):
        edgert.load(bundle, variant="int8")
    with pytest.raises(BundleError, match=r"model\.int8\.onnx: sha256 mismatch"):
        Bundle.open(bundle, verify=True)
    edgert.load(bundle, variant="fp32")  # the untouched fp32 model still loads


def test_remembered_verification_still_catches_a_later_change(minilm_bundle, copy_bundle):
    bundle = copy_bundle(minilm_bundle)
    edgert.load(bundle, variant="int8")  # hashes the int8 model and remembers the file version
    model = bundle / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0x01
    model.write_bytes(bytes(data))  # same size: only the hash can tell
    with pytest.raises(BundleError, match=r"model\.int8\.onnx: sha256 mismatch"):
        edgert.load(bundle, variant="int8")


def test_truncated_model_is_refused(minilm_bundle, copy_bundle):
    bundle = copy_bundle(minilm_bundle)
    model = bundle / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(BundleError, match=r"model\.onnx: size mismatch \(expected \d+ bytes, got 1000\)"):
        Bundle.open(bundle)


@pytest.mark.parametrize("content", ['{"format": "edgert.bundle", "schema_vers', "", "[]", '{"format": "x"}'])
def test_corrupt_manifest_is_refused(minilm_bundle, copy_bundle, content):
    bundle = copy_bundle(minilm_bundle)
    (bundle / "edgert.json").write_text(content)
    with pytest.raises(BundleError, match="edgert.json"):
        Bundle.open(bundle)


def test_manifest_missing_a_key_is_refused(minilm_bundle, copy_bundle):
    bundle = copy_bundle(minilm_bundle)
    raw = json.loads((bundle / "edgert.json").read_text())
    del raw["models"]
    (bundle / "edgert.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="malformed manifest.*models"):
        Bundle.open(bundle)


def _cli(*args, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "edgert.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _one_line_error(result, pattern):
    import re

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


@needs_export
def test_cli_errors_are_one_line(tmp_path, minilm_bundle, copy_bundle):
    _one_line_error(_cli("export", str(tmp_path / "nope"), "-o", str(tmp_path / "o")), "nope: no such directory")
    (tmp_path / "empty").mkdir()
    _one_line_error(
        _cli("export", str(tmp_path / "empty"), "-o", str(tmp_path / "o")),
        "no config.json here; not a Hugging Face model directory",
    )
    _one_line_error(_cli("export", "minilm", "-o", str(minilm_bundle)), "already exists; pass --force")
    _one_line_error(_cli("inspect", str(tmp_path / "missing")), "no such bundle directory")
    _one_line_error(_cli("inspect", str(tmp_path / "empty")), "no edgert.json")
    bad = copy_bundle(minilm_bundle)
    (bad / "edgert.json").write_text('{"format": "edgert.bun')
    _one_line_error(_cli("inspect", str(bad)), "corrupt or truncated manifest")


@needs_export
def test_unknown_task_is_refused(tmp_path):
    result = _cli("export", "minilm", "-o", str(tmp_path / "o"), "--task", "translation")
    _one_line_error(result, "invalid choice: 'translation'")
    with pytest.raises(ExportError, match="task: 'translation' is not one of auto, "):
        from edgert.export import ExportOptions

        ExportOptions(task="translation")


def test_export_without_torch_says_what_to_install(tmp_path):
    # A meta-path hook that hides torch and optimum, as on a runtime-only install.
    code = f"""
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'optimum'):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Hide())
from edgert.cli.main import main
sys.exit(main(['export', 'minilm', '-o', {str(tmp_path / "o")!r}]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    _one_line_error(result, r"pip install 'edgert\[export\]'")
    assert not (tmp_path / "o").exists()


@needs_export
def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    from edgert.export import build

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(build.card, "count_macs", boom)
    with pytest.raises(KeyboardInterrupt):
        build.export_bundle("minilm", tmp_path / "out", build.ExportOptions(quantize="none"), echo=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_inspect_prints_card_and_json(minilm_bundle):
    result = _cli("inspect", str(minilm_bundle))
    assert result.returncode == 0, result.stderr
    assert "22,713,216" in result.stdout and "GMACs" in result.stdout and "sha256 verified" in result.stdout
    result = _cli("inspect", str(minilm_bundle), "--json")
    assert json.loads(result.stdout)["card"]["parameters"] == 22_713_216


def test_force_replaces_an_existing_bundle(tmp_path, tiny_classifier_dir):
    from edgert.export import ExportOptions, export_bundle

    out = tmp_path / "b"
    first = export_bundle(str(tiny_classifier_dir), out, ExportOptions(quantize="none"), echo=lambda s: None)
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(str(tiny_classifier_dir), out, ExportOptions(quantize="none"), echo=lambda s: None)
    second = export_bundle(
        str(tiny_classifier_dir), out, ExportOptions(quantize="none", force=True), echo=lambda s: None
    )
    assert second.provenance["exported_at"] >= first.provenance["exported_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert Path(second.path) == out.resolve()
