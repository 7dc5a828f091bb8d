"""The request observer the HTTP layer calls: metrics, access log and a span per request.

``start`` reads the caller's trace context in one pass over the headers and makes this
hop's span (its upstream headers are built once, then reused by every attempt);
``done`` turns the finished ``RequestRecord`` into Istio metric labels, one access log
line and, when sampled, a Zipkin span handed to the exporter's queue, a batch of
requests at a time (within ``BATCH_AFTER``; ``flush`` records what is kept at once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, Final

from proxy.core import names
from proxy.core.names import INBOUND_PASSTHROUGH_CLUSTERS, PASSTHROUGH_CLUSTER
from proxy.http.model import RequestHead, RequestRecord
from proxy.l4.conn import Direction, Intercepted
from proxy.observe.accesslog import AccessLog
from proxy.observe.exporter import ZipkinExporter
from proxy.observe.httplines import HttpLines
from proxy.observe.identity import UNKNOWN, Workload
from proxy.observe.logline import http_entry
from proxy.observe.metrics import Metrics, RequestCells
from proxy.observe.tracecontext import SpanContext, new_span, read_incoming
from proxy.observe.zipkin import build_span

_INBOUND_PASSTHROUGH: Final = frozenset(INBOUND_PASSTHROUGH_CLUSTERS.values())
AccessLogWriter = Callable[[dict[str, Any]], None]
_TRACE_HEADERS: Final = frozenset(
    {
        names.TRACEPARENT,
        names.TRACESTATE,
        names.B3_TRACE_ID,
        names.B3_SPAN_ID,
        names.B3_SAMPLED,
        names.B3_FLAGS,
    }
)
_TRACE_LENGTHS: Final = frozenset(len(name) for name in _TRACE_HEADERS)
_MAX_LABEL_SETS: Final = 4096
BATCH: Final = 32  # finished requests recorded together
BATCH_AFTER: Final = 0.1  # seconds a finished request may wait to be recorded
log = logging.getLogger(__name__)


class Watch:
    """One request as the observer follows it (``proxy.mesh.observer.RequestWatch``):
    this hop's span, the headers it puts on every attempt, and ``done``."""

    __slots__ = ("headers", "observer", "span", "wall_start")

    def __init__(
        self,
        observer: Observer,
        span: SpanContext,
        headers: tuple[tuple[bytes, bytes], ...],
        wall_start: float,
    ) -> None:
        self.observer = observer
        self.span = span
        self.headers = headers
        self.wall_start = wall_start

    def done(self, record: RequestRecord) -> None:
        """Keep the finished request for the observer's next batch (``Observer.keep``);
        inline here, as it runs once per request."""
        observer = self.observer
        pending = observer._pending
        pending.append((self, record, observer.clock()))  # its log line's time
        full = len(pending) >= BATCH
        if observer._soon if full else observer._timer is not None:
            return  # a flush is already on its way
        observer.schedule(full)


class Observer:
    """Implements ``proxy.mesh.observer.RequestObserver`` (structurally): ``start``
    makes each request's ``Watch``, whose ``done`` hands the record back here."""

    def __init__(
        self,
        workload: Workload,
        metrics: Metrics,
        *,
        access_log: AccessLogWriter | None = None,
        exporter: ZipkinExporter | None = None,
        sample_rate: float = 0.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.workload = workload
        self.metrics = metrics
        self.access_log = access_log
        self.exporter = exporter
        self.sample_rate = sample_rate
        self.rng = rng or random.Random()
        self.clock = clock
        self._pid = os.getpid()
        self._lines = HttpLines(self._pid)  # the real access log's line renderer
        self._labels: dict[tuple[object, ...], tuple[str, ...]] = {}
        # The same keys as _labels (from the record alone) -> the service label and the
        # label set's metric cells: one look-up per request for both.
        self._outcomes: dict[tuple[object, ...], tuple[str, RequestCells]] = {}
        self._pending: list[tuple[Watch, RequestRecord, float]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a full batch's flush is scheduled for the loop's next pass
        self.on_flush: Callable[[], None] | None = None  # told after each recorded batch

    def set_tracing(self, exporter: ZipkinExporter | None, sample_rate: float) -> None:
        """A config reload changed ``mesh.tracing``; the caller runs/stops the exporter."""
        self.exporter = exporter
        self.sample_rate = sample_rate if exporter is not None else 0.0

    def start(self, conn: Intercepted, head: RequestHead) -> Watch:
        found: dict[str, str] | None = None  # made for the few requests that carry one
        for key, value in head.headers:
            if len(key) not in _TRACE_LENGTHS:
                continue  # most headers are ruled out without lowercasing them
            name = key.lower()
            if name in _TRACE_HEADERS:
                if found is None:
                    found = {}
                found.setdefault(name.decode(), value.decode("latin-1"))
        incoming = None if found is None else read_incoming(found.get)
        span = new_span(incoming, self.sample_rate, self.rng)
        return Watch(self, span, span.upstream_headers(), self.clock())

    def service_label(self, record: RequestRecord) -> str:
        """A bounded destination_service_name: a configured name, never an address."""
        service = record.service
        inbound = record.conn.direction is Direction.INBOUND
        if inbound and service in _INBOUND_PASSTHROUGH:
            return self.workload.name  # Istio names the local service, not the cluster
        if service and ":" not in service and len(service) <= 253:
            return service
        return self.workload.name if inbound else PASSTHROUGH_CLUSTER

    def labels(self, record: RequestRecord, service: str) -> tuple[str, ...]:
        """Istio's label values, built once per distinct combination (a bounded set)."""
        key = (record.conn.direction, service, record.version, record.status, record.flag)
        labels = self._labels.get(key)
        if labels is None:
            if len(self._labels) >= _MAX_LABEL_SETS:
                self._labels.clear()  # odd statuses piled up: start over rather than grow
            labels = self._labels[key] = self._make_labels(record, service)
        return labels

    def _make_labels(self, record: RequestRecord, service: str) -> tuple[str, ...]:
        inbound = record.conn.direction is Direction.INBOUND
        version = record.version or (self.workload.version if inbound else UNKNOWN)
        return (
            record.conn.direction.reporter,
            UNKNOWN if inbound else self.workload.name,  # no mTLS: the caller is unknown
            service,
            version,
            str(record.status),
            str(record.flag),
            "http",
        )

    def _outcome(self, key: tuple[object, ...], record: RequestRecord) -> tuple[str, RequestCells]:
        """``_record``'s service label and metric cells for ``key`` (bounded like ``labels``)."""
        if len(self._outcomes) >= _MAX_LABEL_SETS:
            self._outcomes.clear()
        service = self.service_label(record)
        cells = self.metrics.cells(self.labels(record, service))
        outcome = self._outcomes[key] = (service, cells)
        return outcome

    def schedule(self, full: bool) -> None:
        """Finished requests wait (``Watch.done``): have them recorded.

        Inside an event loop a request is recorded with up to ``BATCH - 1`` others,
        ``BATCH_AFTER`` seconds later at the latest, or when ``flush`` is called
        (``/metrics`` does, before it renders): the work of a batch runs back to back
        on warm caches instead of between the parse and relay work of each request. A
        full batch is recorded on the loop's next pass, not at once: the response of
        the request that filled it is still held for the end of this pass
        (``proxy.http.outbox``), and must not wait for the batch. Without a running
        loop it is recorded at once.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if full:
            self._soon = True
            loop.call_soon(self._flush_soon)
        else:
            self._timer = loop.call_later(BATCH_AFTER, self._on_timer)

    def _flush_soon(self) -> None:
        self._soon = False
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Record every finished request kept so far."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        access_log = self.access_log
        # The real log takes the batch's lines at once, rendered here: no dict to encode.
        real = access_log if type(access_log) is AccessLog else None
        lines: list[bytes] = []
        for watch, record, finished in pending:
            try:
                self._record(watch, record, finished, real, lines)
            except Exception:  # one bad record must not cost the others their metrics
                log.exception("could not record request %s", record.request_id)
        if lines and real is not None:
            real.extend(lines)
        self.metrics.push()  # the batch's counts reach the registry together
        if pending and self.on_flush is not None:
            self.on_flush()

    def _record(
        self,
        watch: Watch,
        record: RequestRecord,
        finished: float,
        real: AccessLog | None,
        lines: list[bytes],
    ) -> None:
        """Count one request; with the ``real`` access log, its line goes to ``lines``."""
        span = watch.span
        key = (record.conn.direction, record.service, record.version, record.status, record.flag)
        outcome = self._outcomes.get(key)
        if outcome is None:
            outcome = self._outcome(key, record)
        service, cells = outcome
        cells.record(record.duration * 1000.0, record.bytes_received, record.bytes_sent)
        if record.attempts > 1:
            self.metrics.retries.labels(service).inc(record.attempts - 1)
        if real is not None:
            try:
                lines.append(self._lines.line(real.stamp(finished), record, service, span))
            except Exception:  # a bug in one line's renderer must not cost the rest
                real.render_failed()
        elif self.access_log is not None:
            self.access_log(http_entry(record, service, span, self._pid))
        if span.sampled and self.exporter is not None:
            self.exporter.submit(build_span(span, record, self.workload, service, watch.wall_start))
