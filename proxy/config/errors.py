"""Collecting configuration errors, each one naming its field path.

Parsing never stops at the first problem: every reader reports into one ``Issues``
list and returns ``None`` for a value it rejected, so a user fixing a file sees every
mistake in one run. Paths read like the document: ``services[1].routes[0].weight``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from proxy.core.errors import ProxyError

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(ProxyError):
    """The document was rejected; ``errors`` holds one ``path: reason`` line per problem."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class Issues:
    """Accumulates ``path: reason`` lines while a document is read."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, path: str, reason: str) -> None:
        self.errors.append(f"{path or '(document)'}: {reason}")

    def __len__(self) -> int:
        return len(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigError(self.errors)


def key_path(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` when the key would not read as one word."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{path}["{quoted}"]'


def index_path(path: str, index: int) -> str:
    return f"{path}[{index}]"


def describe(value: object) -> str:
    """How a rejected value is named in a message: its YAML type and its text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
