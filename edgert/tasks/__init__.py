from . import registry
from .audio import AudioStream
from .base import Task
from .classification import Prediction, TextClassifier
from .embedding import TextEmbedder
from .image import ImageClassifier
from .raw import RawModel

__all__ = [
    "Task",
    "TextEmbedder",
    "TextClassifier",
    "ImageClassifier",
    "AudioStream",
    "Prediction",
    "RawModel",
    "registry",
]
