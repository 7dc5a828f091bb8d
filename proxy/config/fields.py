"""Readers for the scalar and container shapes a configuration is made of.

A reader is a function ``(value, path, issues) -> T | None``: it returns the value
converted to its model type, or reports why not and returns ``None``. Readers are
built by small factories (``integer(min=1)``, ``choice(names)``) so a field's rules
are stated once, where the field is read.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TypeVar

from proxy.config.errors import Issues, describe, index_path, key_path

T = TypeVar("T")
Reader = Callable[[object, str, Issues], T | None]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0}
_HOSTNAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


def _expected(what: str, value: object) -> str:
    hint = " (quote it in YAML)" if what == "a string" and value is not None else ""
    return f"expected {what}, got {describe(value)}{hint}"


def string(value: object, path: str, issues: Issues) -> str | None:
    if not isinstance(value, str):
        issues.add(path, _expected("a string", value))
        return None
    if not value:
        issues.add(path, "must not be empty")
        return None
    return value


# Counts, weights and limits are uint32 in Envoy's API too; an unbounded integer would
# pass validation and then overflow where the core turns it into a float (a weight).
UINT32_MAX = 2**32 - 1


def integer(*, min: int | None = None, max: int | None = UINT32_MAX) -> Reader[int]:
    def read(value: object, path: str, issues: Issues) -> int | None:
        # YAML booleans are ints in Python; ``port: yes`` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            issues.add(path, _expected("an integer", value))
            return None
        return _in_range(value, path, issues, min, max)

    return read


def number(*, min: float | None = None, max: float | None = None) -> Reader[float]:
    def read(value: object, path: str, issues: Issues) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            issues.add(path, _expected("a number", value))
            return None
        # NaN passes every range check (all comparisons are false), and .inf is no rate
        # or percentage either; a 400-digit integer overflows the conversion.
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            issues.add(path, f"must be a finite number, got {describe(value)}")
            return None
        return _in_range(number, path, issues, min, max)

    return read


def _in_range(value: T, path: str, issues: Issues, lo: object, hi: object) -> T | None:
    if lo is not None and value < lo:  # type: ignore[operator]
        issues.add(path, f"must be >= {lo}, got {value}")
        return None
    if hi is not None and value > hi:  # type: ignore[operator]
        issues.add(path, f"must be <= {hi}, got {value}")
        return None
    return value


def duration(*, positive: bool = False) -> Reader[float]:
    """A duration in seconds, written with a unit: ``250ms``, ``1.5s``, ``2m``."""

    def read(value: object, path: str, issues: Issues) -> float | None:
        text = value.strip() if isinstance(value, str) else None
        found = _DURATION.fullmatch(text) if text is not None else None
        if found is None:
            issues.add(
                path, f"bad duration {describe(value)}: use a number and ms, s or m (e.g. 15s)"
            )
            return None
        seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
        if positive and seconds <= 0:
            issues.add(path, f"must be > 0, got {value}")
            return None
        return seconds

    return read


def boolean(value: object, path: str, issues: Issues) -> bool | None:
    # YAML 1.1 already reads on/off/yes/no as booleans; JSON users write the strings.
    if isinstance(value, str) and value.lower() in ("on", "off"):
        return value.lower() == "on"
    if not isinstance(value, bool):
        issues.add(path, _expected("a boolean (true/false, on/off)", value))
        return None
    return value


def choice(names: Collection[str]) -> Reader[str]:
    def read(value: object, path: str, issues: Issues) -> str | None:
        if not isinstance(value, str) or value not in names:
            issues.add(path, f"unknown value {describe(value)} (valid: {', '.join(names)})")
            return None
        return value

    return read


def ip_address(value: object, path: str, issues: Issues) -> str | None:
    """An IPv4 or IPv6 address in its canonical text (IPv4-mapped IPv6 → IPv4)."""
    try:
        addr = ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        issues.add(path, f"not an IP address: {describe(value)}")
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def hostname(value: object, path: str, issues: Issues) -> str | None:
    """A DNS name, lower-cased (names compare case-insensitively)."""
    text = string(value, path, issues)
    if text is None:
        return None
    if len(text) > 253 or not _HOSTNAME.fullmatch(text.lower()):
        issues.add(path, f"not a valid host name: {text!r}")
        return None
    return text.lower().rstrip(".")


def regex(value: object, path: str, issues: Issues) -> re.Pattern[str] | None:
    text = value if isinstance(value, str) else None
    if text is None:
        issues.add(path, _expected("a string", value))
        return None
    try:
        # A "[[" or "--" in a set compiles with today's meaning; sre only warns that
        # it may change, which must not stop a load (or fail tests run with -W error).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(text)
    except re.error as exc:
        issues.add(path, f"bad regex {text!r}: {exc}")
        return None
    except RecursionError:  # sre's parser recurses once per nested group
        issues.add(path, f"bad regex {text[:80]!r}...: nested too deeply")
        return None


def list_of(item: Reader[T]) -> Reader[tuple[T, ...]]:
    """A list whose valid items are kept; a bad item is reported by its index."""

    def read(value: object, path: str, issues: Issues) -> tuple[T, ...] | None:
        if not isinstance(value, list):
            issues.add(path, _expected("a list", value))
            return None
        out = (item(v, index_path(path, i), issues) for i, v in enumerate(value))
        return tuple(v for v in out if v is not None)

    return read


def string_map(value: object, path: str, issues: Issues) -> dict[str, str] | None:
    """A mapping of strings to strings (labels, selectors)."""
    if not isinstance(value, dict):
        issues.add(path, _expected("a mapping", value))
        return None
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            issues.add(path, f"keys must be strings, got {describe(k)}")
            continue
        text = string(v, key_path(path, k), issues)
        if text is not None:
            out[k] = text
    return out


class Section:
    """One mapping of the document, its keys checked against the ones allowed.

    An unknown key is an error (a typo must not be silently ignored), with the
    closest allowed key suggested. ``ok`` is False when the value was not a mapping.
    """

    def __init__(self, value: object, path: str, issues: Issues, allowed: Iterable[str]) -> None:
        self.path = path
        self.issues = issues
        self.data: Mapping[str, object] = {}
        self.ok = isinstance(value, dict)
        self.unknown: list[str] = []
        if not isinstance(value, dict):
            issues.add(path, _expected("a mapping", value))
            return
        known = list(allowed)
        self.data = value
        for key in value:
            if not isinstance(key, str):
                issues.add(path, f"keys must be strings, got {describe(key)}")
            elif key not in known:
                self.unknown.append(key)
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(known)}"
                issues.add(key_path(path, key), f"unknown key ({hint})")

    def at(self, key: str) -> str:
        return key_path(self.path, key)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, read: Reader[T], default: T) -> T:
        if key not in self.data:
            return default
        value = read(self.data[key], self.at(key), self.issues)
        return default if value is None else value

    def need(self, key: str, read: Reader[T]) -> T | None:
        if key not in self.data:
            if self.ok:
                self.issues.add(self.at(key), "required")
            return None
        return read(self.data[key], self.at(key), self.issues)

    def optional(self, key: str, read: Reader[T]) -> T | None:
        if key not in self.data:
            return None
        return read(self.data[key], self.at(key), self.issues)
