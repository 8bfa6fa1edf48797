"""Image classification: pixels to the model's input as transformers' (PIL-based) image processors make it, then
probabilities and the top k labels.

Preprocessing follows the bundle's recorded ``preprocessor_config.json``: resize (Pillow's exact algorithm, see
edgert.kernels.resample), center crop, rescale and normalise. Rescale and normalise fold into one 256-entry table per
channel, computed in float32 in transformers' order, so the model sees the same numbers as under transformers.
Images are uint8 arrays (H, W, 3) RGB, (H, W) grey or (H, W, 4) RGBA; with Pillow installed also file paths,
encoded bytes and PIL images.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import kernels
from ..bundle import Bundle, setting
from ..errors import BundleError, EdgertError, InputError, TaskError
from ..kernels import resample as _resample
from ..session import SessionConfig, numpy_dtype
from .base import Task, positive
from .classification import Classifier, Prediction, top_predictions

#: the ImportOptions fields of image preprocessing
IMAGE_OPTIONS = frozenset(
    {"size", "shortest_edge", "crop", "resample", "scale", "mean", "std", "channel_order", "layout"}
)

# Processors whose integer `size` means the shortest edge (transformers' default_to_square=False).
_SHORTEST_EDGE_PROCESSORS = {
    "CLIPImageProcessor",
    "ConvNextImageProcessor",
    "BitImageProcessor",
    "MobileNetV1ImageProcessor",
    "MobileNetV2ImageProcessor",
}


def _side(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 16384


def _hw(value: Any, what: str, where: Path) -> tuple[int, int]:
    if _side(value):
        return value, value
    if isinstance(value, dict) and {"height", "width"} <= set(value) and all(_side(value[k]) for k in value):
        return value["height"], value["width"]
    raise TaskError(
        f"{where}: image preprocessor {what} {value!r} is not supported (need a whole number of pixels, 1 to "
        "16384, or height and width)"
    )


def _per_channel(pre: dict[str, Any], key: str, at: str) -> np.ndarray:
    """A number or a list of 1 or 3 numbers, as 3 float32 values."""
    value = pre.get(key, 0.5)
    if not isinstance(value, list):
        value = [setting(pre, key, float, 0.5, at)]
    else:
        setting(pre, key, list, None, at, items=float)
    if len(value) not in (1, 3) or not all(np.isfinite(value)):
        raise BundleError(f"{at}: {key} must be one finite number or three, got {value!r}")
    return np.broadcast_to(np.asarray(value, dtype=np.float32), (3,))


def _short_long(h: int, w: int, shortest: int) -> tuple[int, int]:
    """transformers' get_resize_output_image_size with default_to_square=False."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = shortest, int(shortest * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


class ImagePreprocessor:
    """The bundle's image preprocessing; ``size`` is the (height, width) every image ends at."""

    def __init__(self, pre: dict[str, Any], where: Path):
        at = f"{where} image preprocessor"
        self.processor = setting(pre, "image_processor_type", str, None, at) or ""
        processor = self.processor.removesuffix("Fast")
        self.resample = setting(pre, "resample", int, _resample.BILINEAR, at, choices=tuple(_resample.NAMES))
        self.do_resize = setting(pre, "do_resize", bool, True, at)
        size = pre.get("size")
        if isinstance(size, dict) and set(size) == {"shortest_edge"} and not _side(size["shortest_edge"]):
            raise TaskError(f"{at}: size.shortest_edge must be a whole number of pixels, got {size!r}")
        if isinstance(size, int):
            size = (
                {"shortest_edge": size} if processor in _SHORTEST_EDGE_PROCESSORS else {"height": size, "width": size}
            )
        convnext = processor == "ConvNextImageProcessor"
        self.crop_pct = setting(pre, "crop_pct", float, None, at, minimum=0.01) if convnext else None
        if self.crop_pct is not None and self.crop_pct > 1:
            raise BundleError(f"{at}: crop_pct must be between 0.01 and 1, got {self.crop_pct!r}")
        self.do_center_crop = setting(pre, "do_center_crop", bool, False, at) and self.crop_pct is None
        self.crop = _hw(pre["crop_size"], "crop_size", where) if self.do_center_crop and "crop_size" in pre else None
        if self.do_center_crop and self.crop is None:
            raise TaskError(f"{where}: image preprocessor asks for a center crop but gives no crop_size")
        self.shortest = self.exact = None
        if self.do_resize:
            if isinstance(size, dict) and "shortest_edge" in size and len(size) == 1:
                self.shortest = size["shortest_edge"]
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
        # bundles imported from other frameworks: Caffe and OpenCV models take BGR, TensorFlow ones NHWC
        self.bgr = setting(pre, "channel_order", str, "RGB", at, choices=("RGB", "BGR")) == "BGR"
        self.layout = setting(pre, "layout", str, "NCHW", at, choices=("NCHW", "NHWC"))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One image's model input: (3, height, width) for NCHW, (height, width, 3) for NHWC."""
        return (3, *self.size) if self.layout == "NCHW" else (*self.size, 3)

    @staticmethod
    def _table(pre: dict[str, Any], where: Path) -> np.ndarray:
        """(3, 256) float32: each uint8 value rescaled and normalised exactly as transformers does it."""
        at = f"{where} image preprocessor"
        values = np.arange(256, dtype=np.uint8)
        x = np.broadcast_to(values.astype(np.float32), (3, 256))
        if setting(pre, "do_rescale", bool, True, at):
            factor = setting(pre, "rescale_factor", float, 1 / 255, at)
            if factor <= 0:
                raise BundleError(f"{at}: rescale_factor must be a number > 0, got {factor!r}")
            x = (values.astype(np.float64) * factor).astype(np.float32)
            x = np.broadcast_to(x, (3, 256))
        if setting(pre, "do_normalize", bool, True, at):
            mean = _per_channel(pre, "image_mean", at)
            std = _per_channel(pre, "image_std", at)
            if np.any(std == 0):
                raise BundleError(f"{at}: image_std has a zero")
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
        """uint8 RGB images to the model's input: channels in the model's order (mean and std are given in it)."""
        out = np.empty((len(images), 3, *self.size), dtype=np.float32)
        for i, image in enumerate(images):
            pixels = self.pixels(image)
            kernels.to_chw(pixels[:, :, ::-1] if self.bgr else pixels, self.lut, out[i])
        if self.layout == "NHWC":
            out = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # edgert's own limit applies below
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:  # type: ignore[arg-type]
                return _pil_rgb(im, index, name)
    except FileNotFoundError:
        raise EdgertError(f"image {index}: {name}: no such file") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"image {index}: {name}: too large to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise EdgertError(f"image {index}: {name}: not a readable image ({exc})") from None


#: Decoding a large image needs width x height x 3 bytes at least, and a small compressed file can declare a huge
#: one (a 140 KB PNG can decode to 1.6 GB). 50 megapixels (150 MB of RGB) admits a 48 MP phone photo and keeps a
#: 1 GB board alive. EDGERT_MAX_IMAGE_PIXELS sets another limit; 0 leaves only Pillow's own (about 179 MP).
DEFAULT_MAX_PIXELS = 50_000_000


def max_pixels() -> int:
    env = os.environ.get("EDGERT_MAX_IMAGE_PIXELS")
    if env is None or env.strip() == "":
        return DEFAULT_MAX_PIXELS
    try:
        value = int(env)
    except ValueError:
        raise InputError(f"EDGERT_MAX_IMAGE_PIXELS must be a whole number (0: no limit), got {env!r}") from None
    if value < 0:
        raise InputError(f"EDGERT_MAX_IMAGE_PIXELS must be >= 0, got {value}")
    return value


_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}


def _pil_rgb(im: Any, index: int, name: str) -> np.ndarray:
    """A PIL image to uint8 RGB, checked against the pixel limit before its pixels are decoded.

    16-bit grey (PNG's 16-bit depth) is scaled to 8 bits (v * 255 / 65535, rounded), where Pillow's convert
    would clip it to white. Float and 32-bit integer pixels have no fixed range and are refused.
    """
    width, height = im.size
    limit = max_pixels()
    if limit and width * height > limit:
        raise InputError(
            f"image {index}: {name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{limit / 1e6:g} (set EDGERT_MAX_IMAGE_PIXELS to change it)"
        )
    mode = im.mode
    if mode in _SIXTEEN_BIT or (mode == "I" and getattr(im, "format", None) == "PNG"):
        wide = np.asarray(im).astype(np.uint32)
        grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("F", "I") or mode.startswith("I;"):
        raise InputError(
            f"image {index}: {name}: {mode} pixels ({'32-bit float' if mode == 'F' else 'wide integers'}) have no "
            "fixed range; convert the image to 8 bits per channel first"
        )
    return np.asarray(im.convert("RGB"))


def to_rgb(image: object, index: int = 0) -> np.ndarray:
    """One image to uint8 (H, W, 3) RGB; grey is replicated, alpha dropped (as Pillow's convert("RGB") does)."""
    if isinstance(image, (str, os.PathLike, bytes)):
        return _decode(image, index)
    if _is_pil(image):
        return _pil_rgb(image, index, type(image).__name__)
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


def check_images(images: object) -> list[Any]:
    """One image or a sequence of them, as a list (arrays of shape (N, H, W, C) are N images)."""
    if isinstance(images, (str, os.PathLike, bytes)) or _is_pil(images):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, Sequence) or isinstance(images, Iterator):
        return list(images)
    raise TypeError(f"expected an image or a list of images, got {type(images).__name__}")


def image_input(task: Task) -> tuple[ImagePreprocessor, str, np.dtype]:
    """The bundle's image preprocessing, the model input it feeds and that input's dtype; the input's declared
    shape must be what the preprocessing makes."""
    bundle = task.bundle
    preprocessor = ImagePreprocessor(bundle.pre, bundle.path)
    inp = task.session.get_inputs()[0]
    want = preprocessor.input_shape
    declared = list(inp.shape[1:]) if inp.shape else []
    if len(declared) != 3 or any(isinstance(d, int) and d > 0 and d != x for d, x in zip(declared, want)):
        raise BundleError(
            f"{bundle.path}: the model's input {inp.name} is {inp.shape}, but preprocessing makes (N, "
            f"{', '.join(map(str, want))}) ({preprocessor.layout})"
        )
    return preprocessor, inp.name, numpy_dtype(inp.type)


class ImageInput:
    """What every image pipeline shares once ``image_input`` has set its preprocessor, input name and dtype."""

    preprocessor: ImagePreprocessor
    input: str
    input_dtype: np.dtype

    @property
    def image_size(self) -> tuple[int, int]:
        return self.preprocessor.size

    def preprocess(self, images: object) -> np.ndarray:
        """The model input for these images: (n, 3, height, width), or (n, height, width, 3) for NHWC."""
        items = check_images(images)
        return self.preprocessor([to_rgb(x, i) for i, x in enumerate(items)], self.input_dtype)


class ImageClassifier(ImageInput, Classifier):
    """``classify(images, top_k=1)`` returns, per image, the top_k (label, score) pairs, best first."""

    tasks = ("image-classification",)
    input_kind = "image"
    import_task = "image-classification"
    import_options = frozenset({"labels", "output", "output_kind", *IMAGE_OPTIONS})
    labelled = True
    bench_call = "scores"
    eval_kinds = ("classification",)

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        super().__init__(bundle, variant=variant, config=config, verify=verify)
        self.preprocessor, self.input, self.input_dtype = image_input(self)

    def scores(self, images: object, *, batch_size: int = 8) -> np.ndarray:
        """Probabilities, float32 (n, num_labels)."""
        items = check_images(images)
        out = np.empty((len(items), len(self.labels)), dtype=np.float32)
        batch_size = positive(batch_size)
        for start in range(0, len(items), batch_size):
            chunk = [to_rgb(x, start + i) for i, x in enumerate(items[start : start + batch_size])]
            (logits,) = self.run_session([self.output], {self.input: self.preprocessor(chunk, self.input_dtype)})
            out[start : start + len(chunk)] = self.probabilities(logits)
        return out

    def classify(self, images: object, *, top_k: int = 1, batch_size: int = 8) -> list[list[Prediction]]:
        return top_predictions(self.scores(images, batch_size=batch_size), self.labels, top_k)

    __call__ = classify
