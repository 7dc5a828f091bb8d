"""Test client: dial a list of (uid, host, port) and print what answered, as one JSON list.

Usage: dial_as_uid.py '[[uid, host, port], ...]'. Each dial runs in a forked child that drops
to ``uid`` (gid the same, no supplementary groups) before connecting, so the kernel
sees the owner the test asked for. Each result is the listener's JSON reply, or
``{"error": "..."}`` when the connection failed.
"""

from __future__ import annotations

import json
import os
import socket
import sys


def dial(host: str, port: int) -> dict[str, object]:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect((host, port))
            data = s.makefile("rb").readline()
        except OSError as e:
            return {"error": str(e)}
    return json.loads(data) if data else {"error": "closed without reply"}


def as_uid(uid: int, host: str, port: int) -> dict[str, object]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = dial(host, port)
        except BaseException as e:  # report anything, never fall back into the parent's loop
            out = {"error": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    return result


def main() -> None:
    todo = json.loads(sys.argv[1])
    print(json.dumps([as_uid(int(uid), host, int(port)) for uid, host, port in todo]))


if __name__ == "__main__":
    main()
