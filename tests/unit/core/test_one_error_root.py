"""Every error the proxy raises on purpose shares one root, ``proxy.core.errors.ProxyError``.

The CLI turns a ``ProxyError`` into exit code 1 with its message (``UsageError``: 2),
so an error type outside the tree would surface as a traceback instead.
"""

from __future__ import annotations

import pytest

from proxy.admin.httpmini import AdminRequestError
from proxy.config import ConfigError
from proxy.core.errors import (
    DialError,
    OriginalDstError,
    PrivilegeError,
    ProxyError,
    UsageError,
)
from proxy.http.errors import UpstreamConnectError
from proxy.inject.documents import InjectError
from proxy.k8s.objects import InputError
from proxy.observe.exporter import ExportError
from proxy.process.sockets import ListenError


@pytest.mark.parametrize(
    "error",
    [
        AdminRequestError("bad request line"),
        ConfigError(["services[0].port: missing"]),
        ExportError("collector answered 500"),
        InjectError("no pod template"),
        InputError("not YAML/JSON"),
        ListenError("cannot listen"),
        OriginalDstError("no conntrack entry"),
        PrivilegeError("cannot switch"),
        DialError("refused", "refused"),
        UpstreamConnectError("connect to 10.0.0.1:80: refused", "refused"),
        UsageError("bad flag"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_derives_from_the_one_root(error: Exception) -> None:
    with pytest.raises(ProxyError) as caught:
        raise error
    assert caught.value is error
