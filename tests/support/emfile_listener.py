"""A capture listener in a process with few descriptors, for the EMFILE test.

``python -m tests.support.emfile_listener NOFILE`` lowers its own ``RLIMIT_NOFILE`` to
NOFILE, serves an echo upstream behind the real ``InterceptListener`` (no connection
cap, so ``accept`` itself runs out of descriptors) on the proxy's event loop, prints the
listener's port, and exits when its stdin closes.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.observe.metrics import TcpMetrics
from proxy.process import loop
from tests.support.listener_front import with_listener


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def serve(port: int, _: int, __: TcpMetrics, ___: CollectorRegistry, ____: list[Any]) -> None:
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main() -> None:
    nofile = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    loop.run(with_listener(echo, serve))


if __name__ == "__main__":
    main()
