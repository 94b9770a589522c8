"""The compiled canonicaliser (C, built at install; optional: without a compiler the
package installs and uses the pure-Python path). Everything else is in pyproject.toml."""

from setuptools import Extension, setup

HEADERS = [
    "src/inspectorate/trace/_cfloat.h",
    "src/inspectorate/trace/_csha.h",
    "src/inspectorate/trace/_cguard.h",
    "src/inspectorate/trace/_cdict.h",
]  # shared; in the sdist (MANIFEST.in)

setup(
    ext_modules=[
        Extension(
            "inspectorate.trace._ccanon",
            ["src/inspectorate/trace/_ccanon.c"],
            depends=HEADERS,
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "inspectorate.trace._cjsonl",
            ["src/inspectorate/trace/_cjsonl.c"],
            depends=HEADERS,
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(  # per-chip passes for the rules (trace/_kernels.py)
            "inspectorate.trace._ckernels",
            ["src/inspectorate/trace/_ckernels.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
    ]
)
