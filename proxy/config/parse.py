"""From a decoded document (dicts, lists, scalars) to a validated ``MeshConfig``.

Every section is read even after errors, and every error is kept; only at the end is
``ConfigError`` raised with all of them. Cross-service rules live here: names are
unique, and an address:port or host:port belongs to at most one service.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from proxy.config.errors import ConfigError, Issues, describe, index_path, key_path
from proxy.config.fields import Section, boolean, choice, duration, integer, number, string
from proxy.config.model import (
    OUTBOUND_POLICIES,
    MeshConfig,
    MeshSettings,
    Overload,
    Service,
    Tracing,
)
from proxy.config.policy import Policy, PolicyOverride, merge_policy
from proxy.config.policy_parse import check_ordered, read_policy
from proxy.config.services import read_service


def empty_config() -> MeshConfig:
    """No services: every connection is relayed to its original destination."""
    return MeshConfig()


def parse_config(doc: object) -> MeshConfig:
    """Validate a decoded document; raises ``ConfigError`` listing every problem."""
    issues = Issues()
    if doc is None:
        raise ConfigError(["(document): empty (expected a mapping with mesh, defaults, services)"])
    root = Section(doc, "", issues, ("mesh", "defaults", "services"))
    mesh = root.get("mesh", _read_mesh, MeshSettings())
    override = root.get("defaults", read_policy, PolicyOverride())
    defaults = merge_policy(Policy(), override)
    check_ordered(defaults, override, "defaults", issues)
    services = _read_services(root, issues, defaults)
    issues.raise_if_any()
    return MeshConfig(mesh, defaults, services)


def _read_tracing(value: object, path: str, issues: Issues) -> Tracing | None:
    section = Section(value, path, issues, ("zipkin_url", "sample_rate"))
    url = section.need("zipkin_url", string)
    if url is not None:
        # The exporter parses the URL the same way when the config is applied: every
        # way it could fail (a stray "]", port 99999) is caught here, by field path.
        try:
            parts = urlsplit(url)
            good = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port
        except ValueError as exc:
            issues.add(section.at("zipkin_url"), f"not an http(s) URL: {url!r} ({exc})")
            url = None
        else:
            if not good:
                issues.add(section.at("zipkin_url"), f"not an http(s) URL: {url!r}")
                url = None
    rate = section.get("sample_rate", number(min=0, max=1), 0.01)
    return None if url is None else Tracing(url, rate)


def _read_overload(value: object, path: str, issues: Issues) -> Overload | None:
    defaults = Overload()
    names = (
        "max_downstream_connections",
        "max_pending_requests",
        "per_connection_buffer_bytes",
        "max_buffered_bytes",
    )
    section = Section(value, path, issues, names)
    at_least_one = integer(min=1)
    return Overload(*(section.get(name, at_least_one, getattr(defaults, name)) for name in names))


def _read_mesh(value: object, path: str, issues: Issues) -> MeshSettings | None:
    keys = ("outbound_policy", "protocol_detect_timeout", "tracing", "access_log", "overload")
    section = Section(value, path, issues, keys)
    return MeshSettings(
        outbound_policy=section.get("outbound_policy", choice(OUTBOUND_POLICIES), "allow_any"),
        protocol_detect_timeout=section.get(
            "protocol_detect_timeout", duration(positive=True), 0.1
        ),
        tracing=section.optional("tracing", _read_tracing),
        access_log=section.get("access_log", boolean, True),
        overload=section.get("overload", _read_overload, Overload()),
    )


def _read_services(root: Section, issues: Issues, defaults: Policy) -> tuple[Service, ...]:
    raw = root.data.get("services", [])
    if not isinstance(raw, list):
        issues.add("services", f"expected a list, got {describe(raw)}")
        return ()
    found: list[tuple[str, Service]] = []
    for i, item in enumerate(raw):
        path = index_path("services", i)
        service = read_service(item, path, issues, defaults)
        if service is not None:
            found.append((path, service))
    _check_unique(found, issues)
    return tuple(service for _, service in found)


def _check_unique(found: list[tuple[str, Service]], issues: Issues) -> None:
    """Report a name, address:port or host:port that a second service claims again."""
    names: dict[str, str] = {}
    claims: dict[tuple[str, int], tuple[str, str]] = {}
    for path, service in found:
        if service.name in names:
            issues.add(
                key_path(path, "name"),
                f"duplicate service name {service.name!r} (also {names[service.name]})",
            )
        names.setdefault(service.name, path)
        for field, values in (("addresses", service.addresses), ("hosts", service.hosts)):
            for i, value in enumerate(values):
                claim = (value, service.port)
                if claim in claims:
                    other, other_path = claims[claim]
                    shown = f"[{value}]" if ":" in value else value
                    issues.add(
                        index_path(key_path(path, field), i),
                        f"{shown}:{service.port} is already claimed by "
                        f"service {other!r} ({other_path})",
                    )
                claims.setdefault(claim, (service.name, path))
