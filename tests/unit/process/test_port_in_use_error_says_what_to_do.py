"""A sidecar port that is taken fails the bind with an error that names the fix."""

from __future__ import annotations

import socket

import pytest

from proxy.process.sockets import ListenError, bind_listener


def test_a_taken_port_names_the_sysctl_and_the_port() -> None:
    with socket.socket() as holder:  # no SO_REUSEADDR/SO_REUSEPORT: nothing may share it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            bind_listener(port, "127.0.0.1")
    text = str(caught.value)
    assert text.startswith(f"cannot listen on 127.0.0.1:{port}: Address already in use. ")
    assert "net.ipv4.ip_local_reserved_ports" in text and f"(include {port};" in text


def test_other_bind_errors_carry_no_such_hint() -> None:
    with pytest.raises(ListenError) as caught:
        bind_listener(1, "192.0.2.1")  # not an address of this host
    assert "ip_local_reserved_ports" not in str(caught.value)
