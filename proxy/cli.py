"""``mesh-proxy run``: flags (with MESH_<FLAG> env fallbacks) → RunOptions → processes.

Parsing is pure (``parse_run``) so it is unit-tested; ``main`` only adds the process
effects. prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is first imported,
so the serving modules are imported only after that directory is set up.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.core.errors import ProxyError, UsageError
from proxy.http.codec import CODECS
from proxy.l4.detect import DEFAULT_OPAQUE_PORTS
from proxy.process import options as o


@dataclass(frozen=True)
class _Flag:
    name: str  # RunOptions field
    parse: Callable[[str], Any]
    metavar: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "MESH_" + self.name.upper()


def _on_off(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise UsageError(f"{raw!r} is not on/off")


def _workload(raw: str) -> str:
    if not raw or len(raw) > 253 or not raw.replace("-", "").replace(".", "").isalnum():
        raise UsageError(f"{raw!r} is not a workload name")
    return raw


def _extra_opaque(raw: str) -> frozenset[int]:
    return o.parse_ports(raw) | DEFAULT_OPAQUE_PORTS


RUN_FLAGS = (
    _Flag("config", str, "FILE", "mesh config (YAML/JSON); without it everything is passthrough"),
    _Flag("workers", o.parse_count, "N", "worker processes sharing the ports (SO_REUSEPORT)"),
    _Flag("uid", o.parse_id, "UID", "drop to this uid after binding (when started as root)"),
    _Flag("gid", o.parse_id, "GID", "drop to this gid after binding (when started as root)"),
    _Flag("outbound_port", o.parse_port, "PORT", "outbound capture port (default 15001)"),
    _Flag("inbound_port", o.parse_port, "PORT", "inbound capture port (default 15006)"),
    _Flag("admin_port", o.parse_port, "PORT", "admin port on 127.0.0.1 (default 15000)"),
    _Flag("telemetry_port", o.parse_port, "PORT", "metrics/health port (default 15020)"),
    _Flag("protocol_detect_timeout", o.parse_duration, "DUR", "protocol sniff wait (100ms)"),
    _Flag("opaque_ports", _extra_opaque, "P,P", "more server-speaks-first ports (no sniffing)"),
    _Flag("connect_timeout", o.parse_duration, "DUR", "upstream connect timeout (10s)"),
    _Flag("idle_timeout", o.parse_duration, "DUR", "close TCP connections idle this long (1h)"),
    _Flag("drain_timeout", o.parse_duration, "DUR", "on SIGTERM, wait this long (5s)"),
    _Flag(
        "request_headers_timeout",
        o.parse_duration,
        "DUR",
        "a request head must arrive within this, first byte to last (10s)",
    ),
    _Flag(
        "stream_idle_timeout",
        o.parse_duration,
        "DUR",
        "close a request whose body (or response) stalls this long (5m, Envoy's)",
    ),
    _Flag("workload", _workload, "NAME", "source_workload label for outbound metrics"),
    _Flag("access_log", _on_off, "on|off", "JSON access log on stdout (default on)"),
    _Flag("rules_file", o.parse_rules_file, "FILE", "the init container's rules copy: GET /rules"),
    _Flag(
        "admin_max_body",
        o.parse_size,
        "SIZE",
        "largest PUT /config body on the admin port; larger is answered 413 (64Mi)",
    ),
    _Flag(
        "http_codec",
        o.parse_codec,
        "|".join(["auto", *sorted(CODECS)]),
        "HTTP/1 parser: llhttp (httptools, fast) or h11 (the strict reference); both give "
        "the same verdicts. auto = llhttp when installed (default auto)",
    ),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors: exit 2, like ours
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mesh-proxy", description="meshproxy sidecar")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="serve the capture listeners",
        description="Serve the sidecar: outbound 15001 and inbound 15006 capture listeners, "
        "admin on 127.0.0.1:15000, metrics and health on :15020. Every flag also reads "
        "the env var MESH_<FLAG> (e.g. MESH_WORKERS).",
    )
    for f in RUN_FLAGS:
        run.add_argument(f.flag, dest=f.name, metavar=f.metavar, help=f"{f.help} [{f.env}]")
    validate = sub.add_parser("validate", help="check a config file and print every error")
    validate.add_argument("file", metavar="FILE")
    config = sub.add_parser("config", help="config tools: config generate (from Kubernetes)")
    config.add_argument("action", choices=["generate"])
    inject = sub.add_parser("inject", help="add the mesh to Kubernetes YAML (-f FILE|-)")
    inject.add_argument("-f", "--filename", metavar="FILE|-")
    return parser


def parse_run(argv: Sequence[str], env: Mapping[str, str]) -> o.RunOptions:
    """Flags first, then MESH_<FLAG> env vars, then defaults; errors name the origin."""
    ns = build_parser().parse_args(list(argv))
    if ns.command != "run":
        raise UsageError(f"{ns.command!r} is not handled by parse_run")
    values: dict[str, Any] = {}
    for f in RUN_FLAGS:
        raw, origin = getattr(ns, f.name), f.flag
        if raw is None and env.get(f.env, "") != "":
            raw, origin = env[f.env], f.env
        if raw is None:
            continue
        try:
            values[f.name] = f.parse(raw)
        except UsageError as e:
            raise UsageError(f"{origin}: {e}") from e
    return o.RunOptions(**values)


def _metrics_dir(opts: o.RunOptions) -> None:
    if opts.workers == 1:
        return
    path = tempfile.mkdtemp(prefix="mesh-proxy-metrics-")
    if opts.uid is not None and opts.gid is not None and os.geteuid() == 0:
        os.chown(path, opts.uid, opts.gid)  # workers write here after dropping root
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    args = list(sys.argv[1:] if argv is None else argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # access log lines leave as they happen
    if args[:1] == ["validate"]:
        from proxy.config import validate_main  # owned by proxy/config; loaded on demand

        return validate_main(args[1:])
    if args[:2] == ["config", "generate"]:
        from proxy.k8s import generate_main  # owned by proxy/k8s; loaded on demand

        return generate_main(args[2:])
    if args[:1] == ["inject"]:
        from proxy.inject import inject_main  # owned by proxy/inject; loaded on demand

        return inject_main(args[1:])
    try:
        opts = parse_run(args, os.environ)
    except UsageError as e:
        print(f"mesh-proxy: {e}", file=sys.stderr)
        return 2
    _metrics_dir(opts)
    from proxy.process.launch import run_proxy  # after PROMETHEUS_MULTIPROC_DIR is set, see above

    try:
        return run_proxy(opts)
    except UsageError as e:
        print(f"mesh-proxy: {e}", file=sys.stderr)
        return 2
    except ProxyError as e:
        print(f"mesh-proxy: {e}", file=sys.stderr)
        return 1
