"""The response flags are one StrEnum; wherever a flag is written it reads as Envoy's text.

L4 passes ``Flag`` members to the metrics and the access log, which used to get the
plain strings: the label values and the JSON bytes must be exactly what they were.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from proxy.core.flags import Flag
from proxy.observe.accesslog import AccessLog
from proxy.observe.metrics import ConnLabels, TcpMetrics

ENVOY = {
    Flag.NONE: "-",
    Flag.NO_ROUTE: "NR",
    Flag.NO_HEALTHY_UPSTREAM: "UH",
    Flag.UPSTREAM_CONNECT_FAILURE: "UF",
    Flag.UPSTREAM_OVERFLOW: "UO",
    Flag.OVERLOAD_MANAGER: "OM",
    Flag.UPSTREAM_TIMEOUT: "UT",
    Flag.DEADLINE_EXCEEDED: "DL",
    Flag.UPSTREAM_RESET: "UR",
    Flag.DOWNSTREAM_DISCONNECT: "DC",
    Flag.DOWNSTREAM_PROTOCOL_ERROR: "DPE",
    Flag.STREAM_IDLE_TIMEOUT: "SI",
    Flag.DELAY_INJECTED: "DI",
    Flag.FAULT_INJECTED: "FI",
}


def test_every_flag_has_its_envoy_text() -> None:
    assert {flag: flag.value for flag in Flag} == ENVOY


@pytest.mark.parametrize("flag", list(Flag), ids=lambda f: f.name)
def test_a_flag_formats_as_its_text(flag: Flag) -> None:
    text = ENVOY[flag]
    assert (f"{flag}", str(flag), "%s" % flag) == (text, text, text)  # noqa: UP031  # logline uses %
    assert json.dumps({"response_flags": flag}) == json.dumps({"response_flags": text})


def _exposition(flag: Flag | str) -> bytes:
    registry = CollectorRegistry()
    metrics = TcpMetrics(registry)
    labels = ConnLabels("source", "client", "db.default.svc.cluster.local")
    metrics.add_bytes(labels, flag, 10, 20)  # type: ignore[arg-type]  # str: the old call
    metrics.connection_closed(labels, flag)  # type: ignore[arg-type]
    lines = generate_latest(registry).splitlines(keepends=True)
    return b"".join(line for line in lines if b"_created" not in line)  # creation times differ


@pytest.mark.parametrize("flag", [Flag.NONE, Flag.UPSTREAM_RESET, Flag.STREAM_IDLE_TIMEOUT])
def test_tcp_series_are_labelled_as_with_the_plain_text(flag: Flag) -> None:
    assert f'response_flags="{ENVOY[flag]}"'.encode() in _exposition(flag)
    assert _exposition(flag) == _exposition(ENVOY[flag])


def test_an_l4_log_line_writes_the_flag_as_text() -> None:
    read_end, write_end = os.pipe()

    async def log_one() -> None:
        log = AccessLog(write_end, clock=lambda: 0.0)
        log({"response_flags": Flag.UPSTREAM_CONNECT_FAILURE, "bytes_sent": 0})
        log.close()

    try:
        asyncio.run(log_one())
        line = os.read(read_end, 4096)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert line == b'{"time":"1970-01-01T00:00:00.000Z","response_flags":"UF","bytes_sent":0}\n'
