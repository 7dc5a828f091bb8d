"""``mesh-interceptor install|remove|plan|dump|verify``: the init container's tool.

The CLI is the error boundary: options are parsed and validated (``UsageError``, exit 2)
before any backend is even chosen, so bad input never touches a rule; every other
``InterceptorError`` carries its exit code (3 apply failed and rolled back, 4 validation
failed). ``verify`` exits 1 on drift.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import NoReturn, TextIO

from interceptor import dump, engine, options, probe, reservation, rulescopy
from interceptor.backends import get_backend
from interceptor.errors import BackendError, InterceptorError
from interceptor.options import UsageError
from interceptor.plan import PASSTHROUGH, Plan, build_plan
from interceptor.render import render_plan
from interceptor.sysctl import ProcSysctls, Sysctls

PROG = "mesh-interceptor"
COMMANDS = {
    "install": "install the capture rules (a no-op when they are already there)",
    "remove": "delete every MESH_ chain and the jumps into them, nothing else",
    "plan": "print the iptables-restore text install would apply; touches nothing",
    "dump": "print the live nat rules of both families and backends, ours marked",
    "verify": "exit 0 when the live rules equal the plan, else 1 with a diff",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)  # one line, exit 2, like every other bad input


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Install transparent-capture iptables rules.")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for name, text in COMMANDS.items():
        cmd = sub.add_parser(name, help=text, description=text)
        options.add_arguments(cmd)
        if name == "dump":
            cmd.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _plan(opts: options.Options) -> Plan:
    from interceptor.netlink import pod_facts

    return build_plan(opts, pod_facts())


def _sysctls() -> Sysctls:
    return ProcSysctls()  # this namespace's /proc/sys (tests put a MemorySysctls here)


def _passthrough_on_lo(cidr: str) -> list[str]:
    from interceptor.netlink import ensure_on_loopback

    try:
        added = ensure_on_loopback(cidr)
    except OSError as e:
        raise BackendError(f"could not add {cidr} to lo (inbound passthrough source): {e}") from e
    return [f"lo: added {cidr}, the proxy's inbound passthrough source"] if added else []


def run(ns: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> int:
    opts = options.from_args(ns, env)
    sysctls = _sysctls()
    if ns.command == "plan":
        out.write(render_plan(_plan(opts)) + "\n" + reservation.plan_text(opts, sysctls))
        return 0
    if ns.command == "dump":
        sections = dump.read_sections()
        if ns.format == "json":
            out.write(dump.as_json(sections, reservation.dump_doc(opts, sysctls)))
        else:
            out.write(dump.as_text(sections) + reservation.dump_text(opts, sysctls))
        return 0
    backend = get_backend(opts.backend)
    if ns.command == "remove":
        removed = engine.remove(backend)
        lines = [*removed.lines, *reservation.remove(sysctls, removed.changed)]
        if opts.rules_file is not None and rulescopy.remove_copy(opts.rules_file):
            lines.append(f"rules copy {opts.rules_file} deleted")
        out.write("\n".join(lines) + "\n")
        return 0
    plan = _plan(opts)
    if ns.command == "verify":
        drift = engine.verify(plan, backend) + reservation.verify(opts, sysctls)
        if drift:
            out.write(f"{backend.name}: live rules differ from the plan:\n")
            out.write("".join(f"  {line}\n" for line in drift))
            return 1
        out.write(f"{backend.name}: live rules match the plan\n")
        return 0
    if opts.rules_file is not None:
        rulescopy.prepare(opts.rules_file)  # a path we cannot write fails before any change
    # The reservation goes first and is undone if the rules fail: all or nothing.
    reserved = reservation.install(opts, sysctls)
    try:
        lines = list(engine.install(plan, backend).lines)
    except InterceptorError:
        reserved.undo()
        raise
    lines += reserved.lines
    if plan.for_family(6) is not None:
        lines += _passthrough_on_lo(PASSTHROUGH[6])
    if opts.rules_file is not None:
        now = datetime.now(UTC)
        rulescopy.write_copy(opts.rules_file, rulescopy.rules_copy(plan, backend.name, opts, now))
        lines.append(f"rules copy written to {opts.rules_file}")
    out.write("\n".join(lines) + "\n")
    if opts.validate:
        out.flush()
        out.write("\n".join(probe.validate(opts, plan)) + "\n")
    return 0


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        ns, extra = build_parser().parse_known_args(argv)
        if extra:  # argparse would join them with spaces: "" or " " would not show
            raise UsageError(f"unrecognized arguments: {', '.join(map(repr, extra))}")
        return run(ns, os.environ if env is None else env, out)
    except InterceptorError as e:
        out.flush()
        err.write(f"{PROG}: error: {e}\n")
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
