"""DNS discovery: a service's endpoints are the A/AAAA records of a name, kept fresh.

One task per DNS service resolves the name every ``refresh`` seconds (through
``loop.getaddrinfo`` by default, both families) and hands the addresses to the
cluster, which drains endpoints that disappeared and adds new ones without touching
those that stay. A failed lookup keeps the last good answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

from proxy.config.model import DnsDiscovery, Endpoint
from proxy.mesh.cluster import Cluster

log = logging.getLogger("proxy.mesh.discovery")

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def resolve_dns(hostname: str, port: int) -> list[str]:
    """The distinct addresses ``hostname`` resolves to (IPv4 and IPv6), in answer order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        hostname, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # a link-local scope is not ours to keep
        seen.setdefault(str(ipaddress.ip_address(address)), None)
    return list(seen)


class DnsWatcher:
    def __init__(
        self,
        cluster: Cluster,
        dns: DnsDiscovery,
        resolver: Resolver,
        clock: Callable[[], float],
    ) -> None:
        self.cluster = cluster
        self.dns = dns
        self.resolver = resolver
        self.clock = clock
        self.task: asyncio.Task[None] | None = None
        self.resolved = asyncio.Event()  # set after the first lookup, good or bad

    async def refresh(self) -> bool:
        """Resolve once and apply the answer; False (endpoints unchanged) on failure."""
        dns = self.dns
        try:
            addresses = await self.resolver(dns.hostname, dns.port)
        except (OSError, ValueError) as exc:  # socket.gaierror is an OSError
            log.warning("dns %s (%s): lookup failed: %s", dns.hostname, self.cluster.name, exc)
            return False
        finally:
            self.resolved.set()
        endpoints = [Endpoint(address, dns.port) for address in addresses]
        if [(e.address, e.port) for e in endpoints] != [
            (e.address, e.port) for e in self.cluster.endpoints
        ]:
            self.cluster.set_endpoints(endpoints, self.clock())
            log.info("dns %s: %s -> %s", dns.hostname, self.cluster.name, addresses)
        return True

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.dns.refresh)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self.run(), name=f"dns-{self.cluster.name}"
            )

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
