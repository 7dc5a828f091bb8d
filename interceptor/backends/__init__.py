"""Backends by name, and ``auto``: the one already holding rules here, else nft, else legacy.

``auto`` follows Istio: if ``iptables-legacy-save`` shows any rule in this network
namespace the legacy tables are in use and mixing in nft would split the rules in
two; otherwise nft when ``iptables-nft-save`` works; otherwise legacy.
"""

from __future__ import annotations

import re

from interceptor.backends.base import Backend, Change, LiveRule, LiveTable
from interceptor.backends.restore import RestoreBackend, run_tool
from interceptor.errors import BackendError, BackendUnavailable

NAMES = ("auto", "iptc", "legacy", "nft")
_RULE_LINE = re.compile(r"^(\[\d+:\d+\] )?-A ", re.MULTILINE)

__all__ = ["NAMES", "Backend", "Change", "LiveRule", "LiveTable", "detect", "get_backend"]


def _shows_rules(argv: list[str]) -> bool:
    try:
        return bool(_RULE_LINE.search(run_tool(argv)))
    except (BackendError, BackendUnavailable):
        return False


def _works(argv: list[str]) -> bool:
    try:
        run_tool(argv)
    except (BackendError, BackendUnavailable):
        return False
    return True


def detect() -> str:
    """The backend ``auto`` stands for in this network namespace."""
    if _shows_rules(["iptables-legacy-save"]) or _shows_rules(["ip6tables-legacy-save"]):
        return "legacy"
    if _works(["iptables-nft-save", "-t", "nat"]):
        return "nft"
    return "legacy"


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (one of ``NAMES``); ``auto`` is resolved here."""
    if name == "auto":
        name = detect()
    if name == "iptc":
        from interceptor.backends.iptc_backend import IptcBackend

        return IptcBackend()
    if name in ("legacy", "nft"):
        return RestoreBackend(name)
    raise BackendUnavailable(f"unknown backend {name!r} (choose from {', '.join(NAMES)})")
