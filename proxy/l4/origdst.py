"""SO_ORIGINAL_DST: where a REDIRECTed TCP connection was headed.

One small typed function asks the kernel (conntrack) with the call that matches the
peer's real family: the IPv4 call for IPv4 peers, including IPv4-mapped peers on a
dual-stack socket, the IPv6 call otherwise. Decoding the sockaddr is pure.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from proxy.core.errors import OriginalDstError

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value
SOL_IP = 0
SOL_IPV6 = 41
SOCKADDR_IN_LEN = 16
SOCKADDR_IN6_LEN = 28


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    family: int  # 4 or 6

    @property
    def pair(self) -> tuple[str, int]:
        return (self.host, self.port)


def decode_sockaddr_in(raw: bytes) -> Address:
    """struct sockaddr_in: family (host order), port (big-endian), 4-byte address."""
    if len(raw) < 8:
        raise OriginalDstError(f"sockaddr_in too short: {len(raw)} bytes")
    family, port = _fam_port(raw)
    if family != socket.AF_INET:
        raise OriginalDstError(f"expected AF_INET sockaddr, got family {family}")
    return Address(socket.inet_ntop(socket.AF_INET, raw[4:8]), port, 4)


def decode_sockaddr_in6(raw: bytes) -> Address:
    """struct sockaddr_in6: family, port (big-endian), flowinfo, 16-byte address, scope."""
    if len(raw) < 24:
        raise OriginalDstError(f"sockaddr_in6 too short: {len(raw)} bytes")
    family, port = _fam_port(raw)
    if family != socket.AF_INET6:
        raise OriginalDstError(f"expected AF_INET6 sockaddr, got family {family}")
    return Address(socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, 6)


def _fam_port(raw: bytes) -> tuple[int, int]:
    (family,) = struct.unpack("=H", raw[0:2])
    (port,) = struct.unpack("!H", raw[2:4])
    return family, port


def unmap(host: str) -> tuple[str, int]:
    """``::ffff:10.0.0.1`` → (``10.0.0.1``, 4); other addresses keep their family.

    Called for every connection, so the kernel's own spellings (getpeername) take a
    string fast path; anything else is canonicalised by ``ipaddress``.
    """
    if ":" not in host:
        return host, 4
    if host.startswith("::ffff:") and "." in host:
        return host[7:], 4
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped), 4
        return str(ip), 6
    return str(ip), 4


def original_dst(sock: socket.socket) -> Address:
    """The pre-REDIRECT destination of an accepted TCP socket.

    Raises OriginalDstError when conntrack has no entry (ENOENT), e.g. for a
    connection that was never NATed and conntrack is not loaded.
    """
    _, peer_family = unmap(sock.getpeername()[0])
    try:
        if peer_family == 4:
            return decode_sockaddr_in(sock.getsockopt(SOL_IP, SO_ORIGINAL_DST, SOCKADDR_IN_LEN))
        return decode_sockaddr_in6(sock.getsockopt(SOL_IPV6, SO_ORIGINAL_DST, SOCKADDR_IN6_LEN))
    except OSError as e:
        raise OriginalDstError(f"SO_ORIGINAL_DST failed: {e.strerror or e}") from e
