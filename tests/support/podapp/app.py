"""The pod's application in the image test: a stand-in for bookinfo's productpage.

``GET /productpage`` calls the reviews service by its ClusterIP (``REVIEWS_URL``),
forwarding the headers productpage forwards, and answers with what reviews answered,
as JSON. It knows nothing of the mesh: its inbound and outbound traffic reach the
sidecar only because the init container's rules redirect them. Standard library only,
so the image is its base plus this file.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REVIEWS_URL = os.environ.get("REVIEWS_URL", "http://10.96.0.20:9080/reviews/0")
FORWARDED = ("x-request-id", "x-env", "x-test-delay-ms", "traceparent")
# No proxy from the environment: the mesh must be the only thing in the path.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path != "/productpage":
            self._answer(404, {"error": "not found"})
            return
        headers = {k: v for k in FORWARDED if (v := self.headers.get(k)) is not None}
        req = urllib.request.Request(REVIEWS_URL, headers=headers)
        try:
            with _opener.open(req, timeout=20) as resp:
                status, served_by, body = resp.status, resp.headers.get("x-served-by"), resp.read()
        except urllib.error.HTTPError as e:
            status, served_by, body = e.code, e.headers.get("x-served-by"), e.read()
        self._answer(
            200,
            {"reviews_status": status, "reviews_served_by": served_by, "reviews_bytes": len(body)},
        )

    def _answer(self, status: int, doc: dict[str, object]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 9080), Handler).serve_forever()
