"""Unit tests never reach this machine's own sysctls: the CLI gets a namespace in memory."""

from __future__ import annotations

import pytest

from interceptor import cli
from interceptor.backends.fake import FakeBackend
from interceptor.plan import build_plan
from interceptor.sysctl import MemorySysctls
from tests.support.interceptor_cli import V4


@pytest.fixture(autouse=True)
def sysctls(monkeypatch: pytest.MonkeyPatch) -> MemorySysctls:
    """The sysctls every ``cli.main`` call of the test sees (one namespace per test)."""
    fake = MemorySysctls()
    monkeypatch.setattr(cli, "_sysctls", lambda: fake)
    return fake


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    """A fake rules backend for the CLI, planning for a pod with one IPv4 address."""
    fake = FakeBackend("legacy")
    monkeypatch.setattr(cli, "get_backend", lambda name: fake)
    monkeypatch.setattr(cli, "_plan", lambda opts: build_plan(opts, V4))
    return fake
