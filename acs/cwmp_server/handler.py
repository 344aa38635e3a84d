"""aiohttp glue for the CWMP endpoint: read the request, authenticate, delegate, render the reply."""

from __future__ import annotations

import logging

import pymongo
from aiohttp import web
from pymongo.errors import PyMongoError

from acs.cwmp_server.auth import CpeAuthenticator
from acs.cwmp_server.capture import SoapCapture
from acs.cwmp_server.service import COOKIE, CwmpService, Reply
from tasks.store.db import database_unavailable

log = logging.getLogger("acs.cwmp")


class CwmpHandler:
    def __init__(
        self,
        service: CwmpService,
        authenticator: CpeAuthenticator,
        secure_cookie: bool,
        max_requests: int = 128,
        db_timeout: float = 30.0,
        capture: SoapCapture | None = None,
    ) -> None:
        self.service = service
        self.authenticator = authenticator
        self.secure_cookie = secure_cookie
        self.max_requests = max_requests
        self.db_timeout = db_timeout
        self.in_flight = 0
        self.capture = capture  # line 3's SOAP capture of chosen devices (acs/cwmp_server/capture.py)

    async def post(self, request: web.Request) -> web.StreamResponse:
        if self.in_flight >= self.max_requests:
            # A slow or stuck database must not pile up requests (FerretDB 1.24 deadlocks near 50
            # concurrent writers): TR-069 3.4.5, the CPE retries after an HTTP error.
            self.service.metrics.rejected.inc(reason="busy")
            return web.Response(
                status=503, text="too many sessions in progress; retry later\n", headers={"Retry-After": "10"}
            )
        self.in_flight += 1
        try:
            return await self._post(request)
        finally:
            self.in_flight -= 1

    async def _post(self, request: web.Request) -> web.StreamResponse:
        principal = await self.authenticator.authenticate(request)
        if isinstance(principal, web.StreamResponse):
            return principal
        body = await request.read()  # bounded by the application's client_max_size (413 beyond)
        try:
            # Every database operation of the request has a time limit (PyMongo's timeoutMS, sent
            # as maxTimeMS): one device cannot hold the database.
            with pymongo.timeout(self.db_timeout):
                reply = await self.service.handle(
                    body,
                    request.cookies.get(COOKIE),
                    request.remote,
                    request.transport,
                    principal,
                    keep_alive=request.keep_alive,
                )
        except PyMongoError as exc:
            if not database_unavailable(exc):
                raise
            # TR-069 3.4.5: a CPE that gets an HTTP error ends the session and retries later; the
            # session's lease and its tasks are settled by the session reaper.
            log.warning("database unavailable during a CWMP request from %s: %s", request.remote, exc)
            self.service.metrics.rejected.inc(reason="database_unavailable")
            return web.Response(status=503, text="database unavailable; retry later\n", headers={"Retry-After": "30"})
        if reply.challenge:
            return self.authenticator.challenge()
        if self.capture is not None:
            await self.capture.after(request.cookies.get(COOKIE), body, reply.status, reply.body, reply.set_session)
        return self.render(reply)

    async def other(self, request: web.Request) -> web.StreamResponse:
        # TR-069 3.4.1: the CPE talks to the ACS with HTTP POST only.
        return web.Response(status=405, text="CWMP uses HTTP POST\n", headers={"Allow": "POST"})

    def render(self, reply: Reply) -> web.StreamResponse:
        response = web.Response(status=reply.status, body=reply.body or None, headers=reply.headers)
        if reply.content_type:
            response.headers["Content-Type"] = reply.content_type
        if reply.set_session:
            response.set_cookie(COOKIE, reply.set_session, path="/", httponly=True, secure=self.secure_cookie)
        elif reply.clear_session:
            response.del_cookie(COOKIE, path="/")
        return response


def cwmp_routes(handler: CwmpHandler) -> list[web.AbstractRouteDef]:
    return [
        web.post("/", handler.post),
        web.post("/{path:.*}", handler.post),
        web.route("*", "/{path:.*}", handler.other),
    ]
