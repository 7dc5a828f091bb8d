"""Case tables for options: flags, env vars, precedence, lists, and every bad input."""

from __future__ import annotations

import argparse

import pytest

from interceptor.options import Options, UsageError, add_arguments, from_args


def parse(argv: list[str], env: dict[str, str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="mesh-interceptor")
    add_arguments(parser)
    return from_args(parser.parse_args(argv), env or {})


def test_defaults_without_flags_or_env() -> None:
    o = parse([])
    assert o == Options()
    assert (o.proxy_uid, o.proxy_gid, o.outbound_port, o.inbound_port) == (1337, 1337, 15001, 15006)
    assert o.include_outbound_cidrs == ("*",) and o.include_inbound_ports == ("*",)
    assert (o.backend, o.ipv6, o.validate) == ("auto", "auto", False)


GOOD = [
    # (argv, env, field, expected)
    (["--proxy-uid", "2000"], {}, "proxy_uid", 2000),
    ([], {"MESH_PROXY_UID": "2001"}, "proxy_uid", 2001),
    (["--proxy-uid", "0"], {}, "proxy_uid", 0),
    (["--proxy-gid", "3000"], {}, "proxy_gid", 3000),
    ([], {"MESH_PROXY_GID": " 3001 "}, "proxy_gid", 3001),
    (["--outbound-port", "16001"], {}, "outbound_port", 16001),
    ([], {"MESH_OUTBOUND_PORT": "16002"}, "outbound_port", 16002),
    (["--inbound-port", "16006"], {}, "inbound_port", 16006),
    ([], {"MESH_INBOUND_PORT": "65535"}, "inbound_port", 65535),
    (["--exclude-outbound-ports", "22,3306"], {}, "exclude_outbound_ports", (22, 3306)),
    ([], {"MESH_EXCLUDE_OUTBOUND_PORTS": " 22 , 53,22,"}, "exclude_outbound_ports", (22, 53)),
    (["--exclude-outbound-ports", ""], {}, "exclude_outbound_ports", ()),
    (["--exclude-inbound-ports", "8443"], {}, "exclude_inbound_ports", (8443,)),
    ([], {"MESH_EXCLUDE_INBOUND_PORTS": "8443,9000"}, "exclude_inbound_ports", (8443, 9000)),
    (["--include-inbound-ports", "8080,9090"], {}, "include_inbound_ports", ("8080", "9090")),
    ([], {"MESH_INCLUDE_INBOUND_PORTS": "*"}, "include_inbound_ports", ("*",)),
    ([], {"MESH_INCLUDE_INBOUND_PORTS": ""}, "include_inbound_ports", ()),
    (["--include-inbound-ports", " * "], {}, "include_inbound_ports", ("*",)),
    (
        ["--include-outbound-cidrs", "10.0.0.0/8,FD77::/16"],
        {},
        "include_outbound_cidrs",
        ("10.0.0.0/8", "fd77::/16"),
    ),
    ([], {"MESH_INCLUDE_OUTBOUND_CIDRS": ""}, "include_outbound_cidrs", ()),
    (  # host bits are masked, bare addresses become /32 and /128, duplicates go
        ["--exclude-outbound-cidrs", "10.1.2.3/8,10.0.0.0/8,192.0.2.1,2001:db8::1"],
        {},
        "exclude_outbound_cidrs",
        ("10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128"),
    ),
    (
        [],
        {"MESH_EXCLUDE_OUTBOUND_CIDRS": "10.96.0.0/12"},
        "exclude_outbound_cidrs",
        ("10.96.0.0/12",),
    ),
    (["--backend", "nft"], {}, "backend", "nft"),
    ([], {"MESH_BACKEND": "legacy"}, "backend", "legacy"),
    (["--backend", "IPTC"], {}, "backend", "iptc"),
    (["--ipv6", "on"], {}, "ipv6", "on"),
    ([], {"MESH_IPV6": "off"}, "ipv6", "off"),
    (["--validate"], {}, "validate", True),
    ([], {"MESH_VALIDATE": "1"}, "validate", True),
    ([], {"MESH_VALIDATE": "true"}, "validate", True),
    ([], {"MESH_VALIDATE": "0"}, "validate", False),
    ([], {"MESH_VALIDATE": ""}, "validate", False),
    # precedence: the flag wins over the env var
    (["--proxy-uid", "5"], {"MESH_PROXY_UID": "6"}, "proxy_uid", 5),
    (
        ["--exclude-outbound-ports", "1"],
        {"MESH_EXCLUDE_OUTBOUND_PORTS": "2,3"},
        "exclude_outbound_ports",
        (1,),
    ),
    (["--no-validate"], {"MESH_VALIDATE": "1"}, "validate", False),
    (["--ipv6", "auto"], {"MESH_IPV6": "on"}, "ipv6", "auto"),
    (
        ["--include-inbound-ports", "*"],
        {"MESH_INCLUDE_INBOUND_PORTS": "80"},
        "include_inbound_ports",
        ("*",),
    ),
    # an env var for another option does not leak into this one
    ([], {"MESH_PROXY_GID": "7"}, "proxy_uid", 1337),
    # unrelated env vars are ignored
    ([], {"PROXY_UID": "9", "MESH_PROXY_UIDX": "9"}, "proxy_uid", 1337),
]


@pytest.mark.parametrize(("argv", "env", "field", "expected"), GOOD)
def test_good_values(argv: list[str], env: dict[str, str], field: str, expected: object) -> None:
    assert getattr(parse(argv, env), field) == expected


def test_only_given_options_change() -> None:
    o = parse(["--proxy-uid", "2000"], {"MESH_INBOUND_PORT": "16006"})
    assert o == Options(proxy_uid=2000, inbound_port=16006)


BAD = [
    # (argv, env, must appear in the message: the bad value and where it came from)
    (["--proxy-uid", "-1"], {}, ["-1", "--proxy-uid"]),
    (["--proxy-uid", "abc"], {}, ["abc", "--proxy-uid"]),
    (["--proxy-uid", "4294967295"], {}, ["4294967295", "--proxy-uid"]),
    ([], {"MESH_PROXY_UID": "1.5"}, ["1.5", "MESH_PROXY_UID"]),
    ([], {"MESH_PROXY_UID": ""}, ["''", "MESH_PROXY_UID"]),
    (["--proxy-gid", "-7"], {}, ["-7", "--proxy-gid"]),
    ([], {"MESH_PROXY_GID": "root"}, ["root", "MESH_PROXY_GID"]),
    (["--outbound-port", "0"], {}, ["'0'", "--outbound-port"]),
    (["--outbound-port", "70000"], {}, ["70000", "--outbound-port"]),
    ([], {"MESH_OUTBOUND_PORT": "http"}, ["http", "MESH_OUTBOUND_PORT"]),
    (["--inbound-port", "+80"], {}, ["+80", "--inbound-port"]),
    ([], {"MESH_INBOUND_PORT": "65536"}, ["65536", "MESH_INBOUND_PORT"]),
    (["--exclude-outbound-ports", "22,0"], {}, ["'0'", "--exclude-outbound-ports"]),
    ([], {"MESH_EXCLUDE_OUTBOUND_PORTS": "22,ssh"}, ["ssh", "MESH_EXCLUDE_OUTBOUND_PORTS"]),
    (["--exclude-outbound-ports", "1000:2000"], {}, ["1000:2000", "--exclude-outbound-ports"]),
    (["--exclude-inbound-ports", "70000"], {}, ["70000", "--exclude-inbound-ports"]),
    ([], {"MESH_EXCLUDE_INBOUND_PORTS": "-5"}, ["-5", "MESH_EXCLUDE_INBOUND_PORTS"]),
    (["--include-inbound-ports", "0"], {}, ["'0'", "--include-inbound-ports"]),
    (["--include-inbound-ports", "80,abc"], {}, ["abc", "--include-inbound-ports"]),
    (["--include-inbound-ports", "*,80"], {}, ["*,80", "--include-inbound-ports"]),
    ([], {"MESH_INCLUDE_INBOUND_PORTS": "99999"}, ["99999", "MESH_INCLUDE_INBOUND_PORTS"]),
    (["--include-outbound-cidrs", "10.0.0.0/33"], {}, ["10.0.0.0/33", "--include-outbound-cidrs"]),
    (["--include-outbound-cidrs", "*,10.0.0.0/8"], {}, ["*,10.0.0.0/8", "--include-outbound"]),
    ([], {"MESH_INCLUDE_OUTBOUND_CIDRS": "fd77::/129"}, ["fd77::/129", "MESH_INCLUDE_OUTBOUND"]),
    (["--exclude-outbound-cidrs", "300.0.0.0/8"], {}, ["300.0.0.0/8", "--exclude-outbound-cidrs"]),
    (["--exclude-outbound-cidrs", "*"], {}, ["'*'", "--exclude-outbound-cidrs"]),
    ([], {"MESH_EXCLUDE_OUTBOUND_CIDRS": "10.0.0.0/8,example.com"}, ["example.com", "MESH_EX"]),
    (["--backend", "ebpf"], {}, ["ebpf", "--backend"]),
    ([], {"MESH_BACKEND": "iptables"}, ["iptables", "MESH_BACKEND"]),
    (["--ipv6", "yes"], {}, ["yes", "--ipv6"]),
    ([], {"MESH_IPV6": "dual"}, ["dual", "MESH_IPV6"]),
    ([], {"MESH_VALIDATE": "maybe"}, ["maybe", "MESH_VALIDATE"]),
    # conflicts between options
    (["--outbound-port", "15006"], {}, ["15006", "--inbound-port", "--outbound-port"]),
    (["--inbound-port", "16000"], {"MESH_OUTBOUND_PORT": "16000"}, ["16000", "MESH_OUTBOUND_PORT"]),
    (["--inbound-port", "15020"], {}, ["15020", "--inbound-port"]),
    (["--outbound-port", "15000"], {}, ["15000", "--outbound-port"]),
    (
        ["--include-inbound-ports", "8080", "--exclude-inbound-ports", "8080"],
        {},
        ["8080", "--include-inbound-ports", "--exclude-inbound-ports"],
    ),
    (
        ["--include-inbound-ports", "8080"],
        {"MESH_EXCLUDE_INBOUND_PORTS": "9,8080"},
        ["8080", "MESH_EXCLUDE_INBOUND_PORTS"],
    ),
    (["--include-inbound-ports", "15090"], {}, ["15090", "--include-inbound-ports"]),
    (
        ["--include-outbound-cidrs", "10.0.0.0/8", "--exclude-outbound-cidrs", "10.0.0.0/8"],
        {},
        ["10.0.0.0/8", "equals", "--exclude-outbound-cidrs"],
    ),
    (
        ["--include-outbound-cidrs", "10.1.0.0/16"],
        {"MESH_EXCLUDE_OUTBOUND_CIDRS": "10.0.0.0/8"},
        ["10.1.0.0/16", "10.0.0.0/8", "MESH_EXCLUDE_OUTBOUND_CIDRS"],
    ),
    (
        ["--include-outbound-cidrs", "fd77::/16", "--exclude-outbound-cidrs", "fd77::/16"],
        {},
        ["fd77::/16"],
    ),
]


@pytest.mark.parametrize(("argv", "env", "needles"), BAD)
def test_bad_values(argv: list[str], env: dict[str, str], needles: list[str]) -> None:
    with pytest.raises(UsageError) as err:
        parse(argv, env)
    for needle in needles:
        assert needle in str(err.value)
    assert err.value.exit_code == 2


def test_carve_out_inside_included_range_is_fine() -> None:
    o = parse(["--include-outbound-cidrs", "10.0.0.0/8", "--exclude-outbound-cidrs", "10.1.0.0/16"])
    assert (o.include_outbound_cidrs, o.exclude_outbound_cidrs) == (
        ("10.0.0.0/8",),
        ("10.1.0.0/16",),
    )


def test_same_range_in_other_family_does_not_conflict() -> None:
    o = parse(["--include-outbound-cidrs", "10.0.0.0/8", "--exclude-outbound-cidrs", "::/0"])
    assert o.exclude_outbound_cidrs == ("::/0",)


DIRECT_BAD = [
    ({"proxy_uid": -1}, "-1"),
    ({"proxy_gid": 2**32}, "4294967296"),
    ({"outbound_port": 0}, "0"),
    ({"inbound_port": True}, "True"),
    ({"exclude_outbound_ports": (22, 70000)}, "70000"),
    ({"exclude_outbound_cidrs": ("nope",)}, "nope"),
    ({"include_outbound_cidrs": ("*", "10.0.0.0/8")}, "10.0.0.0/8"),
    ({"include_inbound_ports": (8080,)}, "8080"),  # ports are strings in this field
    ({"include_inbound_ports": ("080",)}, "080"),
    ({"backend": "pf"}, "pf"),
    ({"ipv6": "both"}, "both"),
    ({"inbound_port": 15001}, "15001"),
]


@pytest.mark.parametrize(("kwargs", "needle"), DIRECT_BAD)
def test_options_built_directly_are_validated(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(UsageError) as err:
        Options(**kwargs)  # type: ignore[arg-type]
    assert needle in str(err.value)
    assert "--" in str(err.value)  # names the flag, since there is no env var to blame


def test_every_field_has_a_flag_and_help_names_env_var() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = parser.format_help()
    for field in Options.__dataclass_fields__:
        assert "--" + field.replace("_", "-") in text
        assert "MESH_" + field.upper() in text


def test_from_args_tolerates_namespace_without_our_attributes() -> None:
    # A subcommand parser that added no flags still gets env vars and defaults.
    o = from_args(argparse.Namespace(), {"MESH_BACKEND": "nft"})
    assert o == Options(backend="nft")
