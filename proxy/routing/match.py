"""Choosing a service's route for a request: the first route whose match holds.

Conditions were compiled at load (``ValueMatch``), so a check is a dict lookup and a
string comparison or one precompiled regex. The query string is parsed only when a
route actually tests a query parameter, and at most once per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from proxy.config.model import Route, RouteMatch, Service, ValueMatch
from proxy.routing.request import RequestInfo


def match_route(service: Service, req: RequestInfo) -> Route | None:
    """The first matching route; a service without routes has one implicit catch-all."""
    if not service.routes:
        return service.default_route
    params: dict[str, str] | None = None
    for route in service.routes:
        match = route.match
        if not _matches_request_line(match, req):
            continue
        if match.query:
            if params is None:
                params = parse_query(req.query)
            if not _all_hold(match.query, params):
                continue
        return route
    return None


def _matches_request_line(match: RouteMatch, req: RequestInfo) -> bool:
    if match.methods and req.method not in match.methods:
        return False
    if match.path is not None and not match.path.matches(req.path):
        return False
    return _all_hold(match.headers, req.headers)


def _all_hold(conditions: tuple[tuple[str, ValueMatch], ...], values: Mapping[str, str]) -> bool:
    return all(cond.matches(values.get(name)) for name, cond in conditions)


def parse_query(query: str) -> dict[str, str]:
    """Decoded query parameters; for a repeated name the first value counts."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params
