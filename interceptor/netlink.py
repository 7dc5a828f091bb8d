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


def ensure_on_loopback(cidr: str) -> bool:
    """Put ``cidr`` (``::6/128``) on ``lo`` unless it is there; True when it was added.

    The proxy forwards inbound IPv6 to the app from ``::6``, which it can bind only once
    the address is local. 127.0.0.6 needs nothing (all of 127/8 is local already), but
    IPv6 has just ``::1`` on ``lo``; like Istio's init, we add ``::6`` here, where
    NET_ADMIN is available, because the proxy (uid 1337) cannot.
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    net = ipaddress.ip_interface(cidr)
    family = socket.AF_INET6 if net.version == 6 else socket.AF_INET
    with IPRoute() as ipr:
        (lo,) = ipr.link_lookup(ifname="lo")
        for msg in ipr.get_addr(index=lo, family=family):
            if msg.get_attr("IFA_ADDRESS") == str(net.ip):
                return False
        try:
            ipr.addr("add", index=lo, address=str(net.ip), prefixlen=net.network.prefixlen)
        except NetlinkError as e:  # surfaced as OSError: callers need not know pyroute2
            raise OSError(e.code, f"netlink: {e}") from e
    return True
