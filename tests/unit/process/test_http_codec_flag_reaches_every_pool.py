"""``--http-codec``: validated at option parsing, then spoken by every HTTP engine and
upstream pool the server builds, and reported by ``/config_dump``."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from proxy.admin.admin_port import admin_endpoints
from proxy.admin.httpmini import Request
from proxy.cli import parse_run
from proxy.core.errors import UsageError
from proxy.http import HttpProxy
from proxy.http.codec import CODECS, H11Codec, codec_named
from proxy.process.launch import build_server
from proxy.process.options import RunOptions, resolve_codec
from proxy.process.server import BoundSockets, ProxyServer
from proxy.reload import load_initial
from tests.support import netns as nt

CONFIG = {
    "services": [
        {
            "name": "reviews",
            "port": 9080,
            "addresses": ["10.96.0.20"],
            "protocol": "http",
            "endpoints": [{"address": "10.0.0.1", "port": 9080}],
        },
        {
            "name": "ratings",
            "port": 9080,
            "addresses": ["10.96.0.21"],
            "protocol": "http",
            "endpoints": [{"address": "10.0.0.2", "port": 9080}],
        },
    ]
}


@pytest.fixture
def sockets() -> Iterator[BoundSockets]:
    # Never bound: building the server only keeps them for ``run``.
    socks = BoundSockets(*(socket.socket() for _ in range(4)))
    yield socks
    for s in socks.all():
        s.close()


def _server(tmp_path: Path, socks: BoundSockets, *argv: str) -> ProxyServer:
    path = tmp_path / "mesh.json"
    path.write_text(json.dumps(CONFIG))
    opts = parse_run(["run", "--config", str(path), *argv], {})
    registry = CollectorRegistry()
    return build_server(opts, socks, load_initial(str(path)), registry, registry)


def _config_dump(server: ProxyServer) -> dict[str, object]:
    reply = asyncio.run(
        admin_endpoints(server.admin_view).dispatch(Request("GET", "/config_dump", "", b""))
    )
    assert reply.status == 200
    dump: dict[str, object] = json.loads(reply.body)
    return dump


def test_flag_and_env_choose_the_codec_and_auto_is_the_default() -> None:
    assert parse_run(["run"], {}).http_codec == "auto"
    assert parse_run(["run"], {"MESH_HTTP_CODEC": "h11"}).http_codec == "h11"
    for name in CODECS:
        assert parse_run(["run", "--http-codec", name], {"MESH_HTTP_CODEC": "x"}).http_codec == (
            name
        )  # the flag wins over the env var


@pytest.mark.parametrize(
    ("argv", "env", "origin"),
    [
        (["run", "--http-codec", "bogus"], {}, "--http-codec"),
        (["run"], {"MESH_HTTP_CODEC": "bogus"}, "MESH_HTTP_CODEC"),
        (["run", "--http-codec", "H11"], {}, "--http-codec"),  # names are exact
    ],
)
def test_unknown_codec_is_refused_naming_it_and_the_known_ones(
    argv: list[str], env: dict[str, str], origin: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_run(argv, env)
    message = str(caught.value)
    assert message.startswith(f"{origin}: ")
    assert repr(argv[-1] if len(argv) > 1 else env["MESH_HTTP_CODEC"]) in message
    assert all(name in message for name in ("auto", *CODECS))


def test_unknown_codec_exits_2_before_anything_starts() -> None:
    proc = subprocess.run(
        [nt.PYTHON, "-m", "proxy", "run", "--http-codec", "bogus"],
        capture_output=True,
        text=True,
        env=nt.python_env(),
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "--http-codec: unknown HTTP codec 'bogus'" in proc.stderr
    assert "h11" in proc.stderr.splitlines()[-1]


def test_run_help_documents_the_flag_and_its_env_var() -> None:
    proc = subprocess.run(
        [nt.PYTHON, "-m", "proxy", "run", "--help"],
        capture_output=True,
        text=True,
        env=nt.python_env(),
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "--http-codec auto|" in text and "[MESH_HTTP_CODEC]" in text


def _assert_spoken_everywhere(server: ProxyServer, name: str) -> None:
    factory = CODECS[name]
    engines = {server.outbound.http_handler, server.inbound.http_handler}
    assert len(engines) == 1
    engine = engines.pop()
    assert isinstance(engine, HttpProxy) and engine.codec is factory
    forwarder = server.mesh_forwarder
    assert forwarder is not None
    assert forwarder.pool.codec is factory and forwarder.inbound_pool.codec is factory
    clusters = server.mesh.state.clusters
    assert set(clusters) == {"reviews", "ratings"}
    assert {c.pool.codec for c in clusters.values()} == {factory}
    dump = _config_dump(server)
    assert dump["http_codec"] == name
    assert isinstance(dump["options"], dict) and dump["options"]["http_codec"] == name


def test_chosen_codec_is_spoken_by_the_engine_and_every_pool(
    tmp_path: Path, sockets: BoundSockets, codec: str
) -> None:
    _assert_spoken_everywhere(_server(tmp_path, sockets, "--http-codec", codec), codec)


class _Probe(H11Codec):
    """h11 under another name: a pool left on the engine's default codec shows."""


def test_a_codec_that_is_no_ones_default_reaches_every_pool_too(
    tmp_path: Path, sockets: BoundSockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CODECS, "probe", _Probe)
    _assert_spoken_everywhere(_server(tmp_path, sockets, "--http-codec", "probe"), "probe")


def test_auto_is_reported_as_the_codec_that_really_runs(
    tmp_path: Path, sockets: BoundSockets
) -> None:
    server = _server(tmp_path, sockets)
    chosen = resolve_codec("auto")
    assert chosen in CODECS and CODECS[chosen] is codec_named("auto")
    assert server.codec is codec_named("auto")
    dump = _config_dump(server)
    assert dump["http_codec"] == chosen
    assert isinstance(dump["options"], dict) and dump["options"]["http_codec"] == "auto"


def test_a_mesh_built_for_another_codec_is_refused(
    tmp_path: Path, sockets: BoundSockets, codec: str
) -> None:
    from proxy.mesh import Mesh
    from proxy.observe.metrics import ReloadMetrics
    from proxy.reload import Reloader

    other = _Probe  # any factory but the chosen one
    path = tmp_path / "mesh.json"
    path.write_text(json.dumps(CONFIG))
    initial = load_initial(str(path))
    registry = CollectorRegistry()
    reloader = Reloader(initial, ReloadMetrics(registry))
    mesh = Mesh(initial.loaded.config, codec=other)
    opts = RunOptions(config=str(path), http_codec=codec)
    with pytest.raises(ValueError, match=f"--http-codec {codec}"):
        ProxyServer(opts, sockets, registry, registry, reloader, mesh)
