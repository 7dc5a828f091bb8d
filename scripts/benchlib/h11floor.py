"""What h11 alone costs per proxied request: a lower bound for any h11-based L7 proxy.

The L7 proxy must parse each request and each response with h11 and serialize both
again through h11's state machines. This replays exactly those calls for the bench's
own exchange, using the bytes nginx really sent: the request wrk sends, and the
response head and body. There is no I/O, no routing, no telemetry, and it runs in a
tight loop with warm caches, so the figure is a floor: inside the proxy the same
calls cost more, because the caches are cold. The report prints it next to HAProxy
so the L7 ratio target can be read against it.
"""

from __future__ import annotations

import time

import h11

from proxy.http.codec import h11fast

_EOM = h11.EndOfMessage()
_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"})


def one_exchange(down: h11.Connection, up: h11.Connection, request: bytes, response: bytes) -> None:
    """The h11 calls the proxy makes for one request/response on kept-alive connections."""
    down.receive_data(request)
    head = down.next_event()
    assert type(head) is h11.Request, head
    while type(down.next_event()) is not h11.EndOfMessage:
        pass
    headers = head.headers.raw_items()
    headers.append((b"x-request-id", b"00000000-0000-4000-8000-000000000000"))
    up.send(h11fast.request(head.method, head.target, headers))
    up.send(_EOM)
    up.receive_data(response)
    reply = up.next_event()
    assert type(reply) is h11.Response, reply
    relayed = [item for item in h11fast.items(reply.headers) if item[1] not in _HOP]
    down.send(h11fast.response(reply.status_code, reply.reason, relayed))
    while True:
        event = up.next_event()
        if type(event) is h11.EndOfMessage:
            break
        assert type(event) is h11.Data, event
        down.send(event)
    down.send(_EOM)
    down.start_next_cycle()
    up.start_next_cycle()


def cpu_us_per_request(request: bytes, response: bytes, count: int = 20000) -> float:
    """CPU microseconds per exchange, median of three runs of ``count``."""
    down, up = h11.Connection(h11.SERVER), h11.Connection(h11.CLIENT)
    for _ in range(count // 10):  # warm-up
        one_exchange(down, up, request, response)
    runs = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(count):
            one_exchange(down, up, request, response)
        runs.append((time.process_time() - started) / count * 1e6)
    return sorted(runs)[1]
