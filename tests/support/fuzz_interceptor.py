"""Hostile ``mesh-interceptor`` command lines and ``MESH_*`` environments, run in process.

An input is an argv (a command, then flags from the real option table and stray
words, with values drawn from a list of near-misses: out-of-range and huge numbers,
bad CIDRs, mixed ``*``, odd whitespace and Unicode) and an environment of ``MESH_*``
variables. ``cli.main`` runs with every effect replaced by a recorder: a
``FakeBackend``, in-memory sysctls, fixed pod facts, and no rules copy, probe or
``lo`` address. ``verdict`` accepts exit 0 (1 for ``verify``), or exit 2 with one
line on stderr that names a value from the input and no change recorded anywhere;
a traceback, any other exit, or a change after a refusal is a finding.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from interceptor import cli, dump, options, probe, rulescopy
from interceptor.backends.fake import FakeBackend
from interceptor.plan import PodFacts, build_plan
from interceptor.sysctl import MemorySysctls

COMMANDS = [*cli.COMMANDS, "instal", "", "--help"]
FLAGS = [options.flag_of(s.field) for s in options._SPECS] + ["--format", "--no-validate", "-x"]
ENVS = [options.env_of(s.field) for s in options._SPECS]
VALUES = [
    "", " ", ",", "0", "1", "-1", "65535", "65536", "15001", "4294967294", "4294967295",
    "9" * 5000, "1e3", "0x50", " 80 ", "80,", ",80", "80,,81", "*", "*,80", "80,*", "\u0661",
    "\xb2", "10.0.0.0/8", "10.0.0.1/33", "::/0", "fe80::1%eth0", "1.2.3.4/24", "256.0.0.1",
    "auto", "on", "off", "ON", "nft", "legacy", "iptc", "xtables", "true", "yes", "maybe",
    "/run/mesh/rules.json", "relative/path", "/dir/", "--", "-", "--outbound-port",
    "text", "json", "\u202e", "\t", "x" * 300,
]  # fmt: skip
PODS = PodFacts(("10.244.0.7/24",), ("fd00::7/64",))

Argv = list[str]
Env = dict[str, str]


class Effects:
    """Every effect ``cli.run`` can have, recorded instead of made."""

    def __init__(self) -> None:
        self.backend = FakeBackend()
        self.sysctls = MemorySysctls()
        self.files: list[str] = []

    def changed(self) -> list[str]:
        return [
            *(f"rules applied: {c}" for c in self.backend.applied),
            *(f"reserved ports written: {w}" for w in self.sysctls.writes),
            *self.files,
        ]

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def record(what: str) -> Any:
            def effect(*args: object) -> Any:
                self.files.append(f"{what}{args!r}")
                return True if what == "rules copy removed" else []

            return effect

        patches: list[tuple[Any, str, Any]] = [
            (cli, "_sysctls", lambda: self.sysctls),
            (cli, "get_backend", lambda name: self.backend),
            (cli, "_plan", lambda opts: build_plan(opts, PODS)),
            (cli, "_passthrough_on_lo", record("lo address")),
            (dump, "read_sections", lambda: []),
            (probe, "validate", record("probe")),
            (rulescopy, "prepare", record("rules copy prepared")),
            (rulescopy, "write_copy", record("rules copy written")),
            (rulescopy, "remove_copy", record("rules copy removed")),
        ]
        saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
        try:
            for module, name, value in patches:
                setattr(module, name, value)
            yield
        finally:
            for module, name, value in saved:
                setattr(module, name, value)


def verdict(argv: Argv, env: Env) -> str | None:
    effects = Effects()
    out, err = io.StringIO(), io.StringIO()
    try:
        with effects.installed(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv, env, out, err)
    except SystemExit as exc:  # argparse's --help: exit 0 with the help text
        code = exc.code if isinstance(exc.code, int) else -1
        if code == 0 and "usage:" in out.getvalue():
            return None
        return f"SystemExit({exc.code!r}) {err.getvalue()[:200]!r}"
    except Exception as exc:
        return f"traceback: {type(exc).__name__}: {exc}"[:500]
    command = argv[0] if argv else ""
    if code == 0 or (code == 1 and command == "verify"):
        return None
    if code != 2:
        return f"exit {code}: {err.getvalue()[:300]!r}"
    message = err.getvalue()
    if out.getvalue() or not message.startswith(f"{cli.PROG}: error: "):
        return f"exit 2 but stdout {out.getvalue()[:100]!r}, stderr {message[:200]!r}"
    if message.count("\n") != 1:
        return f"exit 2 with {message.count(chr(10))} lines: {message[:300]!r}"
    if not _names_a_value(message, argv, env):
        return f"exit 2 without naming the bad value: {message[:300]!r}"
    if effects.changed():
        return f"exit 2 after changes: {effects.changed()[:3]}"
    return None


def _names_a_value(message: str, argv: Argv, env: Env) -> bool:
    if "required" in message:  # no command at all: the message names what is missing
        return True
    tokens = [*argv, *(part for a in argv for part in a.split("=", 1)), *env, *env.values()]
    # Named as written (a flag) or quoted (a value: repr shows even "" and whitespace).
    return any(repr(t) in message or (t.strip() and t.strip() in message) for t in tokens)


# -- drawing inputs ----------------------------------------------------------------------

Input = tuple[Argv, Env]


def _make(command: int, flags: list[tuple[int, int, bool]], env: list[tuple[int, int]]) -> Input:
    argv = [COMMANDS[command % len(COMMANDS)]] if command < len(COMMANDS) else []
    for flag, value, joined in flags:
        name, text = FLAGS[flag % len(FLAGS)], VALUES[value % len(VALUES)]
        argv += [f"{name}={text}"] if joined else [name, text]
    return argv, {ENVS[k % len(ENVS)]: VALUES[v % len(VALUES)] for k, v in env}


def inputs() -> st.SearchStrategy[Input]:
    flag = st.tuples(st.integers(0, 255), st.integers(0, 255), st.booleans())
    env = st.tuples(st.integers(0, 255), st.integers(0, 255))
    return st.builds(
        _make,
        st.integers(0, len(COMMANDS)),
        st.lists(flag, max_size=4),
        st.lists(env, max_size=3),
    )


def random_input(rng: random.Random) -> Input:
    flags = [
        (rng.randrange(256), rng.randrange(256), rng.random() < 0.3)
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4)))
    ]
    env = [(rng.randrange(256), rng.randrange(256)) for _ in range(rng.choice((0, 0, 1, 2)))]
    return _make(rng.randrange(len(COMMANDS) + 1), flags, env)
