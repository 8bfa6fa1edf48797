"""Dense image outputs: a model whose output is a map over the image (segmentation masks, text-detection
probability maps, depth) gets the same image preprocessing as a classifier and returns its output as it is,
one map per image, instead of being forced into labels."""

from __future__ import annotations

import numpy as np

from ..bundle import MANIFEST, Bundle, setting
from ..errors import BundleError
from ..session import SessionConfig
from .base import Task, positive
from .image import IMAGE_OPTIONS, ImageInput, check_images, image_input, to_rgb


class ImageMap(ImageInput, Task):
    """``maps(images)`` returns the model's output for each image: float32 (n, ...) as the model shapes it (for
    example (n, classes, H, W) logits of a segmenter). ``image_size`` is the (height, width) the model sees."""

    tasks = ("image-map",)
    input_kind = "image"
    import_task = "image-map"
    import_options = frozenset({"output", *IMAGE_OPTIONS})
    bench_call = "maps"

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        super().__init__(bundle, variant=variant, config=config, verify=verify)
        self.preprocessor, self.input, self.input_dtype = image_input(self)
        self.output = setting(bundle.post, "output", str, self.output_names[0], f"{bundle.path / MANIFEST} post")
        if self.output not in self.output_names:
            raise BundleError(f"{bundle.path}: model has no output {self.output!r} (has {self.output_names})")

    def maps(self, images: object, *, batch_size: int = 8) -> np.ndarray:
        items = check_images(images)
        batch_size = positive(batch_size)
        parts = []
        for start in range(0, len(items), batch_size):
            chunk = [to_rgb(x, start + i) for i, x in enumerate(items[start : start + batch_size])]
            (out,) = self.run_session([self.output], {self.input: self.preprocessor(chunk, self.input_dtype)})
            parts.append(np.asarray(out))
        return np.concatenate(parts) if parts else np.empty((0,), np.float32)

    __call__ = maps
