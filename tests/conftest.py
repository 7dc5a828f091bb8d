from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support import netns as _netns


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _netns.is_root():
        return
    skip = pytest.mark.skip(reason="network-namespace tests need root")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_namespaces() -> Iterator[None]:
    """Whatever a test leaked is removed at the end of the session, and reported."""
    yield
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    import os

    marker = f"{os.getpid()}x"
    for line in out.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if marker in name:
            _netns.Netns(name).destroy()
