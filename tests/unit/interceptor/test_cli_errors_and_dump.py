"""CLI and dump formatting without a kernel: argument errors, exit codes, dump output."""

from __future__ import annotations

import json

import pytest

from interceptor import dump
from interceptor.backends.base import LiveTable
from interceptor.backends.saveparse import parse_save
from interceptor.errors import BackendError
from interceptor.model import Family
from tests.support.interceptor_cli import run

SAVE = """*nat
:OUTPUT ACCEPT [9:540]
:MESH_OUTPUT - [0:0]
[4:240] -A OUTPUT -p tcp -m comment --comment "mesh: out" -j MESH_OUTPUT
[1:60] -A OUTPUT -p udp -j RETURN
[3:180] -A MESH_OUTPUT -j RETURN
COMMIT
"""


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["install", "--outbound-port", "abc"], {}, "--outbound-port: 'abc'"),
        (["verify"], {"MESH_PROXY_UID": "root"}, "MESH_PROXY_UID: 'root'"),
        (["remove", "--backend", "xtables"], {}, "'xtables'"),
        (["dump", "--format", "yaml"], {}, "'yaml'"),
        (["frobnicate"], {}, "frobnicate"),
        ([], {}, "required"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv: list[str], env: dict[str, str], needle: str) -> None:
    code, out, err = run(*argv, env=env)
    assert code == 2 and out == ""
    assert err.startswith("mesh-interceptor: error: ") and needle in err
    assert err.count("\n") == 1


def test_flag_beats_env() -> None:
    code, out, _ = run(
        "plan", "--ipv6", "off", "--outbound-port", "15009", env={"MESH_OUTBOUND_PORT": "abc"}
    )
    assert code == 0 and "--to-ports 15009" in out and "IPv6" not in out


def _reader(variant: str, family: Family, table: str) -> LiveTable:
    if variant == "nft":
        raise BackendError("iptables-nft-save failed: no nf_tables")
    if family == 6:
        return LiveTable(6, table, (), ())
    return parse_save(SAVE, family)


def test_dump_text_marks_ours_and_shows_counters() -> None:
    text = dump.as_text(dump.read_sections(_reader))
    lines = text.splitlines()
    assert "# legacy IPv4 nat" in lines
    assert '* [4:240] -A OUTPUT -p tcp -m comment --comment "mesh: out" -j MESH_OUTPUT' in lines
    assert "  [1:60] -A OUTPUT -p udp -j RETURN" in lines
    assert "* [3:180] -A MESH_OUTPUT -j RETURN" in lines
    assert "  :OUTPUT ACCEPT [9:540]" in lines
    assert "# legacy IPv6 nat: no table" in lines
    assert "# nft IPv4 nat: unavailable (iptables-nft-save failed: no nf_tables)" in lines


def test_dump_json() -> None:
    doc = json.loads(dump.as_json(dump.read_sections(_reader)))
    first = doc["tables"][0]
    assert (first["backend"], first["family"], first["exists"]) == ("legacy", 4, True)
    assert [(r["chain"], r["packets"], r["ours"]) for r in first["rules"]] == [
        ("OUTPUT", 4, True),
        ("OUTPUT", 1, False),
        ("MESH_OUTPUT", 3, True),
    ]
    assert doc["tables"][1]["exists"] is False
    assert doc["tables"][2]["error"].startswith("iptables-nft-save failed")
