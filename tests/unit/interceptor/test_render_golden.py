"""Rendering: quoting and golden plans (``MESH_UPDATE_GOLDEN=1`` rewrites them). That the
real ``iptables-restore`` accepts the same plans is in
tests/netns/interceptor/test_kernel_accepts_rendered_rules.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from interceptor.model import Match, Rule, RuleSet
from interceptor.options import Options
from interceptor.plan import build_plan
from interceptor.render import quote, render_plan, render_restore
from tests.support.plan_cases import CASES, V4_POD

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "interceptor"


# --- quoting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("RETURN", "RETURN"),
        ("127.0.0.1/32", "127.0.0.1/32"),
        ("mesh: a b", '"mesh: a b"'),
        ("tab\there", '"tab\there"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("it's", '"it\'s"'),
        ("", '""'),
    ],
)
def test_quote(arg: str, expected: str) -> None:
    assert quote(arg) == expected


def test_quote_refuses_newlines() -> None:
    with pytest.raises(ValueError, match="a\\\\nb"):
        quote("a\nb")


def test_render_restore_shape() -> None:
    rs = RuleSet(
        4,
        "nat",
        ("MESH_T",),
        (
            Rule(
                "MESH_T", (Match("-p", "tcp"), Match("--dport", "80")), "RETURN", comment="why so"
            ),
            Rule("OUTPUT", (), "MESH_T"),
        ),
    )
    assert render_restore(rs) == (
        "*nat\n"
        ":MESH_T - [0:0]\n"
        '-A MESH_T -p tcp -m tcp --dport 80 -m comment --comment "why so" -j RETURN\n'
        "-A OUTPUT -j MESH_T\n"
        "COMMIT\n"
    )


def test_render_plan_headers_per_family() -> None:
    text = render_plan(build_plan(Options(ipv6="on"), V4_POD))
    headers = [line for line in text.splitlines() if line.startswith("# ")]
    assert headers == ["# IPv4 (iptables-restore)", "# IPv6 (ip6tables-restore)"]
    assert text.count("COMMIT\n") == 2 and text.count("*nat\n") == 2


# --- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    options, pod = CASES[case]
    text = render_plan(build_plan(options, pod))
    assert text == render_plan(build_plan(options, pod)), "rendering must be deterministic"
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("MESH_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with MESH_UPDATE_GOLDEN=1 and review it"
    assert path.read_text() == text


def test_no_stale_golden_files() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(CASES)
