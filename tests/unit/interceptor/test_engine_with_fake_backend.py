"""Engine decisions against the recording fake backend: no-op, replace, rollback, remove."""

from __future__ import annotations

import pytest

from interceptor import engine
from interceptor.backends.fake import FakeBackend
from interceptor.diff import change_for, drift
from interceptor.errors import ApplyFailed, BackendError
from interceptor.model import Match, Rule
from interceptor.options import Options
from interceptor.plan import Plan, PodFacts, build_plan

V4 = PodFacts(("10.77.0.2/24",), ())
V6 = PodFacts(("10.77.0.2/24",), ("fd77::2/64",))
FOREIGN_CHAIN = Rule("KEEP_ME", (Match("-d", "10.9.9.9/32"),), "RETURN", (), "foreign")
FOREIGN_JUMP = Rule("OUTPUT", (Match("-p", "udp"),), "KEEP_ME", (), "foreign jump")


def plan(pod: PodFacts = V4, **kw: object) -> Plan:
    return build_plan(Options(**kw), pod)  # type: ignore[arg-type]


def with_foreign() -> FakeBackend:
    b = FakeBackend()
    b.add_foreign(4, FOREIGN_CHAIN, chain_is_new=True)
    b.add_foreign(4, FOREIGN_JUMP)
    return b


def test_first_install_applies_one_change_per_family_then_matches() -> None:
    b = with_foreign()
    report = engine.install(plan(V6), b)
    assert report.changed
    assert [c.family for c in b.applied] == [4, 6]
    assert engine.verify(plan(V6), b) == []
    assert FOREIGN_JUMP in [r.rule for r in b.read(4).rules]


def test_second_install_is_a_no_op_and_says_so() -> None:
    b = FakeBackend()
    engine.install(plan(), b)
    before = (b.read(4), b.read(6))
    report = engine.install(plan(), b)
    assert not report.changed
    assert report.lines == ("fake: already installed, nothing changed",)
    assert len(b.applied) == 1
    assert (b.read(4), b.read(6)) == before


def test_changed_options_replace_our_chains_keep_existing_jumps() -> None:
    b = FakeBackend()
    engine.install(plan(), b)
    engine.install(plan(exclude_outbound_ports=(22,)), b)
    change = b.applied[-1]
    assert change.delete_jumps == ()  # the jumps were right: kept, not re-added
    assert not any(r.chain in ("OUTPUT", "PREROUTING") for r in change.add_rules)
    assert set(change.flush_chains) == {
        "MESH_INBOUND",
        "MESH_IN_REDIRECT",
        "MESH_OUTPUT",
        "MESH_REDIRECT",
    }
    assert engine.verify(plan(exclude_outbound_ports=(22,)), b) == []
    assert any("--dport 22" in line for line in engine.verify(plan(), b))


def test_dropping_ipv6_removes_our_ipv6_rules() -> None:
    b = FakeBackend()
    engine.install(plan(V6), b)
    report = engine.install(plan(V4), b)
    assert "fake: IPv6 rules removed" in report.lines
    assert b.read(6).rules == () and b.read(6).our_chains() == ()


def test_silently_dropped_field_is_detected_and_rolled_back() -> None:
    """python-iptables can skip what it cannot encode: the read-back catches it."""
    b = with_foreign()
    before = b.read(4)
    b.drop_comments = True
    with pytest.raises(ApplyFailed, match="read back differ"):
        engine.install(plan(), b)
    assert b.read(4) == before  # nothing of ours left, foreign rules untouched


def test_failure_on_second_family_rolls_back_the_first() -> None:
    b = FakeBackend()
    engine.install(plan(V6, exclude_outbound_ports=(22,)), b)
    before = (b.read(4), b.read(6))
    b.fail_family = 6
    with pytest.raises(ApplyFailed, match="rolled back"):
        engine.install(plan(V6), b)
    assert (b.read(4), b.read(6)) == before
    assert engine.verify(plan(V6, exclude_outbound_ports=(22,)), b) == []


def test_remove_deletes_ours_only() -> None:
    b = with_foreign()
    engine.install(plan(V6), b)
    report = engine.remove(b)
    assert report.changed
    assert [r.rule for r in b.read(4).rules] == [FOREIGN_JUMP, FOREIGN_CHAIN]
    assert b.read(4).our_chains() == () and b.read(6).rules == ()
    assert not engine.remove(b).changed


def test_remove_failure_surfaces_as_backend_error() -> None:
    b = FakeBackend()
    engine.install(plan(), b)
    b.fail_family = 4
    with pytest.raises(BackendError):
        engine.remove(b)


def test_verify_lists_missing_and_unexpected_rules() -> None:
    b = FakeBackend()
    engine.install(plan(), b)
    b.add_foreign(4, Rule("MESH_OUTPUT", (), "RETURN", (), "hand made"))
    lines = engine.verify(plan(exclude_outbound_ports=(5432,)), b)
    assert any(line.startswith("IPv4: missing: ") and "--dport 5432" in line for line in lines)
    assert any(line.startswith("IPv4: unexpected: ") and "hand made" in line for line in lines)


def test_duplicate_jump_is_unexpected_and_removed_by_install() -> None:
    b = FakeBackend()
    engine.install(plan(), b)
    jump = plan().rulesets[0].jumps()[0]
    b.add_foreign(4, jump)
    assert drift(plan().rulesets[0], b.read(4)) == [
        f'unexpected: -A {jump.chain} -p tcp -m comment --comment "{jump.comment}" -j {jump.target}'
    ]
    engine.install(plan(), b)
    assert engine.verify(plan(), b) == []


def test_order_change_is_drift() -> None:
    rs = plan().rulesets[0]
    b = FakeBackend()
    engine.install(plan(), b)
    live = b.read(4)
    swapped = list(rs.rules)
    i = next(n for n, r in enumerate(swapped) if r.chain == "MESH_INBOUND")
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    from interceptor.model import RuleSet

    other = RuleSet(4, "nat", rs.chains, tuple(swapped))
    assert drift(other, live) == ["order differs in chain MESH_INBOUND"]
    assert change_for(other, live).flush_chains == rs.chains
