"""The one place that builds onnxruntime sessions.

Threads, spin-wait, graph optimisation, the optimised-model cache, the memory arena and providers are all set
here, from a ``SessionConfig``. Anything else that needs a session calls ``create_session``.
"""

from __future__ import annotations

import os
import platform
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import integrity
from .device import quantization_target, threads_override
from .errors import SessionError
from .modes import MEMORY_MODES  # what each mode means: edgert.modes
from .paths import ort_cache_dir

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


#: onnxruntime's input and output types as NumPy dtypes: the one map (tasks, bench and the export's card use it).
ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint64)": np.uint64,
    "tensor(uint32)": np.uint32,
    "tensor(uint16)": np.uint16,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,  # NumPy arrays of Python str, as onnxruntime takes and gives them
}


def numpy_dtype(ort_type: str) -> np.dtype:
    try:
        return np.dtype(ORT_DTYPES[ort_type])
    except KeyError:
        raise SessionError(f"input type {ort_type} is not supported") from None


@dataclass(frozen=True)
class SessionConfig:
    """How to build a session. ``intra_op_threads=0`` lets onnxruntime pick (one per physical core).

    ``EDGERT_THREADS`` overrides ``intra_op_threads`` for every session. Spin-wait is off by default: on a
    device, spinning threads burn idle cores (and battery) between requests for little latency gain.
    """

    intra_op_threads: int = 0
    inter_op_threads: int = 1
    spin_wait: bool = False
    graph_optimization: str = "all"
    cache_optimized: bool = True
    cache_dir: Path | None = None
    arena: bool = True
    prepacking: bool = True
    memory: str = "default"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    #: shared libraries of custom operators (onnxruntime-extensions' get_library_path(), a vendor's .so), registered
    #: with every session; models that use them are not cached optimised (the cache key cannot name the library)
    custom_op_libraries: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise SessionError(
                f"thread counts must be >= 0, got intra={self.intra_op_threads} inter={self.inter_op_threads}"
            )
        if self.graph_optimization not in _LEVELS:
            raise SessionError(
                f"graph_optimization must be one of {', '.join(_LEVELS)}, got {self.graph_optimization!r}"
            )
        for lib in self.custom_op_libraries:
            if not os.path.isfile(lib):
                raise SessionError(f"custom-op library {lib}: no such file")
        if not self.providers:
            raise SessionError("at least one execution provider is needed")
        if self.memory not in MEMORY_MODES:
            raise SessionError(f"memory must be one of {', '.join(MEMORY_MODES)}, got {self.memory!r}")
        if self.memory == "lean":
            object.__setattr__(self, "arena", False)  # frozen: set once, while the instance is built

    def resolved(self) -> SessionConfig:
        """This config with the EDGERT_THREADS override applied (edgert.device.threads_override)."""
        override = threads_override()
        return self if override is None else replace(self, intra_op_threads=override)


def _check_providers(wanted: tuple[str, ...]) -> None:
    available = ort.get_available_providers()
    missing = [p for p in wanted if p not in available]
    if missing:
        raise SessionError(
            f"execution provider {', '.join(missing)} is not available in this onnxruntime "
            f"(available: {', '.join(available)})"
        )


def _options(config: SessionConfig, level: str) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = config.intra_op_threads
    so.inter_op_num_threads = config.inter_op_threads
    so.graph_optimization_level = _LEVELS[level]
    so.enable_cpu_mem_arena = config.arena
    if not config.prepacking:
        so.add_session_config_entry("session.disable_prepacking", "1")
    so.log_severity_level = 3
    for lib in config.custom_op_libraries:
        try:
            so.register_custom_ops_library(str(lib))
        except Exception as exc:  # onnxruntime's own error types
            raise SessionError(f"custom-op library {lib}: onnxruntime cannot register it ({exc})") from None
    spin = "1" if config.spin_wait else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return so


def cached_model_path(config: SessionConfig, model_sha256: str) -> Path:
    """Optimised models depend on the model, the onnxruntime version, the level and the CPU they were made on."""

    key = (
        f"{model_sha256[:24]}-ort{ort.__version__}-{config.graph_optimization}-{platform.machine()}"
        f"{'' if config.prepacking else '-noprepack'}"
        f"-{quantization_target()}"
    )
    return (config.cache_dir or ort_cache_dir()) / f"{key}.onnx"


def _signature(cached: Path) -> Path:
    return cached.with_name(cached.name + ".sig")


def _trusted(cached: Path) -> bool:
    """A cached optimised graph is used only if its signature (made with this user's key when edgert wrote it)
    covers its name, which holds the source model's sha256, and its own sha256, and the file still has that hash."""
    try:
        sha, _, mac = _signature(cached).read_text(encoding="utf-8").partition("\n")
    except OSError:
        return False
    if not integrity.signed(f"{cached.name}|{sha}", mac.strip()):
        return False
    if integrity.recall(cached, sha) is not None:
        return True
    from .bundle import sha256_file

    try:
        ok = sha256_file(cached) == sha
    except OSError:
        return False
    if ok:
        integrity.remember(cached, sha)
    return ok


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _discard(tmp: Path) -> None:
    for p in (tmp, _signature(tmp)):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass


def _forget(cached: Path) -> None:
    for p in (cached, _signature(cached)):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass


def _store(tmp: Path, cached: Path) -> None:
    from .bundle import sha256_file

    sha = sha256_file(tmp)
    mac = integrity.sign(f"{cached.name}|{sha}")
    if mac is None:
        tmp.unlink(missing_ok=True)
        return
    sig_tmp = _signature(tmp)
    sig_tmp.write_text(f"{sha}\n{mac}\n", encoding="utf-8")
    if sig_tmp.stat().st_size == 0:  # some filesystems report a full disk only as a short file
        raise OSError(28, "No space left on device")
    os.replace(tmp, cached)
    os.replace(sig_tmp, _signature(cached))
    integrity.remember(cached, sha)


def create_session(
    model: str | os.PathLike[str] | bytes, config: SessionConfig | None = None, *, model_sha256: str | None = None
) -> ort.InferenceSession:
    """Builds an InferenceSession. With ``model_sha256`` and caching on, the optimised graph is saved once
    and later sessions load it with optimisation off, which shortens session creation. A cache entry is used
    only with a valid signature over its hash (see edgert.integrity); any other is deleted and rebuilt."""
    config = (config or SessionConfig()).resolved()
    _check_providers(config.providers)
    if isinstance(model, bytes):  # a model built in memory (the export's card): nothing to cache
        try:
            return ort.InferenceSession(
                model, _options(config, config.graph_optimization), providers=list(config.providers)
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SessionError(f"onnxruntime cannot load the model ({first})") from None
    model = Path(model)
    if not model.is_file():
        raise SessionError(f"{model}: no such model file")
    use_cache = (
        config.cache_optimized
        and model_sha256 is not None
        and config.graph_optimization != "disable"
        and not config.custom_op_libraries
    )
    try:
        if use_cache and model_sha256 is not None and integrity.secret() is not None:
            cached = cached_model_path(config, model_sha256)
            if _trusted(cached):
                try:
                    return ort.InferenceSession(
                        str(cached), _options(config, "disable"), providers=list(config.providers)
                    )
                except Exception:
                    pass  # damaged after all: rebuilt below
            _forget(cached)  # missing, unsigned, altered or stale: never trusted, rebuilt
            so = _options(config, config.graph_optimization)
            tmp: Path | None = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                so.optimized_model_filepath = str(tmp)
            except OSError:
                tmp = None  # a read-only cache is no reason to fail
            try:
                session = ort.InferenceSession(str(model), so, providers=list(config.providers))
            except Exception as exc:
                if tmp is None:
                    raise
                # writing the optimised copy failed (a full or read-only disk says "INVALID_PROTOBUF"): the cache
                # is lost, never the session. A model that is itself bad fails again below, with its own reason.
                _discard(tmp)
                session = ort.InferenceSession(
                    str(model), _options(config, config.graph_optimization), providers=list(config.providers)
                )
                integrity.degraded(f"cannot write the optimised-graph cache in {cached.parent} ({_first_line(exc)})")
                return session
            if tmp is not None and tmp.is_file():
                try:
                    _store(tmp, cached)
                except OSError as exc:  # a full or read-only disk costs the cache, not the session
                    _discard(tmp)
                    integrity.degraded(f"cannot write the optimised-graph cache in {cached.parent} ({exc.strerror})")
            return session
        return ort.InferenceSession(
            str(model), _options(config, config.graph_optimization), providers=list(config.providers)
        )
    except SessionError:
        raise
    except Exception as exc:  # onnxruntime raises its own exception types for bad model files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SessionError(f"{model}: onnxruntime cannot load it ({first})") from None
