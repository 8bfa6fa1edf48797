"""Image classification: pixels to the model's input as transformers' (PIL-based) image processors make it, then
probabilities and the top k labels.

Preprocessing follows the bundle's recorded ``preprocessor_config.json``: resize (Pillow's exact algorithm, see
edgert._resample), center crop, rescale and normalise. Rescale and normalise fold into one 256-entry table per
channel, computed in float32 in transformers' order, so the model sees the same numbers as under transformers.
Images are uint8 arrays (H, W, 3) RGB, (H, W) grey or (H, W, 4) RGBA; with Pillow installed also file paths,
encoded bytes and PIL images.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _resample, kernels
from ..bundle import Bundle
from ..errors import BundleError, EdgertError, TaskError
from ..session import SessionConfig
from .base import numpy_dtype
from .classification import Classifier, Prediction, probabilities, top_predictions

# Processors whose integer `size` means the shortest edge (transformers' default_to_square=False).
_SHORTEST_EDGE_PROCESSORS = {
    "CLIPImageProcessor",
    "ConvNextImageProcessor",
    "BitImageProcessor",
    "MobileNetV1ImageProcessor",
    "MobileNetV2ImageProcessor",
}


def _hw(value: Any, what: str, where: Path) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict) and {"height", "width"} <= set(value):
        return int(value["height"]), int(value["width"])
    raise TaskError(f"{where}: image preprocessor {what} {value!r} is not supported (need height and width)")


def _short_long(h: int, w: int, shortest: int) -> tuple[int, int]:
    """transformers' get_resize_output_image_size with default_to_square=False."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = shortest, int(shortest * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


class ImagePreprocessor:
    """The bundle's image preprocessing; ``size`` is the (height, width) every image ends at."""

    def __init__(self, pre: dict[str, Any], where: Path):
        self.processor = str(pre.get("image_processor_type") or "")
        processor = self.processor.removesuffix("Fast")
        self.resample = int(pre.get("resample", _resample.BILINEAR))
        if self.resample not in _resample.NAMES:
            raise TaskError(f"{where}: image preprocessor resample={self.resample} is not a known filter")
        self.do_resize = bool(pre.get("do_resize", True))
        size = pre.get("size")
        if isinstance(size, int):
            size = (
                {"shortest_edge": size} if processor in _SHORTEST_EDGE_PROCESSORS else {"height": size, "width": size}
            )
        self.crop_pct = pre.get("crop_pct") if processor == "ConvNextImageProcessor" else None
        self.do_center_crop = bool(pre.get("do_center_crop", False)) and self.crop_pct is None
        self.crop = _hw(pre["crop_size"], "crop_size", where) if self.do_center_crop and "crop_size" in pre else None
        if self.do_center_crop and self.crop is None:
            raise TaskError(f"{where}: image preprocessor asks for a center crop but gives no crop_size")
        self.shortest = self.exact = None
        if self.do_resize:
            if isinstance(size, dict) and "shortest_edge" in size and len(size) == 1:
                self.shortest = int(size["shortest_edge"])
            else:
                self.exact = _hw(size, "size", where)
        if self.crop_pct is not None and self.shortest is not None:
            self.size = (self.shortest, self.shortest)
        elif self.crop is not None:
            self.size = self.crop
        elif self.exact is not None:
            self.size = self.exact
        else:
            raise TaskError(
                f"{where}: image preprocessor gives no fixed output size (size={size!r}, no center crop); "
                "load(path, task='raw') and feed pixel_values yourself"
            )
        self.lut = self._table(pre, where)

    @staticmethod
    def _table(pre: dict[str, Any], where: Path) -> np.ndarray:
        """(3, 256) float32: each uint8 value rescaled and normalised exactly as transformers does it."""
        values = np.arange(256, dtype=np.uint8)
        x = np.broadcast_to(values.astype(np.float32), (3, 256))
        if pre.get("do_rescale", True):
            x = (values.astype(np.float64) * float(pre.get("rescale_factor", 1 / 255))).astype(np.float32)
            x = np.broadcast_to(x, (3, 256))
        if pre.get("do_normalize", True):
            mean = np.broadcast_to(np.asarray(pre.get("image_mean", 0.5), dtype=np.float32), (3,))
            std = np.broadcast_to(np.asarray(pre.get("image_std", 0.5), dtype=np.float32), (3,))
            if np.any(std == 0):
                raise TaskError(f"{where}: image preprocessor has a zero image_std")
            x = (x - mean[:, None]) / std[:, None]
        return np.ascontiguousarray(x, dtype=np.float32)

    def pixels(self, image: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3) to the resized, cropped uint8 (size[0], size[1], 3)."""
        h, w = image.shape[:2]
        if self.crop_pct is not None and self.shortest is not None:  # ConvNeXt
            if self.shortest < 384:
                th, tw = _short_long(h, w, int(self.shortest / self.crop_pct))
                image = kernels.resize(image, th, tw, self.resample)
                return _center_crop(image, self.size)
            return kernels.resize(image, self.shortest, self.shortest, self.resample)
        if self.shortest is not None:
            th, tw = _short_long(h, w, self.shortest)
            image = kernels.resize(image, th, tw, self.resample)
        elif self.exact is not None:
            image = kernels.resize(image, *self.exact, self.resample)
        if self.crop is not None:
            image = _center_crop(image, self.crop)
        return image

    def __call__(self, images: Sequence[np.ndarray], dtype: type | np.dtype = np.float32) -> np.ndarray:
        out = np.empty((len(images), 3, *self.size), dtype=np.float32)
        for i, image in enumerate(images):
            kernels.to_chw(self.pixels(image), self.lut, out[i])
        return out if dtype == np.float32 else out.astype(dtype)


def _center_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """transformers' center_crop: the middle (height, width), zero-padded where the image is smaller."""
    h, w = image.shape[:2]
    ch, cw = size
    top, left = (h - ch) // 2, (w - cw) // 2
    if top >= 0 and left >= 0:
        return image[top : top + ch, left : left + cw]
    nh, nw = max(ch, h), max(cw, w)
    padded = np.zeros((nh, nw, image.shape[2]), dtype=image.dtype)
    tp, lp = -(-(nh - h) // 2), -(-(nw - w) // 2)
    padded[tp : tp + h, lp : lp + w] = image
    top, left = top + tp, left + lp
    return padded[max(0, top) : min(nh, top + ch), max(0, left) : min(nw, left + cw)]


def _is_pil(x: object) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "convert")


def _decode(source: object, index: int) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise EdgertError(
            f"image {index}: reading files or encoded bytes needs Pillow (pip install 'edgert[image]'); "
            "or pass uint8 RGB arrays"
        ) from None
    name = f"{source}" if not isinstance(source, bytes) else f"{len(source)} bytes"
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise EdgertError(f"image {index}: {name}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise EdgertError(f"image {index}: {name}: not a readable image ({exc})") from None


def to_rgb(image: object, index: int = 0) -> np.ndarray:
    """One image to uint8 (H, W, 3) RGB; grey is replicated, alpha dropped (as Pillow's convert("RGB") does)."""
    if isinstance(image, (str, os.PathLike, bytes)):
        return _decode(image, index)
    if _is_pil(image):
        return np.asarray(image.convert("RGB"))  # type: ignore[attr-defined]
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image {index}: expected a uint8 array, a path, bytes or a PIL image, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise TypeError(f"image {index}: expected uint8 pixels (0-255), got a {image.dtype} array")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image {index}: expected (H, W), (H, W, 3) or (H, W, 4) pixels, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image {index}: empty image of shape {image.shape}")
    return image[:, :, :3]


def check_images(images: object) -> list:
    """One image or a sequence of them, as a list (arrays of shape (N, H, W, C) are N images)."""
    if isinstance(images, (str, os.PathLike, bytes)) or _is_pil(images):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, Sequence) or isinstance(images, Iterator):
        return list(images)
    raise TypeError(f"expected an image or a list of images, got {type(images).__name__}")


class ImageClassifier(Classifier):
    """``classify(images, top_k=1)`` returns, per image, the top_k (label, score) pairs, best first."""

    tasks = ("image-classification",)

    def __init__(self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None):
        super().__init__(bundle, variant=variant, config=config)
        self.preprocessor = ImagePreprocessor(bundle.pre, bundle.path)
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.input_dtype = numpy_dtype(inp.type)
        want = (3, *self.preprocessor.size)
        declared = list(inp.shape[1:]) if inp.shape else []
        if len(declared) != 3 or any(isinstance(d, int) and d > 0 and d != x for d, x in zip(declared, want)):
            raise BundleError(
                f"{bundle.path}: the model's input {inp.name} is {inp.shape}, but preprocessing makes (N, {want[0]}, "
                f"{want[1]}, {want[2]})"
            )

    @property
    def image_size(self) -> tuple[int, int]:
        return self.preprocessor.size

    def preprocess(self, images: object) -> np.ndarray:
        """The model input for these images: float32 (n, 3, height, width)."""
        items = check_images(images)
        return self.preprocessor([to_rgb(x, i) for i, x in enumerate(items)], self.input_dtype)

    def scores(self, images: object, *, batch_size: int = 8) -> np.ndarray:
        """Probabilities, float32 (n, num_labels)."""
        items = check_images(images)
        out = np.empty((len(items), len(self.labels)), dtype=np.float32)
        batch_size = max(int(batch_size), 1)
        for start in range(0, len(items), batch_size):
            chunk = [to_rgb(x, start + i) for i, x in enumerate(items[start : start + batch_size])]
            (logits,) = self.session.run([self.output], {self.input: self.preprocessor(chunk, self.input_dtype)})
            out[start : start + len(chunk)] = probabilities(logits, self.multi_label)
        return out

    def classify(self, images: object, *, top_k: int = 1, batch_size: int = 8) -> list[list[Prediction]]:
        return top_predictions(self.scores(images, batch_size=batch_size), self.labels, top_k)

    __call__ = classify
