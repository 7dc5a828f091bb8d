"""Finding the service a connection or request is for: address:port first, then Host.

Both lookups are dict hits on keys built once per configuration. The original
destination wins because it is what the app really dialled; the Host header is the
fallback for destinations that are not a service VIP (e.g. a pod IP from DNS).
"""

from __future__ import annotations

import ipaddress

from proxy.config.model import MeshConfig, Service


def split_host(host: str) -> tuple[str, int | None]:
    """``Host`` header text → (lower-case name, port or None); IPv6 literals keep no brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, sep, port_text = host.rpartition(":")
        if not sep or not port_text.isdigit():
            name, port_text = host, ""
    port = int(port_text) if port_text.isdigit() and len(port_text) <= 5 else None
    return name.rstrip("."), port


def _canonical_ip(text: str) -> str | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


class ServiceIndex:
    """Services by (address, port) and by (host name, port), built from one config."""

    def __init__(self, config: MeshConfig) -> None:
        self.config = config
        # Public for the dispatcher's hot path: a VIP hit is one dict lookup, no call.
        self.by_address: dict[tuple[str, int], Service] = {}
        self._by_host: dict[tuple[str, int], Service] = {}
        # "*.example.com" is kept as ".example.com": a suffix tried on an exact miss.
        self._by_suffix: dict[tuple[str, int], Service] = {}
        for service in config.services:
            for address in service.addresses:
                self.by_address[(address, service.port)] = service
            for name in service.hosts:
                if name.startswith("*."):
                    self._by_suffix[(name[1:], service.port)] = service
                else:
                    self._by_host[(name, service.port)] = service

    def lookup(self, dst_ip: str, dst_port: int, host: str | None) -> Service | None:
        service = self.by_address.get((dst_ip, dst_port))
        if service is not None:
            return service
        canonical = _canonical_ip(dst_ip)  # only on a miss: "::ffff:10.0.0.1", upper-case v6
        if canonical is not None and canonical != dst_ip:
            service = self.by_address.get((canonical, dst_port))
            if service is not None:
                return service
        if not host:
            return None
        name, port = split_host(host)
        # A Host without a port (or with an unknown one) means the port the app dialled.
        if port is not None and port != dst_port:
            service = self._by_name(name, port)
            if service is not None:
                return service
        return self._by_name(name, dst_port)

    def _by_name(self, name: str, port: int) -> Service | None:
        service = self._by_host.get((name, port)) or self.by_address.get((name, port))
        if service is not None or not self._by_suffix:
            return service
        # The longest wildcard wins: "*.b.example.com" before "*.example.com".
        dot = name.find(".")
        while dot != -1:
            service = self._by_suffix.get((name[dot:], port))
            if service is not None:
                return service
            dot = name.find(".", dot + 1)
        return None
