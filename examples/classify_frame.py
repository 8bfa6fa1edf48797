"""Classify a camera frame held as a NumPy array, as picamera2 or OpenCV give it, with edgert's Python API.

    python examples/classify_frame.py IMAGE_BUNDLE [frame.npy] [--bgr] [--top 3]

A frame is uint8 (height, width, 3). picamera2's "RGB888" arrays and OpenCV's are BGR: pass --bgr, and the channels
are reversed before classifying. Without a .npy file, a synthetic 640x480 frame stands in for the camera. Arrays need
only NumPy: no Pillow, no file on disk.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import edgert


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", help="an image-classification bundle")
    ap.add_argument("frame", nargs="?", help="a .npy file holding one uint8 (H, W, 3) frame")
    ap.add_argument("--bgr", action="store_true", help="the frame is BGR (OpenCV, picamera2 RGB888)")
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args(argv)
    if args.frame:
        frame = np.load(args.frame)
    else:
        y, x = np.mgrid[0:480, 0:640]
        frame = np.stack([x * 255 // 639, y * 255 // 479, np.full_like(x, 128)], axis=2).astype(np.uint8)
    if args.bgr:
        frame = np.ascontiguousarray(frame[:, :, ::-1])
    model = edgert.load(args.bundle)
    for label, score in model.classify(frame, top_k=args.top)[0]:
        print(f"{score:.3f}  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
