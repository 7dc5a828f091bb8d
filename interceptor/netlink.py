"""The pod's own addresses, read with pyroute2 (the only module importing it).

Netlink gives every address with its family and scope; ``facts_from`` keeps the
non-loopback IPv4 ones and the global-scope IPv6 ones (ULA included, link-local and
::1 not), which is all the plan needs to decide on IPv6 capture.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from interceptor.plan import PodFacts

RT_SCOPE_UNIVERSE = 0  # "global" in `ip addr`


def facts_from(addresses: Iterable[tuple[int, int, str]]) -> PodFacts:
    """``(family, scope, address)`` triples → ``PodFacts`` (pure, for tests)."""
    v4: list[str] = []
    v6: list[str] = []
    for family, scope, text in addresses:
        ip = ipaddress.ip_address(text)
        if family == socket.AF_INET and not ip.is_loopback:
            v4.append(text)
        elif family == socket.AF_INET6 and scope == RT_SCOPE_UNIVERSE and not ip.is_loopback:
            v6.append(text)
    return PodFacts(tuple(dict.fromkeys(v4)), tuple(dict.fromkeys(v6)))


def pod_facts() -> PodFacts:
    """Addresses of the network namespace this process runs in."""
    from pyroute2 import IPRoute

    triples: list[tuple[int, int, str]] = []
    with IPRoute() as ipr:
        for msg in ipr.get_addr():
            # IFA_LOCAL is the interface's own address on point-to-point links.
            addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if addr:
                triples.append((int(msg["family"]), int(msg["scope"]), str(addr)))
    return facts_from(triples)
