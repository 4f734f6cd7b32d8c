"""Build the optional compiled core; the package falls back to pure Python without it."""

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

FLAGS = {
    "msvc": ["/O2", "/std:c11", "/W3"],
    "unix": ["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
}


class BuildExt(build_ext):
    """Compiler flags chosen for the compiler in use (MSVC rejects GCC's and the reverse)."""

    def build_extensions(self) -> None:
        flags = FLAGS.get(self.compiler.compiler_type, FLAGS["unix"])
        for ext in self.extensions:
            ext.extra_compile_args = flags
        super().build_extensions()


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "jupyter_memsnap.capture._walker",
            ["jupyter_memsnap/capture/_walker.c"],
            depends=[
                "jupyter_memsnap/capture/_cpython.h",
                "jupyter_memsnap/capture/_interpreter.h",
            ],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            optional=True,
        ),
        Extension(
            "jupyter_memsnap.capture._interpreter",
            ["jupyter_memsnap/capture/_interpreter.c"],
            depends=["jupyter_memsnap/capture/_interpreter.h"],
            optional=True,
        ),
        Extension(
            "jupyter_memsnap.model._merges", ["jupyter_memsnap/model/_merges.c"], optional=True
        ),
        Extension(
            "jupyter_memsnap.model._graph", ["jupyter_memsnap/model/_graph.c"], optional=True
        ),
    ],
)
