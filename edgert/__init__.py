"""edgert: run small ONNX models on edge devices. ``edgert.load(bundle_dir)`` is the front door."""

from ._version import __version__
from .api import load
from .bundle import Bundle
from .errors import EdgertError
from .eval import evaluate
from .kernels import IMPLEMENTATION as KERNELS
from .monitor.watch import monitor
from .session import SessionConfig
from .tasks import AudioStream, ImageClassifier, Prediction, RawModel, Task, TextClassifier, TextEmbedder
from .tasks.image_map import ImageMap

__all__ = [
    "__version__",
    "load",
    "evaluate",
    "monitor",
    "Bundle",
    "SessionConfig",
    "TextEmbedder",
    "TextClassifier",
    "ImageClassifier",
    "ImageMap",
    "AudioStream",
    "Task",
    "RawModel",
    "Prediction",
    "EdgertError",
    "KERNELS",
]
