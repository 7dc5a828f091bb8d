"""Each backend against the real kernel: exact install, no-op re-run, replace, remove, verify."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from interceptor.model import Family
from interceptor.options import Options
from interceptor.plan import PodFacts, build_plan
from tests.support.kernel_rules import (
    BACKENDS,
    assert_holds_exactly,
    assert_none_of_ours,
    cli,
    iptables,
    live,
    save_text,
)
from tests.support.netns import Netns, netns

pytestmark = pytest.mark.netns
FAMILIES: tuple[Family, ...] = (4, 6)
POD = PodFacts(("10.77.0.2/24",), ())


@pytest.fixture
def ns() -> Iterator[Netns]:
    with netns("ik") as n:
        yield n


def planned(**kw: object) -> dict[Family, object]:
    plan = build_plan(Options(ipv6="on", **kw), POD)  # type: ignore[arg-type]
    return {f: plan.for_family(f) for f in FAMILIES}


@pytest.mark.parametrize("backend", BACKENDS)
def test_install_exact_then_noop_then_replace(ns: Netns, backend: str) -> None:
    # Leftovers of an older version: a MESH_ chain we no longer plan, jumped into.
    iptables(ns, backend, 4, "-N", "MESH_OLD")
    iptables(ns, backend, 4, "-A", "MESH_OLD", "-j", "RETURN")
    iptables(ns, backend, 4, "-A", "PREROUTING", "-j", "MESH_OLD")
    rc, out, err = cli(ns, "install", "--backend", backend, "--ipv6", "on")
    assert rc == 0, err
    assert "MESH_OLD" not in save_text(ns, backend, 4)
    for f, rs in planned().items():
        assert_holds_exactly(live(ns, backend, f), rs)  # type: ignore[arg-type]

    before = [save_text(ns, backend, f) for f in FAMILIES]
    rc, out, err = cli(ns, "install", "--backend", backend, "--ipv6", "on")
    assert rc == 0, err
    assert "already installed, nothing changed" in out
    assert [save_text(ns, backend, f) for f in FAMILIES] == before

    rc, out, err = cli(
        ns,
        "install",
        "--backend",
        backend,
        "--ipv6",
        "on",
        "--exclude-outbound-ports",
        "22,5432",
        "--outbound-port",
        "15009",
    )
    assert rc == 0, err
    assert "nothing changed" not in out
    new = planned(exclude_outbound_ports=(22, 5432), outbound_port=15009)
    for f, rs in new.items():
        assert_holds_exactly(live(ns, backend, f), rs)  # type: ignore[arg-type]
    assert "--to-ports 15009" in save_text(ns, backend, 4)
    assert "--to-ports 15001" not in save_text(ns, backend, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_remove_keeps_foreign_rules(ns: Netns, backend: str) -> None:
    for f in FAMILIES:
        iptables(ns, backend, f, "-N", "KEEP_ME")
        iptables(ns, backend, f, "-A", "KEEP_ME", "-p", "tcp", "--dport", "7", "-j", "RETURN")
        iptables(ns, backend, f, "-A", "OUTPUT", "-p", "udp", "-j", "KEEP_ME")
    foreign = [save_text(ns, backend, f) for f in FAMILIES]

    rc, _, err = cli(ns, "install", "--backend", backend, "--ipv6", "on")
    assert rc == 0, err
    assert all("MESH_OUTPUT" in save_text(ns, backend, f) for f in FAMILIES)
    rc, out, err = cli(ns, "remove", "--backend", backend)
    assert rc == 0, err
    assert "removed 4 chains and 2 jumps" in out
    for f in FAMILIES:
        assert_none_of_ours(live(ns, backend, f))
    assert [save_text(ns, backend, f) for f in FAMILIES] == foreign

    rc, out, _ = cli(ns, "remove", "--backend", backend)
    assert rc == 0 and "nothing changed" in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_reports_a_hand_deleted_rule(ns: Netns, backend: str) -> None:
    rc, out, _ = cli(ns, "verify", "--backend", backend)
    assert rc == 1 and "missing chain: MESH_OUTPUT" in out
    assert cli(ns, "install", "--backend", backend)[0] == 0
    rc, out, _ = cli(ns, "verify", "--backend", backend)
    assert (rc, out) == (0, f"{backend}: live rules match the plan\n")

    table = live(ns, backend, 4)
    victim = next(r for r in table.chain_rules("MESH_OUTPUT") if "loopback" in r.rule.comment)
    iptables(ns, backend, 4, "-D", "MESH_OUTPUT", str(victim.position))
    rc, out, _ = cli(ns, "verify", "--backend", backend)
    assert rc == 1
    assert "IPv4: missing: -A MESH_OUTPUT -d 127.0.0.1/32" in out
    assert victim.rule.comment in out

    iptables(ns, backend, 4, "-A", "MESH_OUTPUT", "-j", "RETURN")
    rc, out, _ = cli(ns, "verify", "--backend", backend)
    assert rc == 1 and "IPv4: unexpected: -A MESH_OUTPUT -j RETURN" in out

    assert cli(ns, "install", "--backend", backend)[0] == 0  # repairs the drift
    assert cli(ns, "verify", "--backend", backend)[0] == 0


def test_auto_prefers_the_variant_already_in_use(ns: Netns) -> None:
    rc, out, _ = cli(ns, "install")
    assert rc == 0 and out.startswith("nft: ")  # nothing anywhere: nft
    assert cli(ns, "remove")[0] == 0
    iptables(ns, "legacy", 4, "-A", "OUTPUT", "-p", "udp", "-j", "RETURN")
    rc, out, _ = cli(ns, "install")
    assert rc == 0 and out.startswith("legacy: ")  # legacy holds rules: stay there
    assert "MESH_OUTPUT" in save_text(ns, "legacy", 4)
    assert "MESH_OUTPUT" not in save_text(ns, "nft", 4)
    rc, out, _ = cli(ns, "verify", extra_env={"MESH_BACKEND": "iptc"})
    assert (rc, out) == (0, "iptc: live rules match the plan\n")  # env forces a backend
