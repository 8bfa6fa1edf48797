"""Builds the Cython kernels in kernels/ into edgert._kernels.<name>.

EDGERT_NO_EXTENSIONS=1 builds a pure-Python package; edgert then runs on its NumPy reference kernels.
"""

import os
import sys

from setuptools import Extension, setup

KERNELS = ("packing", "pooling", "scores", "image")


def _extensions() -> list[Extension]:
    if os.environ.get("EDGERT_NO_EXTENSIONS") == "1":
        return []
    from Cython.Build import cythonize

    # -g0 and -s: no debug info, which is most of each module's size; a wheel for devices should be small.
    # -fno-trapping-math: nothing here traps on FP exceptions, and it lets gcc vectorise branchy float loops
    # (softmax's exp); NaN and inf results are unchanged.
    args = [] if sys.platform == "win32" else ["-O3", "-g0", "-fno-trapping-math"]
    link = [] if sys.platform in ("win32", "darwin") else ["-s"]
    exts = [
        Extension(f"edgert._kernels.{name}", [f"kernels/{name}.pyx"], extra_compile_args=args, extra_link_args=link)
        for name in KERNELS
    ]

    return cythonize(
        exts,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    )


setup(ext_modules=_extensions())
