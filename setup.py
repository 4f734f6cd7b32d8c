"""Build the optional compiled core; the package falls back to pure Python without it."""

import numpy
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "jupyter_memsnap.capture._walker",
            ["jupyter_memsnap/capture/_walker.c"],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=COMPILE_ARGS,
            optional=True,
        ),
        Extension(
            "jupyter_memsnap.model._merges",
            ["jupyter_memsnap/model/_merges.c"],
            extra_compile_args=COMPILE_ARGS,
            optional=True,
        ),
        Extension(
            "jupyter_memsnap.model._graph",
            ["jupyter_memsnap/model/_graph.c"],
            extra_compile_args=COMPILE_ARGS,
            optional=True,
        ),
    ]
)
