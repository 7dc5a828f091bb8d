"""Ships spans to a Zipkin collector without ever holding up a request.

Requests only append to a bounded queue (overflow is dropped and counted); one task
POSTs batches of Zipkin v2 JSON over a fresh HTTP/1.1 connection with a hard timeout,
so an unreachable or slow collector costs a counter and nothing else. Failed batches
are dropped, not retried: spans are best-effort, like Envoy's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from proxy.core.errors import ProxyError, UsageError
from proxy.observe.metrics import Metrics

log = logging.getLogger("proxy.observe.exporter")


@dataclass(frozen=True)
class CollectorUrl:
    host: str
    port: int
    path: str
    tls: bool

    @classmethod
    def parse(cls, url: str) -> CollectorUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"zipkin_url {url!r} is not an http(s) URL")
        tls = parts.scheme == "https"
        try:
            port = parts.port or (443 if tls else 80)
        except ValueError as e:
            raise UsageError(f"zipkin_url {url!r}: {e}") from e
        return cls(parts.hostname, port, parts.path or "/", tls)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class ExportError(ProxyError):
    """The collector could not be reached or did not answer 2xx."""


class ZipkinExporter:
    def __init__(
        self,
        url: CollectorUrl,
        metrics: Metrics,
        *,
        max_queue: int = 2048,
        batch: int = 256,
        interval: float = 1.0,
        timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.metrics = metrics
        self.max_queue = max_queue
        self.batch = batch
        self.interval = interval
        self.timeout = timeout
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._closing = False

    def submit(self, span: dict[str, Any]) -> None:
        """Never blocks: a full queue drops the span (counted)."""
        if len(self._queue) >= self.max_queue:
            self.metrics.spans_dropped.labels("queue_full").inc()
            return
        self._queue.append(span)
        if len(self._queue) == 1 or len(self._queue) >= self.batch:
            self._wake.set()  # the first span ends the idle wait; a full batch goes now

    async def run(self) -> None:
        """The exporter task: a batch ``interval`` after its first span or as soon as it
        is full; with nothing queued it waits without a timer (an idle sidecar)."""
        while not self._closing or self._queue:
            if not self._queue and not self._closing:
                await self._wake.wait()
                self._wake.clear()
                continue
            if not self._closing and len(self._queue) < self.batch:
                try:
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            if self._queue:
                await self._send_batch()

    def close(self) -> None:
        """Send what is queued (each batch still bounded by the timeout), then stop."""
        self._closing = True
        self._wake.set()

    async def _send_batch(self) -> None:
        spans = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
        try:
            async with asyncio.timeout(self.timeout):
                await self._post(json.dumps(spans, separators=(",", ":")).encode())
        except (OSError, TimeoutError, ExportError) as e:
            self.metrics.spans_dropped.labels("export_failed").inc(len(spans))
            log.debug("zipkin export of %d spans failed: %s", len(spans), e)
            return
        self.metrics.spans_exported.inc(len(spans))

    async def _post(self, body: bytes) -> None:
        url = self.url
        reader, writer = await asyncio.open_connection(url.host, url.port, ssl=url.tls or None)
        try:
            head = (
                f"POST {url.path} HTTP/1.1\r\nHost: {url.authority}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[1].startswith(b"2"):
                raise ExportError(f"collector answered {status_line[:80]!r}")
        finally:
            writer.transport.abort()  # Connection: close; the body is not needed
