"""Test listener: accept on every given port (IPv4 and IPv6) and report what arrived.

Usage: origdst_listener.py NAME PORT[,PORT...]. Prints ``ready`` once bound. Each connection gets
one JSON line back and is closed: ``{"name", "port" (the local port it landed on),
"orig" ([address, port] from SO_ORIGINAL_DST, or null when conntrack has no entry)}``.
SO_ORIGINAL_DST is decoded here on purpose, independently of the code under test.
"""

from __future__ import annotations

import json
import selectors
import socket
import struct
import sys


def original_dst(conn: socket.socket) -> list[object] | None:
    try:
        if conn.family == socket.AF_INET6:
            raw = conn.getsockopt(41, 80, 28)
            port, _flow, addr = struct.unpack_from("!HI16s", raw, 2)
            return [socket.inet_ntop(socket.AF_INET6, addr), port]
        raw = conn.getsockopt(socket.SOL_IP, 80, 16)
        port, addr4 = struct.unpack_from("!H4s", raw, 2)
        return [socket.inet_ntop(socket.AF_INET, addr4), port]
    except OSError:
        return None


def main() -> None:
    name, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
    sel = selectors.DefaultSelector()
    for port in ports:
        for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(41, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
            s.listen(16)
            sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            lsock = key.fileobj
            assert isinstance(lsock, socket.socket)
            conn, _ = lsock.accept()
            with conn:
                reply = {"name": name, "port": conn.getsockname()[1], "orig": original_dst(conn)}
                conn.sendall(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    main()
