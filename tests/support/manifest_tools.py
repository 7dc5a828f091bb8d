"""The command-line tools that check what users deploy (kubernetes-validate, hadolint).

They are installed into the venv by scripts/test, so they are looked up next to this
interpreter first, then on PATH; a missing tool fails the test (a skip would let an
unchecked manifest pass). ``K8S_VERSION`` is the Kubernetes schema manifests must meet.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
K8S_VERSION = "1.30.0"


def tool(name: str) -> str:
    """The path of the installed tool ``name``."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (scripts/test installs it)")
    return found
