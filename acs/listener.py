"""Connection limits of one listener (CWMP, or API and console): timeouts and a cap.

aiohttp bounds neither the time a new connection may take to send its first request's headers
(before 3.11 a socket that sends nothing is held forever) nor the pauses inside a request body,
and it accepts connections without limit. With one descriptor limit shared by CWMP, API and
console, idle or trickling sockets could stop the server. So every accepted connection is
wrapped (:class:`GuardedConnection`) and watched, with the help of :func:`limits_middleware`:

- headers: the first request's line and headers must arrive within ``header_timeout`` of the
  connection, all of them (a trickle does not extend it); the client gets 408 and the socket is
  closed. For later requests on a kept-alive connection aiohttp's own ``keepalive_timeout``
  bounds the wait, whether the connection is idle or part-way through the next headers;
- body: while a body is arriving, at most ``body_timeout`` between two reads (nginx's
  ``client_body_timeout``); the connection is dropped and the handler sees it lost;
- cap: past ``max_connections`` open connections a new one is answered 503 and closed at once.

A client that goes away part-way through its body is one log line (not a traceback). Over TLS
the handshake is bounded by ``header_timeout`` too, and a connection counts once it is done.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from acs.config import Settings
from acs.metrics import Metrics

log = logging.getLogger("acs.listener")
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 23\r\n\r\ntoo many connections\r\n\r\n"
)
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
REFUSAL_LOG_EVERY = 10.0  # seconds between two "over the cap" log lines of one listener


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings, listener: str) -> ConnectionLimits:
        """The limits of the ``cwmp`` or the ``api`` listener, from the settings."""
        return cls(
            header_timeout=getattr(settings, f"{listener}_header_timeout"),
            body_timeout=getattr(settings, f"{listener}_body_timeout"),
            keepalive_timeout=getattr(settings, f"{listener}_keepalive_timeout"),
            max_connections=getattr(settings, f"{listener}_max_connections"),
        )


class ListenerGuard:
    """The open connections of one listener (in one worker process) and its limits."""

    def __init__(self, name: str, limits: ConnectionLimits, metrics: Metrics | None = None) -> None:
        self.name = name
        self.limits = limits
        self.connections: dict[asyncio.BaseTransport, GuardedConnection] = {}
        self.in_flight = 0  # requests whose handler is running
        registry = metrics or Metrics()
        labels = ("listener",)
        registry.gauge("acs_listener_connections", "Open connections of a listener", labels).track(
            lambda: len(self.connections), listener=name
        )
        registry.gauge("acs_listener_requests_in_flight", "Requests being handled", labels).track(
            lambda: self.in_flight, listener=name
        )
        self._refused = registry.counter("acs_listener_refused_total", "Connections refused: over the cap", labels)
        self._timeouts = registry.counter(
            "acs_listener_timeouts_total", "Connections closed: headers or body too slow", labels
        )
        self.stopping = False
        self._refusal_logged = 0.0
        self._refused_since_log = 0
        self._drained: asyncio.Event | None = None

    def admit(self, connection: GuardedConnection, transport: asyncio.BaseTransport) -> bool:
        if len(self.connections) >= self.limits.max_connections:
            self._refused.inc(listener=self.name)
            self._refused_since_log += 1
            now = time.monotonic()
            if now - self._refusal_logged >= REFUSAL_LOG_EVERY:
                log.warning("%s: %d connection(s) refused: %d open, the cap (max_connections)",
                            self.name, self._refused_since_log, len(self.connections))
                self._refusal_logged, self._refused_since_log = now, 0
            return False
        self.connections[transport] = connection
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        self.connections.pop(transport, None)

    def timed_out(self) -> None:
        self._timeouts.inc(listener=self.name)

    def of(self, request: web.BaseRequest) -> GuardedConnection | None:
        transport = request.transport
        return None if transport is None else self.connections.get(transport)

    def request_started(self) -> None:
        self.in_flight += 1

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._drained is not None:
            self._drained.set()

    async def drain(self, timeout: float) -> bool:
        """At shutdown, after the socket stopped accepting: wait (up to ``timeout``) until no
        request is running, bodies still arriving included (aiohttp's own shutdown stops reading
        them at once); later responses close their connection. True when drained in time."""
        self.stopping = True
        if self.in_flight == 0:
            return True
        self._drained = asyncio.Event()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the listener's timeouts and cap around it."""

    def __init__(self, guard: ListenerGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.admitted = False
        self._timer: asyncio.TimerHandle | None = None
        self._first_headers = True
        self._body_arriving = False

    # -- asyncio's calls, passed on to aiohttp ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (asyncio's, or uvloop's, which is not an asyncio.Transport subclass).
        self.transport = transport = cast(asyncio.Transport, transport)
        if not self.guard.admit(self, transport):
            transport.write(REFUSED)
            transport.close()
            return
        self.admitted = True
        self.inner.connection_made(transport)
        self._arm(self.guard.limits.header_timeout, "request headers")

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        if self._body_arriving:
            self._arm(self.guard.limits.body_timeout, "request body")
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.admitted and self.transport is not None:
            self.guard.release(self.transport)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()

    # -- what the middleware reports ------------------------------------------------------------

    def headers_complete(self) -> None:
        if self._first_headers:
            self._first_headers = False
            self._disarm()

    def body_started(self) -> None:
        self._body_arriving = True
        self._arm(self.guard.limits.body_timeout, "request body")

    def body_complete(self) -> None:
        if self._body_arriving:
            self._body_arriving = False
            self._disarm()

    # -- timers ------------------------------------------------------------------------------

    def _arm(self, seconds: float, waiting_for: str) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expire, seconds, waiting_for)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, seconds: float, waiting_for: str) -> None:
        self._timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.guard.timed_out()
        peer = transport.get_extra_info("peername")
        what = f"complete {waiting_for}" if self._first_headers else f"progress of the {waiting_for}"
        log.info("%s: closing the connection of %s: no %s within %.0f s", self.guard.name, peer[0] if peer else "?",
                 what, seconds)
        if self._first_headers:
            transport.write(TIMED_OUT)  # nothing else was written on this connection yet
            transport.close()
        else:
            transport.abort()  # a handler is reading the body: it sees the connection lost


class GuardedSite(web.BaseSite):
    """A listening socket whose connections go through a :class:`ListenerGuard`."""

    __slots__ = ("_guard", "_name", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        guard: ListenerGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._sock = sock
        self._guard = guard
        host, port = sock.getsockname()[:2]
        self._name = str(URL.build(scheme="https" if ssl_context else "http", host=host, port=port))

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        guard = self._guard

        def protocol() -> asyncio.Protocol:
            return GuardedConnection(guard, server())

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol,
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=guard.limits.header_timeout if self._ssl_context else None,
        )


GUARD = web.AppKey("listener_guard", ListenerGuard)


def limits_middleware() -> Any:
    """Tells the connection's guard that headers are in and whether a body is arriving, counts the
    requests running, and turns a client that went away mid-body into one log line."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        guard = request.app.get(GUARD)
        if guard is None:
            return await _answer(request, handler)
        connection = guard.of(request)
        if connection is not None:
            connection.headers_complete()
            if request.body_exists and not request.content.is_eof():
                connection.body_started()
                request.content.on_eof(connection.body_complete)
        guard.request_started()
        try:
            response = await _answer(request, handler)
        finally:
            guard.request_finished()
        if guard.stopping:
            response.force_close()  # shutting down: no next request on this connection
        return response

    return middleware


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConnectionResetError:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            raise
        log.info("%s %s from %s: the client went away while sending the body", request.method, request.path,
                 request.remote)
        raise web.HTTPBadRequest(reason="client went away") from None
