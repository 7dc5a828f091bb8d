"""``HttpProxy``: serves one intercepted HTTP/1.x client connection.

Requests are read through a codec (server role); the ``Forwarder`` the engine was
handed plans each one and runs its attempts through an ``Exchange``; the loop goes
on while the codec says both sides keep the connection alive.
This is the error boundary: every typed error becomes a status code, an Envoy flag
and a short text body here, and each request's record goes back to its forwarder once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from proxy.core.flags import Flag
from proxy.core.names import REQUEST_ID
from proxy.http.codec import END, NEED_DATA, CodecFactory, H11Codec, ProtocolError, Request
from proxy.http.downstream import Downstream, RequestBody, translate_protocol_error
from proxy.http.errors import (
    DownstreamDisconnect,
    DownstreamError,
    HttpProxyError,
    RequestBodyTooLarge,
    RequestHeadTooLarge,
    ResponseAbortedError,
    UpstreamError,
    UpstreamResetError,
    canned_close_response,
    error_text,
    reason,
)
from proxy.http.exchange import Exchange
from proxy.http.headers import RequestFacts, rewrite_request
from proxy.http.model import Forwarder, Forwarding, Limits, RequestHead, RequestRecord
from proxy.http.outbox import Outbox
from proxy.http.requestid import new_request_id
from proxy.l4.conn import Intercepted
from proxy.policy.overload import Overload

_CLOSE_GRACE: Final = 5.0  # seconds a closing client gets to read what is still buffered
_DRAIN_IDLE_GRACE: Final = 0.5  # seconds an idle connection stays open once a drain began


class HttpProxy:
    """A ``proxy.l4.conn.ConnectionHandler`` for HTTP/1.x connections."""

    def __init__(
        self,
        forwarder: Forwarder,
        limits: Limits | None = None,
        *,
        new_request_id: Callable[[], str] = new_request_id,  # no syscall, unlike uuid4
        codec: CodecFactory = H11Codec,
        overload: Overload | None = None,
    ) -> None:
        self.codec = codec
        self.forwarder = forwarder
        self.limits = limits or Limits()
        # The worker's overload guard: buffers report to it, requests are refused
        # (503 OM) while it is over its buffered-bytes cap.
        self.overload = overload
        self._new_request_id = new_request_id
        self.outbox: Outbox | None = None  # one per loop: a pass's writes go out together
        self.draining = False
        self._live: set[Downstream] = set()  # client connections being served

    def drain(self) -> None:
        """Graceful drain (Envoy's for HTTP/1): a request in progress ends with a response
        that says ``Connection: close``, so the client sends nothing more on it. A
        connection idle between requests is closed after ``_DRAIN_IDLE_GRACE``: its
        client may have sent its next request already, on the strength of a response
        relayed just before the drain; that request is still answered, with close."""
        self.draining = True
        for down in list(self._live):
            down.closing = True
            if down.idle:
                # Its pending read then sees end-of-file: the loop ends.
                down.deadline.set_in(_DRAIN_IDLE_GRACE)

    async def __call__(
        self,
        conn: Intercepted,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        initial: bytes,
    ) -> None:
        limits = self.limits
        outbox = self.outbox
        loop = asyncio.get_running_loop()
        if outbox is None or outbox.loop is not loop:
            outbox = self.outbox = Outbox(loop)
        overload = self.overload
        read_size = limits.read_size
        if overload is not None:  # the config in force when the connection came
            read_size = overload.limits.per_connection_buffer_bytes
        down = Downstream(
            reader,
            writer,
            outbox,
            self.codec,
            max_head=limits.max_request_head_bytes,
            read_size=read_size,
            idle_timeout=limits.downstream_idle_timeout,
            head_timeout=limits.request_headers_timeout,
            initial=initial,
            budget=overload,
        )
        codec, wire = down.codec, down.wire
        idle_timeout = limits.downstream_idle_timeout
        down.closing = self.draining
        live = self._live
        live.add(down)
        try:
            while True:
                try:
                    if not codec.buffered and not wire.eof:
                        down.idle = True
                        # Draining, after a response that went out without ``close``:
                        # its client may still send one request, answered with close.
                        wait = _DRAIN_IDLE_GRACE if down.closing else idle_timeout
                        await down.receive(wait)  # skip a parse
                        down.idle = False
                    try:  # usually the whole head is here
                        event = codec.next_event()
                    except ProtocolError as fault:  # not ``exc``: mypyc types a name once
                        raise translate_protocol_error(fault) from fault
                    if event is NEED_DATA:
                        event = await down.next_event()
                except DownstreamDisconnect:
                    return
                except DownstreamError as exc:
                    self._refuse(conn, down, exc)
                    return
                if type(event) is not Request:
                    return  # CLOSED: the client is done
                if overload is not None and overload.overloaded:
                    self._shed(conn, down, event, overload)
                    return
                if not await self._serve(conn, down, event):
                    return
                if not codec.next_message():
                    return
        finally:
            live.discard(down)
            down.close_timers()
            down.close()  # sends what is held and buffered, then FIN
            try:
                async with asyncio.timeout(_CLOSE_GRACE):
                    await down.wire.wait_closed()
            except (OSError, TimeoutError):
                down.transport.abort()  # a client that stopped reading gets a reset

    def _refuse(self, conn: Intercepted, down: Downstream, exc: DownstreamError) -> None:
        """Answer a request the codec refused, then the connection closes."""
        text = error_text(exc.status, exc.flag, str(exc))
        down.write(canned_close_response(exc.status, text))
        now = asyncio.get_running_loop().time()
        self.forwarder.refused(
            RequestRecord(
                conn=conn,
                request_id="",
                method="",
                path="",
                authority="",
                http_version="",
                status=exc.status,
                flag=exc.flag,
                service="",
                version="",
                endpoint=None,
                bytes_received=0,
                bytes_sent=len(text),
                start=now,
                duration=0.0,
                upstream_latency=None,
                attempts=0,
                upgraded=False,
            )
        )

    def _shed(
        self, conn: Intercepted, down: Downstream, request: Request, overload: Overload
    ) -> None:
        """Envoy's ``stop_accepting_requests`` overload action: 503 ``OM``, then close
        (the body, if any, is not read: the connection cannot carry another request)."""
        overload.refuse_request()
        detail = "the proxy is overloaded: too many bytes buffered"
        text = error_text(503, Flag.OVERLOAD_MANAGER, detail)
        self._reply(down, request.method, 503, text, close=True)
        now = down.loop.time()
        host = b""
        for _, lower, value in request.items:
            if lower == b"host":
                host = value
                break
        self.forwarder.refused(
            RequestRecord(
                conn,
                "",
                request.method.decode("latin-1"),
                request.target.decode("latin-1"),
                host.decode("latin-1"),
                request.version.decode("latin-1"),
                503,
                Flag.OVERLOAD_MANAGER,
                "",
                "",
                None,
                0,
                len(text),
                now,
                0.0,
                None,
                0,
                False,
            )
        )

    async def _serve(self, conn: Intercepted, down: Downstream, request: Request) -> bool:
        """Handle one request; False when the client connection must close afterwards."""
        limits = self.limits
        start = down.loop.time()
        facts = RequestFacts()
        headers = rewrite_request(request.items, facts)
        request_id = facts.request_id.decode("latin-1")
        if not request_id:
            request_id = self._new_request_id()
            headers.append((REQUEST_ID, request_id.encode("ascii")))
        if not facts.host:
            # HTTP/1.0 may omit Host; HTTP/1.1 upstreams require it.
            host, port = conn.original_dst
            host = f"[{host}]" if ":" in host else host  # an IPv6 literal
            headers.append((b"Host", f"{host}:{port}".encode("latin-1")))
        head = RequestHead(  # method, path, authority, version, id, headers (positional)
            request.method.decode("latin-1"),
            request.target.decode("latin-1"),
            facts.host.decode("latin-1"),
            request.version.decode("latin-1"),
            request_id,
            tuple(headers),
        )
        body = RequestBody(
            down, limit=limits.max_request_body_bytes, keep_limit=limits.retry_buffer_bytes
        )
        exchange: Exchange | None = None
        plan: Forwarding | None = None
        status, flag, keep, service = 0, Flag.NONE, True, ""  # a local reply names no service
        try:
            if facts.head_size + len(request.target) > limits.max_request_head_bytes:
                raise RequestHeadTooLarge("request line and headers are too large")
            limit = limits.max_request_body_bytes
            if limit is not None and (facts.content_length or 0) > limit:
                raise RequestBodyTooLarge(f"request body exceeds {limit} bytes")
            body.take_buffered()
            plan = self.forwarder.start(conn, head)
            reply = plan.reply
            if reply is None:
                exchange = Exchange(down, limits, request, headers, body)
                service = plan.service
                await plan.run(exchange)
                status = exchange.status
                if status:
                    # A body nobody read to its end: the client may still be sending it.
                    keep, flag = exchange.keep_client and body.complete, plan.flag
                else:  # no attempt: the forwarding chose to answer after all
                    reply = plan.reply
                    if reply is None:
                        raise UpstreamResetError("the forwarder made no attempt and no reply")
            if reply is not None:
                status, flag = reply.status, reply.flag
                text = reply.body or error_text(status, flag)
                keep = self._reply(down, request.method, status, text, close=not body.complete)
        except ResponseAbortedError as aborted:  # one name, one type (mypyc)
            status, flag, keep = exchange.status if exchange else 0, aborted.cause.flag, False
        except DownstreamDisconnect as gone:
            status, flag, keep = exchange.status if exchange else 0, gone.flag, False
        except HttpProxyError as exc:
            flag, keep = exc.flag, False
            if exchange is not None and exchange.committed:
                status = exchange.status
            else:
                status = exc.status
                close = not body.complete or not isinstance(exc, UpstreamError)
                keep = self._reply(
                    down, request.method, status, error_text(status, exc.flag, str(exc)), close
                )
        finally:
            if not keep:
                down.close()
        loop_now = down.loop.time()
        # Positional, in RequestRecord's field order: passing 18 keywords costs this
        # path about half a microsecond per request.
        record = RequestRecord(
            conn,
            request_id,
            head.method,
            head.path,
            head.authority,
            head.http_version,
            status,
            flag,
            service,
            plan.version if plan else "",
            exchange.endpoint if exchange else None,
            body.received,  # bytes_received
            exchange.bytes_sent if exchange else 0,
            start,
            loop_now - start,  # duration
            exchange.upstream_latency if exchange else None,
            exchange.attempts if exchange else 0,
            exchange.upgraded if exchange else False,
        )
        if plan is None:
            self.forwarder.refused(record)  # refused before it could be routed
        else:
            plan.done(record)
        return keep

    def _reply(
        self, down: Downstream, method: bytes, status: int, text: bytes, close: bool
    ) -> bool:
        """Send a locally generated response; False when the connection must close."""
        codec = down.codec
        headers = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", b"%d" % len(text)),
        ]
        if close or down.closing:
            close = True
            headers.append((b"Connection", b"close"))
        parts: list[bytes] = []
        try:
            codec.send_local(status, reason(status), headers, parts)
            if method != b"HEAD":
                codec.send_data(text, parts)
            codec.send_end(END, parts)
        except ProtocolError:
            # The codec cannot answer in this state (e.g. a 100 Continue went out
            # already and the client still sends): end the connection without one.
            return False
        down.write(b"".join(parts))
        return not close  # else the codec judges keep-alive (next_message)
