"""The load test's client program (run with ``python -c`` inside the pod's namespace).

``LOADER``: keep-alive clients at a steady total rate, alternating a plain request and
one with ``x-env: staging``; one JSON line per request (send time, kind, the port that
answered or the error), written when the duration is over. Its endpoints are the one
test server (``python -m tests.support.http_server --reply port``).
"""

from __future__ import annotations

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
