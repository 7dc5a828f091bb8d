"""Run one test on the Python source build even when the compiled one is in force.

A few tests watch *how* the code works: they patch a method to prove a fast path never
calls it. Compiled classes cannot be patched (``proxy.compiled``), so under the compiled
build such a test runs itself once more in a child pytest with ``MESH_PURE=1``, where
the same source runs as Python, and passes only if that run passes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import proxy

_ROOT = Path(proxy.__file__).resolve().parent.parent


def runs_here(request: pytest.FixtureRequest) -> bool:
    """True: the source build runs in this process, go on. False: the test already ran
    on the source build in a child process, and passed (else this fails)."""
    if not proxy.COMPILED:
        return True
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
        cwd=_ROOT,
        env={**os.environ, "MESH_PURE": "1", "MESH_EXPECT_BUILD": "source"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-2000:]
    assert re.search(r"^1 passed in ", child.stdout, re.MULTILINE), child.stdout[-3000:]
    return False
