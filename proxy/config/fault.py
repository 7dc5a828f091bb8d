"""Reading a route's ``fault`` (Istio's ``HTTPFaultInjection``, Envoy's fault filter).

``delay: {fixed: 50ms, percent: 1}`` holds that share of requests; ``abort:
{http_status: 503, percent: 0.5}`` answers that share itself. ``percent`` is 0 to 100
and may be fractional; a fault must name at least one of the two.
"""

from __future__ import annotations

from proxy.config.errors import Issues
from proxy.config.fields import Section, duration, integer, number
from proxy.config.model import Fault, FaultAbort, FaultDelay

_PERCENT = number(min=0.0, max=100.0)


def read_fault(value: object, path: str, issues: Issues) -> Fault | None:
    section = Section(value, path, issues, ("delay", "abort"))
    if section.ok and not (section.has("delay") or section.has("abort")):
        issues.add(path, "set delay, abort or both")
        return None
    delay = section.optional("delay", _read_delay)
    abort = section.optional("abort", _read_abort)
    if not section.ok or section.unknown:
        return None
    return Fault(delay, abort)


def _read_delay(value: object, path: str, issues: Issues) -> FaultDelay | None:
    section = Section(value, path, issues, ("fixed", "percent"))
    fixed = section.need("fixed", duration(positive=True))
    percent = section.need("percent", _PERCENT)
    if fixed is None or percent is None:
        return None
    return FaultDelay(fixed, percent)


def _read_abort(value: object, path: str, issues: Issues) -> FaultAbort | None:
    section = Section(value, path, issues, ("http_status", "percent"))
    status = section.need("http_status", integer(min=200, max=599))
    percent = section.need("percent", _PERCENT)
    if status is None or percent is None:
        return None
    return FaultAbort(status, percent)
