"""What really happens to connections once each backend installed the rules.

A "pod" namespace with the rules and a capture listener on 15001/15006 (plus an app
port 9090 excluded from inbound capture), a "peer" namespace behind a veth with a
plain server on 80 and 9999 (9999 excluded from outbound capture) and a second
address range 10.77.5.0/24 / fd77:5::/64 (excluded CIDRs). Every assertion is on
what the listener that accepted the connection saw, SO_ORIGINAL_DST included.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kernel_rules import BACKENDS, cli, dial, start_listener
from tests.support.netns import Netns, connect, netns

pytestmark = pytest.mark.netns
NOBODY, PROXY = 65534, 1337


@pytest.fixture(scope="module", params=BACKENDS)
def pod(request: pytest.FixtureRequest) -> Iterator[tuple[Netns, Netns]]:
    with netns("ik") as pod_ns, netns("ik") as peer:
        link = connect(pod_ns, peer)
        peer.run("ip", "addr", "add", "10.77.5.1/32", "dev", link.ifname)
        peer.run("ip", "-6", "addr", "add", "fd77:5::1/128", "dev", link.ifname, "nodad")
        start_listener(pod_ns, "pod", "15001,15006,9090")
        start_listener(peer, "peer", "80,9999")
        rc, _, err = cli(
            pod_ns,
            "install",
            "--backend",
            request.param,
            "--exclude-outbound-ports",
            "9999",
            "--exclude-outbound-cidrs",
            "10.77.5.0/24,fd77:5::/64",
            "--exclude-inbound-ports",
            "9090",
        )  # IPv6 rules come from --ipv6 auto: fd77::2 is a global-scope address
        assert rc == 0, err
        yield pod_ns, peer


def landed(port: int, orig: list[object]) -> dict[str, object]:
    return {"name": "pod", "port": port, "orig": orig}


def test_outbound_from_app_lands_on_15001_with_original_destination(
    pod: tuple[Netns, Netns],
) -> None:
    got = dial(pod[0], (NOBODY, "10.77.0.1", 80), (NOBODY, "fd77::1", 80), (0, "10.77.0.1", 81))
    assert got == [
        landed(15001, ["10.77.0.1", 80]),
        landed(15001, ["fd77::1", 80]),
        landed(15001, ["10.77.0.1", 81]),  # root is an ordinary app uid too
    ]


def test_proxy_uid_goes_straight_to_the_peer(pod: tuple[Netns, Netns]) -> None:
    got = dial(pod[0], (PROXY, "10.77.0.1", 80), (PROXY, "fd77::1", 80))
    assert [(g["name"], g["port"]) for g in got] == [("peer", 80), ("peer", 80)]


def test_every_other_uid_is_redirected_and_only_1337_is_not(pod: tuple[Netns, Netns]) -> None:
    uids = (1, 1000, PROXY - 1, PROXY + 1, 4242, 65533)
    got = dial(pod[0], *[(uid, host, 80) for uid in uids for host in ("10.77.0.1", "fd77::1")])
    assert got == [landed(15001, [host, 80]) for _ in uids for host in ("10.77.0.1", "fd77::1")]
    got = dial(pod[0], (PROXY, "10.77.0.1", 9999), (PROXY, "fd77::1", 9999))
    assert [(g["name"], g["port"]) for g in got] == [("peer", 9999), ("peer", 9999)]


def test_excluded_port_and_cidrs_are_not_redirected(pod: tuple[Netns, Netns]) -> None:
    got = dial(
        pod[0],
        (NOBODY, "10.77.0.1", 9999),
        (NOBODY, "fd77::1", 9999),
        (NOBODY, "10.77.5.1", 80),
        (NOBODY, "fd77:5::1", 80),
    )
    assert [(g["name"], g["port"]) for g in got] == [
        ("peer", 9999),
        ("peer", 9999),
        ("peer", 80),
        ("peer", 80),
    ]


def test_inbound_lands_on_15006_except_excluded_ports(pod: tuple[Netns, Netns]) -> None:
    got = dial(
        pod[1],
        (0, "10.77.0.2", 8080),
        (0, "fd77::2", 8080),
        (0, "10.77.0.2", 9090),
        (0, "fd77::2", 9090),
    )
    assert got[:2] == [landed(15006, ["10.77.0.2", 8080]), landed(15006, ["fd77::2", 8080])]
    assert [(g["name"], g["port"]) for g in got[2:]] == [("pod", 9090), ("pod", 9090)]
