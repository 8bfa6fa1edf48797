"""Builds the Cython kernels in kernels/<name>.pyx into edgert.kernels._<name>.

EDGERT_EXTENSIONS is a three-state switch, as in PyYAML: unset compiles and, where compiling fails (no C compiler,
no Python headers), installs without that module and says so, and edgert runs that kernel on its NumPy reference;
1 requires every module (a release build sets it: cibuildwheel does, see pyproject.toml); 0 builds a pure-Python
package. edgert reads the same switch at run time (edgert.kernels).
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
        if os.environ.get("EDGERT_EXTENSIONS") == "1":
            raise
        sys.stderr.write(
            f"edgert: WARNING: compiling the Cython kernels failed ({type(exc).__name__}: {exc}); installing the "
            "NumPy fallback, which gives the same results more slowly (edgert.kernels.IMPLEMENTATIONS says which)\n"
        )


def _extensions() -> list[Extension]:
    if os.environ.get("EDGERT_EXTENSIONS") == "0":
        return []
    from Cython.Build import cythonize

    # -g0 and -s: no debug info, which is most of each module's size; a wheel for devices should be small.
    # -fno-trapping-math: nothing here traps on FP exceptions, and it lets gcc vectorise branchy float loops
    # (softmax's exp); NaN and inf results are unchanged.
    args = [] if sys.platform == "win32" else ["-O3", "-g0", "-fno-trapping-math"]
    link = [] if sys.platform in ("win32", "darwin") else ["-s"]
    exts = [
        Extension(f"edgert.kernels._{name}", [f"kernels/{name}.pyx"], extra_compile_args=args, extra_link_args=link)
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
