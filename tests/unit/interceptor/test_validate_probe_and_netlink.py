"""Pure parts of ``--validate`` and of the netlink adapter: what to dial, how to decode."""

from __future__ import annotations

import socket
import struct

import pytest

from interceptor import probe
from interceptor.netlink import facts_from
from interceptor.options import Options
from interceptor.probe import Target, choose_target, probe_uid
from proxy.l4 import origdst


@pytest.mark.parametrize(
    ("options", "family", "expected"),
    [
        (Options(), 4, Target(4, "192.0.2.1", 15002)),
        (Options(), 6, Target(6, "2001:db8::1", 15002)),
        (Options(exclude_outbound_ports=(15002, 15003)), 4, Target(4, "192.0.2.1", 15004)),
        (Options(outbound_port=15002, inbound_port=15003), 4, Target(4, "192.0.2.1", 15004)),
        (Options(include_outbound_cidrs=("10.96.0.0/12",)), 4, Target(4, "10.96.0.1", 15002)),
        (Options(include_outbound_cidrs=("10.96.0.0/12",)), 6, None),  # v6 captures nothing
        (Options(include_outbound_cidrs=("10.1.2.3/32",)), 4, Target(4, "10.1.2.3", 15002)),
        (
            Options(
                include_outbound_cidrs=("10.0.0.0/16",), exclude_outbound_cidrs=("10.0.0.0/24",)
            ),
            4,
            Target(4, "10.0.1.0", 15002),
        ),
        (Options(include_outbound_cidrs=()), 4, None),
        (Options(include_outbound_cidrs=("fd00::/8",)), 6, Target(6, "fd00::1", 15002)),
    ],
)
def test_choose_target(options: Options, family: int, expected: Target | None) -> None:
    assert choose_target(options, family) == expected  # type: ignore[arg-type]


class _Accepted:
    """An accepted socket as the probe sees it: its peer, and what SO_ORIGINAL_DST gives."""

    def __init__(self, peer: str, raw: bytes) -> None:
        self.peer, self.raw = peer, raw
        self.asked: list[tuple[int, int, int]] = []

    def getpeername(self) -> tuple[str, int]:
        return (self.peer, 40000)

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        self.asked.append((level, option, size))
        return self.raw


def test_the_probe_decodes_with_the_proxys_one_decoder() -> None:
    assert probe.original_dst is origdst.original_dst  # STYLE rule 10: one decoder
    v4 = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s", 8080, bytes([10, 96, 0, 20]))
    conn = _Accepted("127.0.0.1", v4 + b"\0" * 8)
    assert probe.original_dst(conn).pair == ("10.96.0.20", 8080)  # type: ignore[arg-type]
    assert conn.asked == [(socket.SOL_IP, 80, 16)]
    addr6 = socket.inet_pton(socket.AF_INET6, "fd77::1")
    v6 = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI16s", 443, 0, addr6) + b"\0" * 4
    assert len(v6) == 28
    conn = _Accepted("::1", v6)
    assert probe.original_dst(conn).pair == ("fd77::1", 443)  # type: ignore[arg-type]
    assert conn.asked == [(41, 80, 28)]


def test_probe_uid_is_never_the_proxy() -> None:
    assert probe_uid(Options()) == 65534
    assert probe_uid(Options(proxy_uid=65534)) == 65533
    assert probe_uid(Options(proxy_uid=65534, proxy_gid=65533)) == 65532


def test_facts_from_netlink_triples() -> None:
    facts = facts_from(
        [
            (socket.AF_INET, 254, "127.0.0.1"),
            (socket.AF_INET, 0, "10.77.0.2"),
            (socket.AF_INET6, 254, "::1"),  # host scope
            (socket.AF_INET6, 253, "fe80::1"),  # link scope
            (socket.AF_INET6, 0, "fd77::2"),  # ULA is global scope to the kernel
            (socket.AF_INET, 0, "10.77.0.2"),
        ]
    )
    assert facts.addresses4 == ("10.77.0.2",)
    assert facts.addresses6 == ("fd77::2",)
    assert facts.has_global_ipv6
    assert not facts_from([(socket.AF_INET6, 253, "fe80::1")]).has_global_ipv6
