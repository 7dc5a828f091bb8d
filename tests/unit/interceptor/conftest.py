"""Unit tests never reach this machine's own sysctls: the CLI gets a namespace in memory."""

from __future__ import annotations

import pytest

from interceptor import cli
from interceptor.sysctl import MemorySysctls


@pytest.fixture(autouse=True)
def sysctls(monkeypatch: pytest.MonkeyPatch) -> MemorySysctls:
    """The sysctls every ``cli.main`` call of the test sees (one namespace per test)."""
    fake = MemorySysctls()
    monkeypatch.setattr(cli, "_sysctls", lambda: fake)
    return fake
