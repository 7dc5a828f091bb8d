"""SO_ORIGINAL_DST decoding (pure) and the family choice for mapped peers."""

from __future__ import annotations

import socket
import struct

import pytest

from proxy.core.errors import OriginalDstError
from proxy.l4.origdst import decode_sockaddr_in, decode_sockaddr_in6, original_dst, unmap


def sockaddr_in(ip: str, port: int) -> bytes:
    return (
        struct.pack("=H", socket.AF_INET)
        + struct.pack("!H", port)
        + socket.inet_aton(ip)
        + bytes(8)
    )


def sockaddr_in6(ip: str, port: int) -> bytes:
    packed = socket.inet_pton(socket.AF_INET6, ip)
    return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + packed + bytes(4)


@pytest.mark.parametrize(
    ("ip", "port"), [("10.96.0.20", 9080), ("127.0.0.1", 1), ("255.255.255.255", 65535)]
)
def test_decode_ipv4(ip: str, port: int) -> None:
    addr = decode_sockaddr_in(sockaddr_in(ip, port))
    assert (addr.host, addr.port, addr.family) == (ip, port, 4)


@pytest.mark.parametrize(("ip", "port"), [("fd77::1", 80), ("::1", 15001), ("2001:db8::5", 443)])
def test_decode_ipv6(ip: str, port: int) -> None:
    addr = decode_sockaddr_in6(sockaddr_in6(ip, port))
    assert (addr.host, addr.port, addr.family) == (ip, port, 6)


def test_decode_rejects_wrong_family_and_short_input() -> None:
    with pytest.raises(OriginalDstError, match="family"):
        decode_sockaddr_in(sockaddr_in6("::1", 80)[:16])
    with pytest.raises(OriginalDstError, match="too short"):
        decode_sockaddr_in6(b"\x0a\x00")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("::ffff:10.1.2.3", ("10.1.2.3", 4)),
        ("10.1.2.3", ("10.1.2.3", 4)),
        ("fd77:0::2", ("fd77::2", 6)),
        ("fe80::1%eth0", ("fe80::1", 6)),
    ],
)
def test_unmap(host: str, expected: tuple[str, int]) -> None:
    assert unmap(host) == expected


def test_unredirected_socket_reports_enoent_as_original_dst_error() -> None:
    # Without a NAT entry the kernel answers ENOENT (or ENOPROTOOPT with no conntrack).
    with (
        socket.create_server(("127.0.0.1", 0)) as srv,
        socket.create_connection(srv.getsockname()),
    ):
        conn, _ = srv.accept()
        with conn:
            try:
                got = original_dst(conn)
            except OriginalDstError as e:
                assert "SO_ORIGINAL_DST failed" in str(e)
            else:  # conntrack loaded: the original tuple is the listener itself
                assert (got.host, got.port) == srv.getsockname()
