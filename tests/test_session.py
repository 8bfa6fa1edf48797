"""The one session factory: threads, the EDGERT_THREADS override, providers, the optimised-model cache."""

from __future__ import annotations

import numpy as np
import pytest

from edgert import Bundle, SessionConfig
from edgert.errors import SessionError
from edgert.session import cached_model_path, create_session


def test_threads_and_env_override(minilm_bundle, monkeypatch):
    model = minilm_bundle / "model.int8.onnx"
    s = create_session(model, SessionConfig(intra_op_threads=1, cache_optimized=False))
    assert s.get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv("EDGERT_THREADS", "2")
    s = create_session(model, SessionConfig(intra_op_threads=1, cache_optimized=False))
    assert s.get_session_options().intra_op_num_threads == 2
    monkeypatch.setenv("EDGERT_THREADS", "many")
    with pytest.raises(SessionError, match="EDGERT_THREADS must be a whole number, got 'many'"):
        create_session(model)


def test_spin_wait_off_by_default(minilm_bundle):
    s = create_session(minilm_bundle / "model.int8.onnx", SessionConfig(cache_optimized=False))
    entries = s.get_session_options().get_session_config_entry
    assert entries("session.intra_op.allow_spinning") == "0"
    s = create_session(minilm_bundle / "model.int8.onnx", SessionConfig(spin_wait=True, cache_optimized=False))
    assert s.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_missing_provider_fails_fast(minilm_bundle):
    with pytest.raises(SessionError, match="CUDAExecutionProvider is not available.*available: .*CPU"):
        create_session(minilm_bundle / "model.onnx", SessionConfig(providers=("CUDAExecutionProvider",)))


def test_bad_config_values():
    with pytest.raises(SessionError, match="graph_optimization must be one of"):
        SessionConfig(graph_optimization="max")
    with pytest.raises(SessionError, match="thread counts must be >= 0"):
        SessionConfig(intra_op_threads=-1)


def test_not_a_model_file(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(SessionError, match="junk.onnx: onnxruntime cannot load it"):
        create_session(junk)


def test_optimised_model_cache(minilm_bundle, tmp_path):
    bundle = Bundle.open(minilm_bundle)
    sha = bundle.files["model.int8.onnx"].sha256
    config = SessionConfig(cache_dir=tmp_path)
    path = cached_model_path(config, sha)
    assert not path.exists()
    feeds = {"input_ids": np.array([[101, 7592, 102]]), "attention_mask": np.ones((1, 3), np.int64)}
    first = create_session(minilm_bundle / "model.int8.onnx", config, model_sha256=sha)
    assert path.is_file() and not list(tmp_path.glob(".*.tmp"))
    second = create_session(minilm_bundle / "model.int8.onnx", config, model_sha256=sha)
    np.testing.assert_allclose(second.run(None, feeds)[1], first.run(None, feeds)[1], atol=1e-6)
    path.write_bytes(b"damaged")  # a damaged cache entry is rebuilt, not fatal
    third = create_session(minilm_bundle / "model.int8.onnx", config, model_sha256=sha)
    np.testing.assert_allclose(third.run(None, feeds)[1], first.run(None, feeds)[1], atol=1e-6)
    assert path.stat().st_size > 1000
