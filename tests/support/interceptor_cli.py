"""Running ``mesh-interceptor`` in-process: argv and env in, exit code and both streams out."""

from __future__ import annotations

import io

from interceptor import cli
from interceptor.plan import PodFacts

V4 = PodFacts(("10.77.0.2/24",), ())  # a pod with one IPv4 address and no IPv6


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env or {}, out, err)
    return code, out.getvalue(), err.getvalue()
