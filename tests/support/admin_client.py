"""The sidecar's admin port (127.0.0.1:15000 inside the pod), called from the test.

Each call is one blocking HTTP/1.1 exchange on a socket made in the pod's namespace
(the admin port listens on the pod's loopback only); the answer's JSON is returned
parsed, so a test asserts on fields, never on text.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support import nsock

ADMIN = ("127.0.0.1", 15000)


def put_config(ns: str, text: str) -> tuple[int, Any]:
    """``PUT /config`` with ``text`` as the document: (status, the JSON answer)."""
    s = nsock.connect(ns, *ADMIN)
    try:
        body = text.encode()
        s.sendall(
            b"PUT /config HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        raw = nsock.recv_all(s)
    finally:
        s.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(payload)


def config_dump(ns: str) -> Any:
    """``GET /config_dump``, which must answer 200."""
    status, body = nsock.http_get(ns, *ADMIN, "/config_dump")
    assert status == 200, body
    return json.loads(body)
