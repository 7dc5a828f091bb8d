"""Builds meshproxy, compiling the per-request path with mypyc where it can.

The metadata is in setup.cfg; this file only adds the extension modules. The list
of modules to compile lives in ``proxy/compiled.py`` (run here on its own, without
importing the package). Without mypyc, or with ``MESH_PURE=1``, the build is plain
Python and the proxy runs its source: slower, the same behaviour.
"""

import os
import runpy
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
compiled = runpy.run_path(os.path.join(ROOT, "proxy", "compiled.py"))


class BuildExt(build_ext):
    """Writes the manifest once every module compiled: a failed build leaves none,
    so the proxy never trusts a half-built tree (``proxy.compiled.choose``)."""

    def run(self) -> None:
        sources = compiled["digest"](ROOT)  # what is compiled now
        if not self.inplace:
            # build/lib keeps what earlier builds left there, and a wheel takes it all: an
            # extension module of a longer list would shadow its source once installed.
            for directory, _, files in os.walk(self.build_lib):
                for name in files:
                    if name.endswith(".so"):
                        os.remove(os.path.join(directory, name))
        super().run()
        if self.extensions:
            target = ROOT if self.inplace else self.build_lib
            compiled["write_manifest"](os.path.join(target, "proxy"), sources)


def extensions() -> list:
    if os.environ.get(compiled["PURE_ENV"]):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("setup.py: mypyc is not installed: building pure Python", file=sys.stderr)
        return []
    os.chdir(ROOT)  # mypyc takes the module paths relative to the checkout
    return mypycify(list(compiled["MODULES"]), group_name="meshproxy", opt_level="3")


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
