"""``mesh-proxy run`` options: one frozen dataclass and the pure parsers behind the flags.

Every flag falls back to an env var ``MESH_<FLAG>`` (``--workers`` ↔ ``MESH_WORKERS``)
so a pod spec can configure the sidecar with ``env:``; a bad value is reported with
the flag or variable it came from and exits 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.core.errors import UsageError
from proxy.http.codec import CODECS, codec_named
from proxy.l4 import detect

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(raw: str) -> float:
    """``100ms``, ``5s``, ``1m``, ``1h`` or bare seconds → seconds."""
    m = _DURATION.match(raw.strip())
    if m is None:
        raise UsageError(f"{raw!r} is not a duration (e.g. 100ms, 5s, 1m)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_port(raw: str) -> int:
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise UsageError(f"{raw!r} is not a port (1-65535)")
    return int(raw)


def parse_ports(raw: str) -> frozenset[int]:
    return frozenset(parse_port(p) for p in raw.split(",") if p.strip())


def parse_count(raw: str) -> int:
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 256:
        raise UsageError(f"{raw!r} is not a worker count (1-256)")
    return int(raw)


def parse_id(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) > 2**31 - 1:
        raise UsageError(f"{raw!r} is not a numeric uid/gid")
    return int(raw)


def parse_rules_file(raw: str) -> str:
    """An absolute path (the init container's copy of its rules); it need not exist yet."""
    if not raw.startswith("/") or "\0" in raw:
        raise UsageError(f"{raw!r} is not an absolute file path")
    return raw


_SIZE = re.compile(r"^(\d+)\s*(Ki|Mi|Gi)?B?$")
_SIZE_UNIT = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def parse_size(raw: str) -> int:
    """Bytes: ``1048576``, ``64Mi``, ``64MiB``, ``512Ki``, ``1Gi`` (binary units)."""
    m = _SIZE.match(raw.strip())
    if m is None or int(m.group(1)) == 0:
        raise UsageError(f"{raw!r} is not a size (bytes, or a number with Ki, Mi, Gi)")
    return int(m.group(1)) * _SIZE_UNIT[m.group(2)]


def parse_codec(raw: str) -> str:
    """``auto`` or a registered codec name (``proxy.http.codec.CODECS``), as given."""
    name = raw.strip()
    try:
        codec_named(name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return name


def resolve_codec(name: str) -> str:
    """The registered name ``name`` stands for (``auto``: the one ``codec_named`` picks),
    so logs and ``/config_dump`` say which codec really runs."""
    factory = codec_named(name)
    return next(known for known, made in sorted(CODECS.items()) if made is factory)


@dataclass(frozen=True)
class RunOptions:
    config: str | None = None
    workers: int = 1
    uid: int | None = None
    gid: int | None = None
    outbound_port: int = 15001
    inbound_port: int = 15006
    admin_port: int = 15000
    telemetry_port: int = 15020
    protocol_detect_timeout: float = detect.DEFAULT_DETECT_TIMEOUT
    opaque_ports: frozenset[int] = detect.DEFAULT_OPAQUE_PORTS
    connect_timeout: float = 10.0
    idle_timeout: float = 3600.0
    drain_timeout: float = 5.0  # Istio's terminationDrainDuration
    request_headers_timeout: float = 10.0  # first to last byte of a request head
    stream_idle_timeout: float = 300.0  # Envoy's: a request body (or response) stalled
    workload: str = "unknown"
    access_log: bool = True
    rules_file: str | None = None  # served on GET /rules (DESIGN.md §6)
    http_codec: str = "auto"  # as asked; ``resolve_codec`` names the one that runs
    admin_max_body: int = 64 * 1024 * 1024  # PUT /config bodies (proxy.admin.admin_port)

    def __post_init__(self) -> None:
        ports = {
            "--outbound-port": self.outbound_port,
            "--inbound-port": self.inbound_port,
            "--admin-port": self.admin_port,
            "--telemetry-port": self.telemetry_port,
        }
        seen: dict[int, str] = {}
        for flag, port in ports.items():
            if port in seen:
                raise UsageError(f"{flag} {port} is the same port as {seen[port]}")
            seen[port] = flag
        if (self.uid is None) != (self.gid is None):
            raise UsageError("--uid and --gid go together (got only one)")
        for flag, value in (
            ("--request-headers-timeout", self.request_headers_timeout),
            ("--stream-idle-timeout", self.stream_idle_timeout),
        ):
            if value <= 0:
                raise UsageError(f"{flag} {value}s: must be more than 0")
        if self.protocol_detect_timeout > 10:
            raise UsageError(
                f"--protocol-detect-timeout {self.protocol_detect_timeout}s is too long (max 10s)"
            )

    @property
    def capture_ports(self) -> frozenset[int]:
        return frozenset({self.outbound_port, self.inbound_port})
