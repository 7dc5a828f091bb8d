"""Where a test lives says what it needs: tests/netns/ is marked ``netns`` here (root,
real namespaces; skipped without root), tests/unit/ may not create a namespace or carry
that mark. So ``-m "not netns"`` is the fast pure set, and a test cannot sit in the
wrong folder unnoticed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.http.codec import CODECS
from tests.support import netns as _netns

NETNS_DIR = Path(__file__).resolve().parent / "netns"


def _in_netns_dir(item: pytest.Item) -> bool:
    return NETNS_DIR in item.path.parents


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marker added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        if _in_netns_dir(item):
            item.add_marker(pytest.mark.netns)
        elif item.get_closest_marker("netns") is not None:
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError(
            "tests marked netns outside tests/netns/ (move them there): " + ", ".join(misplaced)
        )
    if _netns.is_root():
        return
    skip = pytest.mark.skip(reason="network-namespace tests need root")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _namespaces_only_under_tests_netns(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test outside tests/netns/ that creates a namespace fails, naming where it belongs."""
    allowed = _in_netns_dir(request.node)
    with _netns.namespaces_allowed(allowed, request.node.nodeid):
        yield


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_namespaces() -> Iterator[None]:
    """Whatever a test leaked is removed at the end of the session, and reported."""
    yield
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    marker = f"{os.getpid()}x"
    for line in out.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if marker in name:
            _netns.Netns(name).destroy()


@pytest.fixture(scope="module", params=sorted(CODECS))
def codec(request: pytest.FixtureRequest) -> str:
    """An HTTP/1 codec's name: a test that takes it (or a fixture of it) runs once per
    codec in the registry, ``[h11]``, ``[llhttp]``. Module scope, so that a topology a
    module builds once (a running sidecar) is built once per codec, not per test."""
    name: str = request.param
    return name
