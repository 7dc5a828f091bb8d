"""Interceptor options: one frozen, validated value built from flags, env vars and defaults.

Every option has a flag ``--x-y`` and an env var ``MESH_X_Y``; the flag wins, then the env
var, then the default. Raw strings from both sources go through the same parsers, and every
problem is a ``UsageError`` naming the bad value and the flag or env var it came from, so the
CLI can exit 2 before anything is changed.

List options are comma-separated; blanks around items and empty items are ignored, and
duplicates are dropped (first one kept). An env var that is set counts even when empty, so
``MESH_INCLUDE_INBOUND_PORTS=""`` means "capture no inbound port", like Istio's ``-b ""``.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeGuard

from interceptor.errors import InterceptorError

ANY = "*"  # in an include list: everything
# The proxy's own inbound ports, never captured: admin (127.0.0.1 only, excluded anyway so a
# pod-IP connection is refused rather than looped), telemetry/health, and the two ports Istio
# users probe (health 15021, Prometheus 15090).
RESERVED_INBOUND_PORTS = (15000, 15020, 15021, 15090)
BACKENDS = ("auto", "iptc", "legacy", "nft")
IPV6_MODES = ("auto", "on", "off")
MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel, never a real owner
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_DIGITS = re.compile(r"[0-9]+")


class UsageError(InterceptorError):
    """A bad flag, env var or combination; the message names the bad value (CLI exits 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Options:
    """What ``mesh-interceptor`` installs. Validated on construction (see ``from_args``).

    ``include_inbound_ports`` is ``("*",)`` or port numbers as decimal strings (``("8080",)``);
    ``()`` captures no inbound port. ``include_outbound_cidrs`` is ``("*",)`` or CIDRs of
    either family; ``()`` captures no outbound traffic. ``RESERVED_INBOUND_PORTS`` are
    always excluded from inbound capture by the plan, whatever ``exclude_inbound_ports`` says.
    """

    proxy_uid: int = 1337
    proxy_gid: int = 1337
    outbound_port: int = 15001
    inbound_port: int = 15006
    include_outbound_cidrs: tuple[str, ...] = (ANY,)
    exclude_outbound_cidrs: tuple[str, ...] = ()
    exclude_outbound_ports: tuple[int, ...] = ()
    include_inbound_ports: tuple[str, ...] = (ANY,)
    exclude_inbound_ports: tuple[int, ...] = ()
    backend: str = "auto"
    ipv6: str = "auto"
    validate: bool = False
    # Add the proxy's ports to net.ipv4.ip_local_reserved_ports (see interceptor.reserved).
    reserve_ports: bool = True
    # Where install leaves a copy of what it applied (the proxy serves it on GET /rules)
    # and remove deletes it; not part of the plan.
    rules_file: str | None = None

    def __post_init__(self) -> None:
        # Options built directly (tests, other code) get the same checks as parsed ones.
        _validate({f.name: getattr(self, f.name) for f in fields(self)}, flag_of)


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_of(field: str) -> str:
    return "MESH_" + field.upper()


# --- parsers: raw string + where it came from -> typed value -------------------------------


def _items(raw: str) -> list[str]:
    seen: list[str] = []
    for item in (i.strip() for i in raw.split(",")):
        if item and item not in seen:
            seen.append(item)
    return seen


def parse_port(raw: str, origin: str) -> int:
    text = raw.strip()
    # The length first: int() refuses strings past 4,300 digits with a ValueError.
    if not _DIGITS.fullmatch(text) or len(text.lstrip("0")) > 5 or not 1 <= int(text) <= 65535:
        raise UsageError(f"{origin}: {raw!r} is not a TCP port (a number 1..65535)")
    return int(text)


def parse_id(raw: str, origin: str) -> int:
    text = raw.strip()
    if not _DIGITS.fullmatch(text) or len(text.lstrip("0")) > 10 or int(text) > MAX_ID:
        raise UsageError(f"{origin}: {raw!r} is not a uid/gid (a number 0..{MAX_ID})")
    return int(text)


def parse_cidr(raw: str, origin: str) -> str:
    """A CIDR or a bare address (a /32 or /128), normalised; host bits are masked off."""
    try:
        return str(ipaddress.ip_network(raw.strip(), strict=False))
    except ValueError:
        raise UsageError(f"{origin}: {raw!r} is not an IPv4 or IPv6 CIDR") from None


def parse_ports(raw: str, origin: str) -> tuple[int, ...]:
    return tuple(dict.fromkeys(parse_port(i, origin) for i in _items(raw)))


def parse_cidrs(raw: str, origin: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(parse_cidr(i, origin) for i in _items(raw)))


def _with_any(items: list[str], origin: str, one: Callable[[str, str], object]) -> tuple[str, ...]:
    if ANY in items:
        if len(items) > 1:
            raise UsageError(f"{origin}: {','.join(items)!r} mixes {ANY!r} with other values")
        return (ANY,)
    return tuple(dict.fromkeys(str(one(i, origin)) for i in items))


def parse_include_cidrs(raw: str, origin: str) -> tuple[str, ...]:
    return _with_any(_items(raw), origin, parse_cidr)


def parse_include_ports(raw: str, origin: str) -> tuple[str, ...]:
    return _with_any(_items(raw), origin, parse_port)


def parse_bool(raw: str, origin: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise UsageError(f"{origin}: {raw!r} is not a boolean (1/true/yes/on or 0/false/no/off)")


def parse_rules_file(raw: str, origin: str) -> str | None:
    """An absolute path; empty (an env var set to "") means no copy."""
    text = raw.strip()
    if not text:
        return None
    if not text.startswith("/") or "\0" in text or text.endswith("/"):
        raise UsageError(f"{origin}: {raw!r} is not an absolute file path")
    return text


def _choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(raw: str, origin: str) -> str:
        text = raw.strip().lower()
        if text not in choices:
            raise UsageError(f"{origin}: {raw!r} is not one of {'|'.join(choices)}")
        return text

    return parse


@dataclass(frozen=True)
class _Spec:
    field: str
    parse: Callable[[str, str], object]
    metavar: str
    help: str


_SPECS = (
    _Spec("proxy_uid", parse_id, "UID", "uid the proxy runs as; its traffic is never captured"),
    _Spec("proxy_gid", parse_id, "GID", "gid the proxy runs as; its traffic is never captured"),
    _Spec("outbound_port", parse_port, "PORT", "proxy port outbound TCP is redirected to"),
    _Spec("inbound_port", parse_port, "PORT", "proxy port inbound TCP is redirected to"),
    _Spec(
        "include_outbound_cidrs",
        parse_include_cidrs,
        "CIDRS",
        "outbound destinations to capture: '*' or a comma list of CIDRs (either family)",
    ),
    _Spec(
        "exclude_outbound_cidrs",
        parse_cidrs,
        "CIDRS",
        "outbound destinations never captured (comma list of CIDRs)",
    ),
    _Spec(
        "exclude_outbound_ports",
        parse_ports,
        "PORTS",
        "outbound destination ports never captured (comma list)",
    ),
    _Spec(
        "include_inbound_ports",
        parse_include_ports,
        "PORTS",
        "inbound ports to capture: '*' or a comma list ('' captures none)",
    ),
    _Spec(
        "exclude_inbound_ports",
        parse_ports,
        "PORTS",
        "inbound ports never captured, besides 15000,15020,15021,15090 (comma list)",
    ),
    _Spec("backend", _choice(BACKENDS), "|".join(BACKENDS), "how rules are applied"),
    _Spec(
        "ipv6",
        _choice(IPV6_MODES),
        "|".join(IPV6_MODES),
        "IPv6 rules: auto = when the pod has a global IPv6 address",
    ),
    _Spec("validate", parse_bool, "", "after install, prove a connection is redirected"),
    _Spec(
        "reserve_ports",
        parse_bool,
        "",
        "add the proxy's ports to net.ipv4.ip_local_reserved_ports, so no outgoing "
        "connection is handed one of them",
    ),
    _Spec(
        "rules_file",
        parse_rules_file,
        "FILE",
        "install writes a copy of the applied rules here (JSON), remove deletes it",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every option flag. Defaults stay ``None`` so ``from_args`` can see what was given."""
    defaults = Options()
    for spec in _SPECS:
        default = getattr(defaults, spec.field)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{spec.help} (env {env_of(spec.field)}; default {shown!r})"
        if isinstance(default, bool):
            parser.add_argument(
                flag_of(spec.field),
                dest=spec.field,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag_of(spec.field),
                dest=spec.field,
                default=None,
                metavar=spec.metavar,
                help=help_text,
            )


def from_args(ns: argparse.Namespace, env: Mapping[str, str]) -> Options:
    """Options from parsed flags, else ``MESH_*`` env vars, else defaults; all validated."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for spec in _SPECS:
        raw = getattr(ns, spec.field, None)
        origin = flag_of(spec.field)
        if raw is None and env_of(spec.field) in env:
            raw, origin = env[env_of(spec.field)], env_of(spec.field)
        if raw is None:
            continue
        values[spec.field] = raw if isinstance(raw, bool) else spec.parse(str(raw), origin)
        origins[spec.field] = origin
    defaults = Options()
    merged = {f.name: values.get(f.name, getattr(defaults, f.name)) for f in fields(Options)}
    _validate(merged, lambda f: origins.get(f, flag_of(f)))
    return Options(**values)


# --- validation of typed values, shared by from_args and Options.__post_init__ -------------


def _validate(v: Mapping[str, Any], origin: Callable[[str], str]) -> None:
    def named(field: str) -> str:
        return f"{origin(field)} {_show(v[field])}"

    for field in ("proxy_uid", "proxy_gid"):
        _typed(v, field, origin, lambda x: _is_int(x) and 0 <= x <= MAX_ID, parse_id)
    for field in ("outbound_port", "inbound_port"):
        _typed(v, field, origin, _is_port, parse_port)
    for field in ("exclude_outbound_ports", "exclude_inbound_ports"):
        _each(v, field, origin, _is_port, parse_port)
    _each(v, "exclude_outbound_cidrs", origin, _is_cidr, parse_cidr)
    _each(v, "include_outbound_cidrs", origin, lambda x: x == ANY or _is_cidr(x), parse_cidr)
    _each(
        v,
        "include_inbound_ports",
        origin,
        lambda x: x == ANY or (isinstance(x, str) and _is_port_text(x)),
        parse_port,
    )
    for field in ("include_outbound_cidrs", "include_inbound_ports"):
        if ANY in v[field] and len(v[field]) > 1:
            raise UsageError(f"{named(field)} mixes {ANY!r} with other values")
    _typed(v, "backend", origin, lambda x: x in BACKENDS, _choice(BACKENDS))
    _typed(v, "ipv6", origin, lambda x: x in IPV6_MODES, _choice(IPV6_MODES))
    for field in ("validate", "reserve_ports"):
        if not isinstance(v[field], bool):
            raise UsageError(f"{named(field)} is not a boolean")
    path = v["rules_file"]
    if path is not None and (
        not isinstance(path, str) or parse_rules_file(path, origin("rules_file")) != path
    ):
        raise UsageError(f"{origin('rules_file')}: {path!r} is not an absolute file path")

    if v["outbound_port"] == v["inbound_port"]:
        raise UsageError(
            f"{named('inbound_port')} equals {named('outbound_port')}: "
            "the proxy needs two different capture ports"
        )
    for field in ("outbound_port", "inbound_port"):
        if v[field] in RESERVED_INBOUND_PORTS:
            raise UsageError(
                f"{named(field)} is one of the proxy's own ports {_show(RESERVED_INBOUND_PORTS)}"
            )
    included = [int(p) for p in v["include_inbound_ports"] if p != ANY]
    for port in included:
        if port in RESERVED_INBOUND_PORTS:
            raise UsageError(
                f"{origin('include_inbound_ports')}: port {port} is one of the "
                f"proxy's own ports {_show(RESERVED_INBOUND_PORTS)}, never captured"
            )
        if port in v["exclude_inbound_ports"]:
            raise UsageError(
                f"port {port} is both in {origin('include_inbound_ports')} and "
                f"in {origin('exclude_inbound_ports')}"
            )
    _check_cidr_conflicts(
        v["include_outbound_cidrs"],
        v["exclude_outbound_cidrs"],
        origin("include_outbound_cidrs"),
        origin("exclude_outbound_cidrs"),
    )


def _check_cidr_conflicts(
    include: Iterable[str], exclude: Iterable[str], inc_origin: str, exc_origin: str
) -> None:
    """An included range inside an excluded one would never be captured: say so."""
    for inc in (ipaddress.ip_network(c, strict=False) for c in include if c != ANY):
        for exc in (ipaddress.ip_network(c, strict=False) for c in exclude):
            if inc.version == exc.version and inc.subnet_of(exc):  # type: ignore[arg-type]
                how = "equals" if inc == exc else "lies inside"
                raise UsageError(
                    f"{inc} in {inc_origin} {how} {exc} in {exc_origin}, "
                    "so it would never be captured"
                )


def _typed(
    v: Mapping[str, Any],
    field: str,
    origin: Callable[[str], str],
    ok: Callable[[Any], bool],
    parse: Callable[[str, str], object],
) -> None:
    if not ok(v[field]):
        parse(str(v[field]), origin(field))  # raises with the parser's wording when it can
        raise UsageError(f"{origin(field)}: {v[field]!r} is not a valid value")


def _each(
    v: Mapping[str, Any],
    field: str,
    origin: Callable[[str], str],
    ok: Callable[[Any], bool],
    parse: Callable[[str, str], object],
) -> None:
    if not isinstance(v[field], tuple):
        raise UsageError(f"{origin(field)}: {v[field]!r} is not a tuple")
    for item in v[field]:
        if not ok(item):
            parse(str(item), origin(field))
            raise UsageError(f"{origin(field)}: {item!r} is not a valid value")


def _is_int(x: object) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_port(x: object) -> bool:
    return _is_int(x) and 1 <= x <= 65535


def _is_port_text(x: str) -> bool:
    return bool(_DIGITS.fullmatch(x)) and 1 <= int(x) <= 65535 and str(int(x)) == x


def _is_cidr(x: object) -> bool:
    if not isinstance(x, str):
        return False
    try:
        ipaddress.ip_network(x, strict=False)
    except ValueError:
        return False
    return True


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "''"
    return str(value)
