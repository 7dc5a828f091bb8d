"""The proxy's ports in net.ipv4.ip_local_reserved_ports: the pure merge, and every CLI
command against a namespace in memory (``MemorySysctls``) and the recording fake backend."""

from __future__ import annotations

import errno
import json

import pytest

from interceptor import cli
from interceptor.backends.fake import FakeBackend
from interceptor.options import Options
from interceptor.reserved import Reservation, parse_ports, proxy_ports, render_ports
from interceptor.sysctl import MemorySysctls
from tests.support.interceptor_cli import run

OURS = frozenset({15000, 15001, 15006, 15020, 15021, 15090})
USERS = frozenset({80, 15020, 30000, 30001, 30002})


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        ("", set()),
        ("\n", set()),
        ("15000", {15000}),
        ("15000-15001,15006\n", {15000, 15001, 15006}),
        ("1-3, 7", {1, 2, 3, 7}),
        ("5-5", {5}),
    ],
)
def test_the_sysctl_text_parses(text: str, ports: set[int]) -> None:
    assert parse_ports(text) == ports


@pytest.mark.parametrize("text", ["abc", "10-", "-3", "9-2", "70000", "1,,x"])
def test_garbage_in_the_sysctl_is_an_error_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="ip_local_reserved_ports"):
        parse_ports(text)


def test_ports_render_as_ranges_the_way_the_kernel_prints_them() -> None:
    assert render_ports(OURS) == "15000-15001,15006,15020-15021,15090"
    assert render_ports([]) == ""
    assert parse_ports(render_ports(USERS | OURS)) == USERS | OURS


def test_the_proxy_ports_follow_the_capture_port_options() -> None:
    assert proxy_ports(Options()) == OURS
    moved = proxy_ports(Options(outbound_port=16001, inbound_port=16006))
    assert moved == {15000, 15020, 15021, 15090, 16001, 16006}


def test_a_reservation_merges_and_records_only_what_it_added() -> None:
    r = Reservation(OURS, USERS)
    assert r.after == USERS | OURS
    assert r.added == OURS - {15020}  # 15020 was the user's already: not ours to give back
    again = Reservation(OURS, r.after, r.added)  # a re-run of the same install
    assert not again.changes and again.added == r.added
    moved = proxy_ports(Options(outbound_port=16001))
    other = Reservation(moved, r.after, r.added)  # re-run with another outbound port
    assert other.after == USERS | moved  # 15001 given back, the user's 15020 kept
    assert other.added == moved - {15020}


def test_install_adds_the_ports_and_remove_gives_back_only_those(
    backend: FakeBackend, sysctls: MemorySysctls
) -> None:
    sysctls.value = USERS
    code, out, err = run("install")
    assert code == 0, err
    assert sysctls.value == USERS | OURS
    assert "net.ipv4.ip_local_reserved_ports: 80,15020,30000-30002 -> " in out
    code, out, _ = run("install")  # a re-run (init container restart) writes nothing
    assert code == 0 and len(sysctls.writes) == 1
    assert "ports are reserved already, nothing changed" in out
    code, out, _ = run("remove")
    assert code == 0 and sysctls.value == USERS  # 15020 was the user's: it stays
    code, out, _ = run("remove")
    assert code == 0 and sysctls.value == USERS and "left as is" in out


def test_failed_rules_put_the_old_value_back(backend: FakeBackend, sysctls: MemorySysctls) -> None:
    sysctls.value = USERS
    backend.fail_family = 4
    code, _, err = run("install")
    assert code == 3 and "rolled back" in err
    assert sysctls.value == USERS and sysctls.recorded == frozenset()
    assert sysctls.writes == [USERS | OURS, USERS]


def test_a_read_only_proc_sys_fails_before_any_rule_and_says_what_to_do(
    backend: FakeBackend, sysctls: MemorySysctls
) -> None:
    sysctls.fail_write = OSError(errno.EROFS, "Read-only file system")
    code, out, err = run("install")
    assert code == 3 and out == ""
    assert "cannot set net.ipv4.ip_local_reserved_ports" in err
    assert "securityContext.sysctls" in err and "--no-reserve-ports" in err
    assert backend.applied == []  # no rule was touched
    code, _, err = run("install", "--no-reserve-ports")
    assert code == 0, err
    assert backend.applied != [] and sysctls.value == frozenset()


def test_a_read_only_proc_sys_is_fine_when_the_pod_spec_reserved_them(
    backend: FakeBackend, sysctls: MemorySysctls
) -> None:
    sysctls.value = OURS
    sysctls.fail_write = OSError(errno.EROFS, "Read-only file system")
    assert run("install")[0] == 0


def test_bad_flags_change_nothing(backend: FakeBackend, sysctls: MemorySysctls) -> None:
    sysctls.value = USERS
    for argv in (["install", "--outbound-port", "x"], ["install", "--reserve-ports=maybe"]):
        code, _, _ = run(*argv)
        assert code == 2
    code, _, err = run("install", env={"MESH_RESERVE_PORTS": "perhaps"})
    assert code == 2 and "MESH_RESERVE_PORTS: 'perhaps'" in err
    assert sysctls.writes == [] and backend.applied == []


def test_verify_names_the_ports_missing_from_the_reservation(
    backend: FakeBackend, sysctls: MemorySysctls
) -> None:
    assert run("install")[0] == 0
    assert run("verify")[0] == 0
    sysctls.value = frozenset({15000, 15001})  # someone rewrote it after install
    code, out, _ = run("verify")
    assert code == 1
    assert "net.ipv4.ip_local_reserved_ports: ports 15006,15020-15021,15090 are not reserved" in out
    assert run("verify", "--no-reserve-ports")[0] == 0


def test_plan_shows_the_value_install_will_set_and_writes_nothing(
    sysctls: MemorySysctls,
) -> None:
    sysctls.value = frozenset({30000})
    code, out, _ = run("plan", "--outbound-port", "15009")
    assert code == 0 and sysctls.writes == []
    assert "# reserve 15000,15006,15009,15020-15021,15090 (the proxy's ports)" in out
    assert "# now: 30000\n" in out
    assert "# after install: 15000,15006,15009,15020-15021,15090,30000\n" in out
    code, out, _ = run("plan", "--no-reserve-ports")
    assert "# not changed: --reserve-ports is off" in out


def test_dump_shows_the_value_and_the_ports_an_app_could_take(
    monkeypatch: pytest.MonkeyPatch, sysctls: MemorySysctls
) -> None:
    monkeypatch.setattr(cli.dump, "read_sections", lambda: [])
    sysctls.value, sysctls.range_ = frozenset({15000, 15001}), (10000, 60999)
    code, out, _ = run("dump")
    assert code == 0
    assert "# net.ipv4.ip_local_reserved_ports (one reservation" in out
    assert "\n  15000-15001\n" in out
    assert "# net.ipv4.ip_local_port_range: 10000 60999" in out
    assert "proxy ports an outgoing connection could take: 15006,15020-15021,15090" in out
    code, out, _ = run("dump", "--format", "json")
    doc = json.loads(out)["reserved_ports"]
    assert doc["reserved"] == "15000-15001" and doc["port_range"] == [10000, 60999]
    assert doc["exposed"] == [15006, 15020, 15021, 15090]
