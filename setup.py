"""Builds the Cython kernels in kernels/ into edgert._kernels.<name>.

EDGERT_NO_EXTENSIONS=1 builds a pure-Python package; edgert then runs on its NumPy reference kernels.
When compiling fails (no C compiler, no Python headers), a local install falls back to the pure package and says
so; a release build sets EDGERT_REQUIRE_EXTENSIONS=1 (cibuildwheel does, see pyproject.toml) and fails instead.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ("packing", "pooling", "scores", "image")


class OptionalBuildExt(build_ext):
    """Compile errors fall back to pure Python, unless compiled kernels are required.

    The kernels compile in parallel, one per CPU, unless -j or EDGERT_BUILD_JOBS says otherwise: each is a large
    generated C file, and under emulation (the aarch64 lane) one takes about two minutes.
    """

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            jobs = os.environ.get("EDGERT_BUILD_JOBS", "")
            self.parallel = int(jobs) if jobs.isdigit() and int(jobs) > 0 else True

    def run(self):
        try:
            super().run()
        except Exception as exc:
            self._fallback(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc):
        if os.environ.get("EDGERT_REQUIRE_EXTENSIONS") == "1":
            raise
        sys.stderr.write(
            f"edgert: WARNING: compiling the Cython kernels failed ({type(exc).__name__}: {exc}); installing the "
            "pure-NumPy fallback, which gives the same results more slowly (edgert.KERNELS says 'numpy')\n"
        )


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


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
