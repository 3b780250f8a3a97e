"""Build of the one compiled module, ``model._auction`` (the auction kernels: discrete and schedule auctions,
a week of ore trade); everything else is in pyproject.toml. The extension is optional: without a C compiler
the install still succeeds and the model clears with the kernels' numpy and Python references (same results,
about twice as slow a run).
"""

import os

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # the build requirements include Cython; this is only for odd environments
    cythonize = None

# No fused multiply-add: the kernel must round exactly as numpy does (see model/_auction.pyx).
flags = [] if os.name == "nt" else ["-O2", "-ffp-contract=off"]
ext = Extension("model._auction", ["model/_auction.pyx"], extra_compile_args=flags, optional=True)
setup(ext_modules=cythonize([ext], language_level=3, quiet=True) if cythonize else [])
