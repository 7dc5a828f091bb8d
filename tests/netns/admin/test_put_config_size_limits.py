"""PUT /config carries big meshes by default, and a body over the limit gets 413.

The proxy runs in a namespace (no capture needed: the admin port is its own); the
documents are generated here: 1,000 services (about 1.2 MB of JSON) and 10,000
(about 12 MB), the sizes the file path is given by real control planes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import nsock
from tests.support.admin_client import config_dump
from tests.support.config_docs import mesh_doc
from tests.support.netns import Netns, netns
from tests.support.sidecar import start_proxy

pytestmark = pytest.mark.netns
ADMIN = ("127.0.0.1", 15000)


def put(ns: str, body: bytes, expect_continue: bool = False) -> tuple[int, bytes]:
    s = nsock.connect(ns, *ADMIN, timeout=60)
    try:
        head = b"PUT /config HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(body)
        if expect_continue:  # what curl sends for bodies over 1 MiB
            s.sendall(head + b"Expect: 100-continue\r\n\r\n")
            first = s.recv(1 << 16)
            if not first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
                raw = first + nsock.recv_all(s)
                return int(raw.split(b" ")[1]), raw.partition(b"\r\n\r\n")[2]
            s.sendall(body)
        else:
            s.sendall(head + b"\r\n" + body)
        raw = nsock.recv_all(s)
    finally:
        s.close()
    return int(raw.split(b" ")[1]), raw.partition(b"\r\n\r\n")[2]


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Netns]:
    with netns("ia") as ns:
        start_proxy(ns, tmp_path_factory.mktemp("proxy"))
        yield ns


def test_a_1000_service_mesh_applies(pod: Netns) -> None:
    doc = mesh_doc(1000).encode()
    assert len(doc) > 1_100_000
    status, body = put(pod.name, doc, expect_continue=True)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["result"] == "ok"
    assert config_dump(pod.name)["config_status"]["version"] == answer["version"]


def test_an_11_mb_mesh_applies_while_the_admin_port_keeps_answering(pod: Netns) -> None:
    doc = mesh_doc(10_000).encode()
    assert len(doc) > 11_000_000
    done: list[tuple[int, bytes]] = []
    worker = threading.Thread(target=lambda: done.append(put(pod.name, doc)))
    started = time.monotonic()
    worker.start()
    slowest, answered = 0.0, 0
    while worker.is_alive():
        t = time.monotonic()
        assert nsock.http_get(pod.name, *ADMIN, "/rules")[0] == 404  # tiny: the wait is all
        slowest = max(slowest, time.monotonic() - t)
        answered += 1
        time.sleep(0.05)
    worker.join()
    took = time.monotonic() - started
    status, body = done[0]
    assert status == 200, body[:300]
    assert json.loads(body)["result"] == "ok"
    services = config_dump(pod.name)["config_status"]
    assert services["version"] == json.loads(body)["version"]
    # Upload, validation, hashing and building the mesh state (in a thread, the
    # collector paused) leave the port free: it answers all along. One call waits for
    # the commit of 10,000 clusters on the loop and the freeze after it: 0.06 s for the
    # slowest call in the last run on 2 shared cores (0.55 s when the state was built
    # on the loop and the collector then traversed it; 2.4-3.9 s before route plans
    # shared their values); printed, not asserted.
    assert answered >= 10, (answered, slowest, took)
    print(f"11 MB PUT: {took:.1f}s; {answered} admin calls meanwhile, slowest {slowest:.2f}s")


def test_over_a_configured_limit_is_413_naming_it_and_changes_nothing(tmp_path: Path) -> None:
    with netns("ia") as ns:
        start_proxy(ns, tmp_path, "--admin-max-body", "1Mi")
        before = config_dump(ns.name)["config_status"]["version"]
        doc = mesh_doc(1000).encode()
        for expect_continue in (True, False):
            status, body = put(ns.name, doc, expect_continue)
            assert status == 413, body
            assert (
                body
                == (
                    f"request body of {len(doc)} bytes is over this port's limit of 1048576 "
                    "bytes (1 MiB); raise it with --admin-max-body / MESH_ADMIN_MAX_BODY\n"
                ).encode()
            )
        assert config_dump(ns.name)["config_status"]["version"] == before
        status, body = put(ns.name, mesh_doc(100).encode())  # under it: applied
        assert status == 200 and json.loads(body)["result"] == "ok"
