"""The CLI against the kernel: bad input changes nothing, --validate proves the redirect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kernel_rules import (
    BACKENDS,
    PYTHON,
    cli,
    env,
    iptables,
    save_text,
    start_listener,
)
from tests.support.netns import Netns, connect, netns

pytestmark = pytest.mark.netns
ENTRYPOINT = Path(__file__).resolve().parents[3] / "init-container" / "entrypoint.sh"

# (flag, bad value, text stderr must contain)
BAD_FLAGS = [
    ("--proxy-uid", "abc", "'abc'"),
    ("--proxy-gid", "-1", "'-1'"),
    ("--outbound-port", "70000", "'70000'"),
    ("--inbound-port", "0", "'0'"),
    ("--inbound-port", "15001", "--inbound-port 15001"),  # same as the outbound port
    ("--include-outbound-cidrs", "10.0.0.300/8", "'10.0.0.300/8'"),
    ("--exclude-outbound-cidrs", "nope", "'nope'"),
    ("--exclude-outbound-ports", "22,99999", "'99999'"),
    ("--include-inbound-ports", "80,http", "'http'"),
    ("--exclude-inbound-ports", "x1", "'x1'"),
    ("--backend", "bogus", "'bogus'"),
    ("--ipv6", "maybe", "'maybe'"),
]


def everything(ns: Netns) -> list[str]:
    """Both variants' nat tables, both families, without counters."""
    return [save_text(ns, b, f) for b in ("legacy", "nft") for f in (4, 6)]


@pytest.fixture
def ns() -> Iterator[Netns]:
    with netns("ik") as n:
        yield n


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_flags_exit_2_name_the_value_and_touch_nothing(ns: Netns, backend: str) -> None:
    assert cli(ns, "install", "--backend", backend, "--ipv6", "on")[0] == 0
    iptables(ns, backend, 4, "-A", "OUTPUT", "-p", "udp", "-j", "RETURN")
    before = everything(ns)
    for flag, value, named in BAD_FLAGS:
        for cmd in ("install", "remove"):
            rc, out, err = cli(ns, cmd, "--backend", backend, f"{flag}={value}")
            assert rc == 2, (flag, value, out, err)
            assert named in err and flag in err, err
            assert err.count("\n") == 1 and out == "", err
    assert everything(ns) == before


@pytest.mark.parametrize(("flag", "value", "named"), BAD_FLAGS)
def test_bad_env_values_exit_2_and_touch_nothing(
    ns: Netns, flag: str, value: str, named: str
) -> None:
    var = "MESH_" + flag.removeprefix("--").replace("-", "_").upper()
    assert cli(ns, "install", "--backend", "legacy")[0] == 0
    before = everything(ns)
    rc, out, err = cli(ns, "install", extra_env={var: value})
    assert rc == 2 and out == ""
    assert var in err and named.replace(flag, var) in err, err
    assert everything(ns) == before


def test_unknown_flag_and_command_are_one_line_exit_2(ns: Netns) -> None:
    for args in (["install", "--no-such-flag"], ["explode"], []):
        rc, out, err = cli(ns, *args)
        assert rc == 2 and out == "" and err.count("\n") == 1, err
    rc, _, err = cli(ns, "install", extra_env={"MESH_VALIDATE": "perhaps"})
    assert rc == 2 and "MESH_VALIDATE" in err and "'perhaps'" in err
    assert everything(ns) == [save_text(ns, b, f) for b in ("legacy", "nft") for f in (4, 6)]


def test_plan_touches_nothing_and_dump_marks_ours(ns: Netns) -> None:
    before = everything(ns)
    rc, out, _ = cli(ns, "plan", "--ipv6", "on", "--exclude-outbound-ports", "5432")
    assert rc == 0 and "# IPv6 (ip6tables-restore)" in out and "--dport 5432" in out
    assert everything(ns) == before
    assert cli(ns, "install", "--backend", "nft")[0] == 0
    iptables(ns, "legacy", 4, "-A", "OUTPUT", "-p", "udp", "-j", "RETURN")
    rc, out, _ = cli(ns, "dump")
    assert rc == 0
    legacy = out.split("# legacy IPv4 nat")[1].split("# legacy IPv6")[0]
    nft = out.split("# nft IPv4 nat")[1].split("# nft IPv6")[0]
    assert "  [0:0] -A OUTPUT -p udp -j RETURN" in legacy and "MESH_" not in legacy
    assert '* [0:0] -A OUTPUT -p tcp -m comment --comment "mesh: outbound' in nft
    rc, out, _ = cli(ns, "dump", "--format", "json")
    import json

    tables = {(t["backend"], t["family"]): t for t in json.loads(out)["tables"]}
    ours = [r for r in tables[("nft", 4)]["rules"] if r["ours"]]
    assert {r["chain"] for r in ours} == {
        "OUTPUT",
        "PREROUTING",
        "MESH_OUTPUT",
        "MESH_INBOUND",
        "MESH_REDIRECT",
        "MESH_IN_REDIRECT",
    }
    assert [r["ours"] for r in tables[("legacy", 4)]["rules"]] == [False]


@pytest.fixture(params=BACKENDS)
def pod(request: pytest.FixtureRequest) -> Iterator[tuple[Netns, str]]:
    """A pod whose default routes end in a peer that rejects the probe addresses at once."""
    with netns("ik") as pod_ns, netns("ik") as peer:
        connect(pod_ns, peer)
        peer.run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        peer.run("ip", "route", "add", "unreachable", "192.0.2.0/24")
        peer.run("ip", "-6", "route", "add", "unreachable", "2001:db8::/32")
        yield pod_ns, request.param


def test_validate_succeeds_and_leaves_nothing_behind(pod: tuple[Netns, str]) -> None:
    ns, backend = pod
    rc, out, err = cli(ns, "install", "--backend", backend, "--validate")
    assert rc == 0, err
    assert "validated IPv4: uid 65534 -> [192.0.2.1]:15002 landed on port 15001" in out
    assert "validated IPv6: uid 65534 -> [2001:db8::1]:15002 landed on port 15001" in out
    local = [line.split()[3] for line in ns.run("ss", "-Htan").stdout.splitlines()]
    assert [a for a in local if a.endswith(":15001")] == []  # no listener, no TIME_WAIT
    assert ns.pids() == []


@pytest.mark.parametrize(
    ("shadow", "why"),
    [
        (["-j", "ACCEPT"], "No route to host"),  # the SYN left the pod
        (["-j", "REDIRECT", "--to-ports", "15009"], "Connection refused"),
    ],
)
def test_validate_exits_4_when_a_foreign_rule_defeats_the_redirect(
    pod: tuple[Netns, str], shadow: list[str], why: str
) -> None:
    ns, backend = pod
    assert cli(ns, "install", "--backend", backend)[0] == 0
    iptables(ns, backend, 4, "-I", "OUTPUT", "1", "-p", "tcp", "-d", "192.0.2.1", *shadow)
    rc, out, err = cli(ns, "install", "--backend", backend, "--validate")
    assert rc == 4, (out, err)
    assert "nothing changed" in out  # our rules are intact; the kernel still bypasses them
    assert "IPv4: uid 65534 dialling [192.0.2.1]:15002 did not reach" in err and why in err
    assert ns.pids() == []


def test_validate_says_so_when_the_port_is_taken(pod: tuple[Netns, str]) -> None:
    ns, backend = pod
    start_listener(ns, "proxy", "15001")
    rc, _, err = cli(ns, "install", "--backend", backend, "--validate")
    assert rc == 4
    assert "port 15001 is already in use" in err


def test_entrypoint_installs_and_validates_from_env(pod: tuple[Netns, str]) -> None:
    ns, backend = pod
    run_env = env(
        MESH_INTERCEPTOR=f"{PYTHON} -m interceptor",
        MESH_BACKEND=backend,
        MESH_EXCLUDE_OUTBOUND_PORTS="5432",
    )
    done = ns.run("sh", str(ENTRYPOINT), check=False, env=run_env)
    assert done.returncode == 0, done.stderr
    assert "validated IPv4" in done.stdout
    assert "--dport 5432" in save_text(ns, backend, 4)
    run_env["MESH_OUTBOUND_PORT"] = "http"
    done = ns.run("sh", str(ENTRYPOINT), check=False, env=run_env)
    assert done.returncode == 2 and "MESH_OUTBOUND_PORT: 'http'" in done.stderr


def test_install_with_ipv6_puts_the_passthrough_source_on_lo_once(ns: Netns) -> None:
    """The proxy (uid 1337) cannot add ::6 itself; without it inbound IPv6 cannot be bound."""

    def lo_v6() -> str:
        return ns.run("ip", "-6", "-o", "addr", "show", "dev", "lo").stdout

    assert "::6/128" not in lo_v6()
    rc, out, _ = cli(ns, "install", "--backend", "legacy", "--ipv6", "off")
    assert rc == 0 and "::6/128" not in lo_v6()
    rc, out, _ = cli(ns, "install", "--backend", "legacy", "--ipv6", "on")
    assert rc == 0 and "lo: added ::6/128" in out
    assert "inet6 ::6/128" in lo_v6()
    rc, out, _ = cli(ns, "install", "--backend", "legacy", "--ipv6", "on")
    assert rc == 0 and "lo: added" not in out and "nothing changed" in out
