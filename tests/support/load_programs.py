"""The load test's two helper programs (run with ``python -c`` inside a namespace).

``UPSTREAM``: one threaded HTTP/1.1 server per port given, answering ``port=<p>``.
It is not the one test server (tests.support.http_server) on purpose: http.server
sends the head and the body in two writes, so Nagle and the proxy's delayed ACK make
every answer take about 40 ms, slower than the estimate peak-EWMA gives an endpoint it
has not measured yet. The load test's "a new endpoint answers within 2 s" relies on
that; with a sub-millisecond server, two-choice peak-EWMA keeps the measured endpoint.
``LOADER``: keep-alive clients at a steady total rate, alternating a plain request
and one with ``x-env: staging``; one JSON line per request (send time, kind, the
port that answered or the error), written when the duration is over.
"""

from __future__ import annotations

UPSTREAM = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"port={self.server.server_address[1]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

host = sys.argv[1]
servers = [ThreadingHTTPServer((host, int(p)), Handler) for p in sys.argv[2:]]
for s in servers:
    s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""

LOADER = r"""
import http.client, json, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
rate, duration, threads = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
results = []
start = time.time() + 0.2

def worker(index):
    conn = http.client.HTTPConnection(host, port, timeout=5)
    n = 0
    while True:
        at = start + (n * threads + index) / rate
        if at - start > duration:
            break
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        kind = "staging" if n % 2 else "plain"
        headers = {"Host": "web", "x-env": "staging"} if kind == "staging" else {"Host": "web"}
        sent = time.time()
        try:
            conn.request("GET", "/", headers=headers)
            resp = conn.getresponse()
            body = resp.read().decode()
            ok = resp.status == 200 and body.startswith("port=")
            got = body.split("=")[1] if ok else f"status {resp.status} {body[:80]}"
        except Exception as e:
            got = f"error {type(e).__name__}: {e}"
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5)
        results.append((sent, kind, got))
        n += 1

ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
for r in sorted(results):
    print(json.dumps(r))
"""
