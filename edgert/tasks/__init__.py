from .base import Task
from .classification import Prediction, TextClassifier
from .embedding import TextEmbedder
from .raw import RawModel

__all__ = ["Task", "TextEmbedder", "TextClassifier", "Prediction", "RawModel"]
