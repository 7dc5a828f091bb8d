"""Reading a ``policy`` mapping (``defaults``, a service's, a route's) into an override.

The accepted shape is one table, ``_SPEC``: nested dicts are sub-mappings, leaves are
readers. Only the keys present in the document end up in the override, which is what
makes merging field by field possible.
"""

from __future__ import annotations

from typing import Any

from proxy.config.errors import Issues, describe, index_path
from proxy.config.fields import Reader, Section, choice, duration, integer, number
from proxy.config.policy import (
    LOAD_BALANCERS,
    ORDERED_FIELDS,
    RETRY_CONDITIONS,
    Policy,
    PolicyOverride,
    field_value,
)


def _retry_on(value: object, path: str, issues: Issues) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        issues.add(path, f"expected a list, got {describe(value)}")
        return None
    found: list[str] = []
    for i, item in enumerate(value):
        # Status codes may be written 503 or "503"; both mean the same condition.
        text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
        if isinstance(text, str) and text.isdigit() and len(text) == 3 and 100 <= int(text) <= 599:
            pass
        elif not isinstance(text, str) or text not in RETRY_CONDITIONS:
            issues.add(
                index_path(path, i),
                f"unknown retry condition {describe(item)} "
                f'(valid: {", ".join(RETRY_CONDITIONS)}, or a status code like "503")',
            )
            continue
        if text not in found:
            found.append(text)
    return tuple(found)


_Spec = dict[str, "Reader[Any] | _Spec"]

_SPEC: _Spec = {
    "timeout": duration(),
    "retries": {
        "attempts": integer(min=0),
        "per_try_timeout": duration(),
        "retry_on": _retry_on,
        "budget": {
            "ratio": number(min=0, max=1),
            "min_per_second": integer(min=0),
            "window": duration(positive=True),
        },
        "backoff": {"base": duration(positive=True), "max": duration(positive=True)},
    },
    "load_balancer": choice(LOAD_BALANCERS),
    "outlier_detection": {
        "consecutive_errors": integer(min=0),
        "interval": duration(positive=True),
        "base_ejection_time": duration(positive=True),
        "max_ejection_time": duration(positive=True),
        "max_ejection_percent": integer(min=0, max=100),
    },
    "circuit_breaker": {
        "max_connections": integer(min=1),
        "max_pending_requests": integer(min=1),
        "max_requests": integer(min=1),
        "max_retries": integer(min=0),
    },
}


def read_policy(value: object, path: str, issues: Issues) -> PolicyOverride | None:
    """A reader for a policy mapping; fields it rejected are left out of the override."""
    values: dict[str, Any] = {}
    _read(_SPEC, value, path, issues, "", values)
    return PolicyOverride(values)


def _read(
    spec: _Spec, value: object, path: str, issues: Issues, prefix: str, out: dict[str, Any]
) -> None:
    section = Section(value, path, issues, spec)
    for key, sub in spec.items():
        if not section.has(key):
            continue
        if isinstance(sub, dict):
            _read(sub, section.data[key], section.at(key), issues, f"{prefix}{key}.", out)
            continue
        result = section.optional(key, sub)
        if result is not None:
            out[prefix + key] = result


def check_ordered(merged: Policy, override: PolicyOverride, path: str, issues: Issues) -> None:
    """Report pairs like base/max ejection time that ``override`` left out of order."""
    for low, high in ORDERED_FIELDS:
        if low not in override.values and high not in override.values:
            continue  # an earlier level already introduced (and reported) the problem
        lo, hi = field_value(merged, low), field_value(merged, high)
        if lo > hi:
            at = low if low in override.values else high
            issues.add(
                f"{path}.{at}" if path else at,
                f"{low.rsplit('.', 1)[-1]} ({lo:g}s) must not exceed "
                f"{high.rsplit('.', 1)[-1]} ({hi:g}s)",
            )
