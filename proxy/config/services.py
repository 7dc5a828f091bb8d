"""Reading one entry of ``services``: identity, discovery, subsets, routes, policy.

Checks that involve only this service happen here (endpoints *or* dns, subsets that
select nothing, duplicate endpoints, routes on a ``tcp`` service); checks across
services (unique names, address:port and host:port claimed once) are in ``parse``.
"""

from __future__ import annotations

import re
from typing import cast

from proxy.config.errors import Issues, describe, key_path
from proxy.config.fields import (
    Section,
    choice,
    duration,
    hostname,
    integer,
    ip_address,
    list_of,
    string,
    string_map,
)
from proxy.config.model import (
    PROTOCOLS,
    Destination,
    DnsDiscovery,
    Endpoint,
    Protocol,
    Route,
    Service,
    Subset,
)
from proxy.config.policy import Policy, PolicyOverride, merge_policy
from proxy.config.policy_parse import check_ordered, read_policy
from proxy.config.routes import read_routes

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_SERVICE_KEYS = (
    "name", "port", "addresses", "hosts", "protocol",
    "endpoints", "dns", "subsets", "routes", "policy",
)  # fmt: skip
_port = integer(min=1, max=65535)


def _name(value: object, path: str, issues: Issues) -> str | None:
    text = string(value, path, issues)
    if text is not None and not _NAME.fullmatch(text):
        issues.add(path, f"not a valid name: {text!r} (letters, digits, '.', '_', '-')")
        return None
    return text


def _host(value: object, path: str, issues: Issues) -> str | None:
    """A host name the service answers to; ``*.example.com`` matches any subdomain."""
    if isinstance(value, str) and value.startswith("*."):
        name = hostname(value[2:], path, Issues())  # reported below with the "*."
        if name is None:
            issues.add(path, f"not a valid host name: {value!r}")
        return None if name is None else f"*.{name}"
    return hostname(value, path, issues)


def _endpoint(default_port: int, value: object, path: str, issues: Issues) -> Endpoint | None:
    section = Section(value, path, issues, ("address", "port", "labels", "weight"))
    address = section.need("address", ip_address)
    port = section.get("port", _port, default_port)
    labels: dict[str, str] = section.get("labels", string_map, {})
    weight = section.get("weight", integer(min=1), 1)
    return None if address is None else Endpoint(address, port, labels, weight)


def _dns(default_port: int, value: object, path: str, issues: Issues) -> DnsDiscovery | None:
    if isinstance(value, str):
        name = hostname(value, path, issues)
        return None if name is None else DnsDiscovery(name, default_port)
    section = Section(value, path, issues, ("hostname", "port", "refresh"))
    name = section.need("hostname", hostname)
    port = section.get("port", _port, default_port)
    refresh = section.get("refresh", duration(positive=True), 5.0)
    return None if name is None else DnsDiscovery(name, port, refresh)


def _subsets(value: object, path: str, issues: Issues) -> dict[str, Subset] | None:
    if not isinstance(value, dict):
        issues.add(path, f"expected a mapping of subset name to labels, got {describe(value)}")
        return None
    out: dict[str, Subset] = {}
    for name, selector in value.items():
        at = key_path(path, str(name))
        if _name(name, at, issues) is None:
            continue
        labels = string_map(selector, at, issues)
        if labels is not None:
            out[name] = Subset(name, labels)
    return out


def read_service(value: object, path: str, issues: Issues, defaults: Policy) -> Service | None:
    """One service, or None when it is too broken to build (the reasons are in ``issues``)."""
    s = Section(value, path, issues, _SERVICE_KEYS)
    name = s.need("name", _name)
    port = s.need("port", _port)
    addresses: tuple[str, ...] = s.get("addresses", list_of(ip_address), ())
    hosts: tuple[str, ...] = s.get("hosts", list_of(_host), ())
    default_port = port or 1  # only used while the document is already being rejected
    if s.ok and s.has("endpoints") == s.has("dns"):
        both = s.has("endpoints")
        issues.add(
            path, "set either endpoints or dns, not both" if both else "needs endpoints or dns"
        )

    endpoints: tuple[Endpoint, ...] = s.get(
        "endpoints",
        list_of(lambda v, p, i: _endpoint(default_port, v, p, i)),
        (),
    )
    dns = s.optional("dns", lambda v, p, i: _dns(default_port, v, p, i))
    seen: set[tuple[str, int]] = set()
    for i, ep in enumerate(endpoints):
        if (ep.address, ep.port) in seen:
            issues.add(f"{s.at('endpoints')}[{i}]", f"duplicate endpoint {ep.address}:{ep.port}")
        seen.add((ep.address, ep.port))

    subsets_before = len(issues)
    subsets: dict[str, Subset] = s.get("subsets", _subsets, {})
    # Subset names are only trusted for reference checks when they all parsed.
    known_subsets = subsets if len(issues) == subsets_before else None
    members = {
        n: tuple(ep for ep in endpoints if sub.selects(ep.labels)) for n, sub in subsets.items()
    }
    if not s.has("dns"):
        for n, chosen in members.items():
            if not chosen:
                selector = ", ".join(f"{k}={v}" for k, v in subsets[n].selector.items())
                issues.add(key_path(s.at("subsets"), n), f"selects no endpoint ({selector})")

    protocol = s.get("protocol", choice(PROTOCOLS), "auto")
    override = s.get("policy", read_policy, PolicyOverride())
    resolved = merge_policy(defaults, override)
    check_ordered(resolved, override, s.at("policy"), issues)
    routes: tuple[Route, ...] = ()
    if s.has("routes") and protocol == "tcp":
        issues.add(s.at("routes"), "a tcp service has no HTTP routes (protocol is tcp)")
    elif s.has("routes"):
        routes = read_routes(s.data["routes"], s.at("routes"), issues, known_subsets, resolved)

    if name is None or port is None:
        return None
    return Service(
        name=name,
        port=port,
        addresses=addresses,
        hosts=hosts,
        protocol=cast(Protocol, protocol),
        endpoints=endpoints,
        dns=dns,
        subsets=subsets,
        routes=routes,
        policy=override,
        resolved_policy=resolved,
        default_route=Route((Destination(None),), resolved_policy=resolved),
        subset_members=members,
    )
