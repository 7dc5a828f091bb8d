"""``install --validate``: prove that a connection really lands on the outbound capture port.

Like Istio's ``--run-validation``, but with a destination that is routable and not
local: a child process running as an ordinary uid (``nobody``) dials a documentation
address (192.0.2.1 / 2001:db8::1, RFC 5737 / RFC 3849, or the first host of an
included CIDR) on port 15002, and a temporary listener on the loopback end of the
outbound port must accept it with that exact SO_ORIGINAL_DST. When the redirect works
the SYN never leaves the pod; when it is broken the SYN goes to an address nobody
owns. The listener and the child are always gone when ``validate`` returns. Inbound
capture needs a packet arriving from outside the pod, so it is not probed here. The
original destination is read with the proxy's own decoder (``proxy.l4.origdst``), so
the probe proves the very call the proxy will make.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from interceptor.errors import ValidationFailed
from interceptor.model import Family
from interceptor.options import ANY, Options
from interceptor.plan import Plan
from proxy.core.errors import OriginalDstError
from proxy.l4.origdst import original_dst

SOL_IPV6 = 41
PROBE_PORT = 15002
DOC_ADDRESS: dict[Family, str] = {4: "192.0.2.1", 6: "2001:db8::1"}
LOOPBACK: dict[Family, str] = {4: "127.0.0.1", 6: "::1"}
NOBODY = 65534
_MAX_TRIES = 4096  # hosts tried per included CIDR before giving up on it

# The dialling child: connect and close at once, so TIME_WAIT stays on its ephemeral
# port and never on the capture port the proxy is about to bind.
_CLIENT = """
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[4]))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
except OSError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
s.close()
"""


@dataclass(frozen=True)
class Target:
    family: Family
    address: str
    port: int


def choose_target(options: Options, family: Family) -> Target | None:
    """Where to dial so the plan must redirect it; None when this family captures nothing."""
    excluded = [
        ipaddress.ip_network(c)
        for c in options.exclude_outbound_cidrs
        if ipaddress.ip_network(c).version == family
    ]
    if options.include_outbound_cidrs == (ANY,):
        candidates = [ipaddress.ip_network(DOC_ADDRESS[family])]
    else:
        candidates = [
            ipaddress.ip_network(c)
            for c in options.include_outbound_cidrs
            if ipaddress.ip_network(c).version == family
        ]
    taken = {*options.exclude_outbound_ports, options.outbound_port, options.inbound_port}
    port = next(p for p in range(PROBE_PORT, 65536) if p not in taken)
    for net in candidates:
        for i, member in enumerate(net):
            host = ipaddress.ip_address(str(member))
            if i > _MAX_TRIES:
                break
            if host.is_loopback or (net.num_addresses > 2 and host == net.network_address):
                continue
            if not any(host in ex for ex in excluded):
                return Target(family, str(host), port)
    return None


def probe_uid(options: Options) -> int:
    """An ordinary uid whose traffic must be captured (never the proxy's)."""
    uid = NOBODY
    while uid in (options.proxy_uid, options.proxy_gid):
        uid -= 1
    return uid


def _listen(family: Family, port: int) -> socket.socket:
    fam = socket.AF_INET6 if family == 6 else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if family == 6:
            sock.setsockopt(SOL_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((LOOPBACK[family], port))
        sock.listen(1)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ValidationFailed(
                f"cannot validate: port {port} is already in use here "
                "(is the proxy already running? validate before starting it)"
            ) from e
        raise ValidationFailed(f"cannot listen on [{LOOPBACK[family]}]:{port}: {e}") from e
    return sock


def _spawn(uid: int, target: Target, timeout: float) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-I", "-c", _CLIENT, str(target.family), target.address,
            str(target.port), str(timeout)]  # fmt: skip
    try:
        return subprocess.Popen(
            argv, user=uid, group=uid, extra_groups=[], cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
    except OSError as e:  # PermissionError: no CAP_SETUID / CAP_SETGID in this container
        raise ValidationFailed(
            f"cannot start the probe as uid {uid} ({e}); --validate needs CAP_SETUID and "
            "CAP_SETGID, or set MESH_VALIDATE=false"
        ) from e


def _accept(
    listener: socket.socket, child: subprocess.Popen[bytes], timeout: float
) -> socket.socket | None:
    """The probe connection, or None as soon as the child gave up (refused, unreachable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([listener], [], [], 0.05)
        if ready:
            conn, _ = listener.accept()
            return conn
        if child.poll() is not None:
            return None
    return None


def _reap(child: subprocess.Popen[bytes], timeout: float) -> bytes:
    """Wait for the child and return its stderr. It ends by itself (its connect has
    ``timeout``), so waiting is enough: killing it needs CAP_KILL over another uid, which
    an init container with only NET_ADMIN, NET_RAW, SETUID and SETGID does not have."""
    try:
        _, err = child.communicate(timeout=timeout + 1)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(PermissionError):
            child.kill()
        _, err = child.communicate(timeout=timeout)
    return err or b""


def probe(options: Options, target: Target, timeout: float = 3.0) -> str:
    """Dial ``target`` as an ordinary uid; succeed only if it lands on the capture port."""
    uid = probe_uid(options)
    where = f"[{target.address}]:{target.port}"
    with _listen(target.family, options.outbound_port) as listener:
        child = _spawn(uid, target, timeout)
        try:
            conn = _accept(listener, child, timeout)
            if conn is None:
                err = _reap(child, timeout)
                why = err.decode(errors="replace").strip() or "no connection arrived"
                raise ValidationFailed(
                    f"IPv{target.family}: uid {uid} dialling {where} did not reach the "
                    f"outbound capture port {options.outbound_port} ({why})"
                )
            with conn:
                try:
                    got = original_dst(conn).pair
                except OriginalDstError as e:  # ENOENT: it arrived, but not through our NAT
                    raise ValidationFailed(
                        f"IPv{target.family}: a connection reached port {options.outbound_port}"
                        f" without an original destination ({e})"
                    ) from e
                conn.settimeout(timeout)
                # Wait for the child's FIN: closing second keeps TIME_WAIT off this port.
                # A child that never closes only costs that hygiene, not the verdict.
                with contextlib.suppress(TimeoutError, ConnectionError):
                    conn.recv(1)
        finally:
            _reap(child, timeout)
    if got != (target.address, target.port):
        raise ValidationFailed(
            f"IPv{target.family}: redirected, but SO_ORIGINAL_DST is [{got[0]}]:{got[1]}, "
            f"expected {where}"
        )
    return (
        f"validated IPv{target.family}: uid {uid} -> {where} landed on port "
        f"{options.outbound_port} with the right original destination"
    )


def validate(options: Options, plan: Plan) -> list[str]:
    """Probe every planned family; raise ``ValidationFailed`` on the first failure."""
    lines: list[str] = []
    for rs in plan.rulesets:
        target = choose_target(options, rs.family)
        if target is None:
            lines.append(f"IPv{rs.family}: outbound capture is off, nothing to validate")
            continue
        lines.append(probe(options, target))
    return lines
