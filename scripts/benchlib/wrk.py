"""Reading ``wrk --latency`` output: requests/s, request count, p50/p99, errors.

wrk prints human units (``us``, ``ms``, ``s``); every latency here is converted to
milliseconds. Output without the summary lines raises ``WrkOutputError`` naming
what was missing, so a crashed or misconfigured run is never read as zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)", re.M)
_COUNT = re.compile(r"^\s*(\d+) requests in (\d+(?:\.\d+)?)(us|ms|s|m|h)", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


class WrkOutputError(ValueError):
    """wrk's output lacks a line the bench needs."""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses plus socket errors


def to_ms(value: str, unit: str) -> float:
    if unit not in _UNIT_MS:
        raise WrkOutputError(f"unknown wrk time unit {unit!r}")
    return float(value) * _UNIT_MS[unit]


def parse_wrk(text: str) -> WrkResult:
    percentiles = {float(p): to_ms(v, u) for p, v, u in _PERCENTILE.findall(text)}
    rps = _RPS.search(text)
    count = _COUNT.search(text)
    missing = [
        name
        for name, ok in (
            ("Requests/sec", rps is not None),
            ("'N requests in'", count is not None),
            ("50% latency (run wrk with --latency)", 50.0 in percentiles),
            ("99% latency (run wrk with --latency)", 99.0 in percentiles),
        )
        if not ok
    ]
    if missing or rps is None or count is None:
        raise WrkOutputError(f"wrk output lacks {', '.join(missing)}: {text[:200]!r}")
    errors = sum(int(n) for n in _NON2XX.findall(text))
    for groups in _SOCKET.findall(text):
        errors += sum(int(n) for n in groups)
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(count.group(1)),
        seconds=to_ms(count.group(2), count.group(3)) / 1000.0,
        p50_ms=percentiles[50.0],
        p99_ms=percentiles[99.0],
        errors=errors,
    )
