"""Every bundle edgert writes validates against the manifest's JSON Schema (edgert/data/manifest.schema.json),
and the schema refuses what Bundle.open refuses: paths out of the bundle, bad hashes, unknown tasks."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from edgert.bundle import MANIFEST

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(resources.files("edgert").joinpath("data/manifest.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", ["minilm_bundle", "classifier_bundle", "vit_bundle"])
def test_exported_bundles_validate(validator, request, name):
    manifest = json.loads((request.getfixturevalue(name) / MANIFEST).read_text())
    errors = [e.message for e in validator.iter_errors(manifest)]
    assert not errors, errors


def test_imported_bundle_validates(validator, tmp_path):
    from edgert.importer import ImportOptions, import_model

    from .helpers import LABELS, classifier

    model = classifier(tmp_path / "m.onnx", layout="NHWC", labels=LABELS)
    options = ImportOptions(task="image-classification", labels="metadata", channel_order="BGR")
    bundle = import_model(model, tmp_path / "b", options)
    errors = [e.message for e in validator.iter_errors(json.loads((bundle.path / MANIFEST).read_text()))]
    assert not errors, errors


@pytest.mark.parametrize(
    "change",
    [
        {"files": {"../outside": {"bytes": 1, "sha256": "0" * 64}}},
        {"files": {"/etc/passwd": {"bytes": 1, "sha256": "0" * 64}}},
        {"files": {"a/./b": {"bytes": 1, "sha256": "0" * 64}}},
        {"files": {"model.onnx": {"bytes": 1, "sha256": "abc"}}},
        {"task": "translation"},
        {"schema_version": 2},
        {"post": {"normalize": "false"}},
        {"pre": {"max_length": "abc"}},
        {"pre": {"size": 0}},
    ],
    ids=["dotdot", "absolute", "dot", "short-hash", "task", "version", "bool-string", "int-string", "size-0"],
)
def test_schema_refuses_what_the_runtime_refuses(validator, minilm_bundle, change):
    manifest = json.loads((minilm_bundle / MANIFEST).read_text())
    manifest.update(change)
    assert list(validator.iter_errors(manifest))


def test_imported_audio_bundle_validates(validator, tmp_path):
    from edgert.importer import import_model

    from .helpers import VAD_OPTIONS, vad_model

    bundle = import_model(vad_model(tmp_path / "vad.onnx"), tmp_path / "b", VAD_OPTIONS)
    errors = [e.message for e in validator.iter_errors(json.loads((bundle.path / MANIFEST).read_text()))]
    assert not errors, errors


def test_the_schema_task_enum_is_the_registry():
    """The schema's list of tasks is derived from the pipelines' registry: a task added in edgert/tasks/ must be
    added to the schema too, and this says so."""
    from edgert.tasks import registry

    schema = json.loads(resources.files("edgert").joinpath("data/manifest.schema.json").read_text())
    assert sorted(schema["properties"]["task"]["enum"]) == sorted(registry.names())
