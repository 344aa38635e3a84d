"""A minimal in-process ACS for simulator tests: InformResponse, queued RPCs, then 204.

Sets a session cookie and, optionally, demands HTTP Digest or Basic auth, so the simulator's
cookie echo and authentication run over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import web

from cwmp import Envelope, Inform, InformResponse, TransferComplete, TransferCompleteResponse, parse, serialize
from cwmp.httpauth import (
    BasicCredentials,
    DigestCredentials,
    basic_challenge,
    digest_challenge,
    parse_authorization,
    verify_basic,
    verify_digest,
)
from cwmp.models import CwmpModel

USER, PASSWORD = "acs-user", "acs-secret"


@dataclass
class FakeAcs:
    auth: str = "none"  # none | basic | digest
    use_cwmp_version: str | None = None
    queued: dict[str, list[CwmpModel]] = field(default_factory=lambda: defaultdict(list))
    informs: list[tuple[Envelope, str | None]] = field(default_factory=list)  # (envelope, cookie)
    responses: dict[str, list[CwmpModel]] = field(default_factory=lambda: defaultdict(list))
    transfer_completes: list[TransferComplete] = field(default_factory=list)
    cookies_seen: list[str | None] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)  # cookie -> serial
    url: str = ""
    busy: int = 0  # the next `busy` requests are answered 503 (with `retry_after` when set)
    retry_after: str | None = None
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, request: web.Request) -> bool:
        if self.auth == "none":
            return True
        credentials = parse_authorization(request.headers.get("Authorization", ""))
        if isinstance(credentials, BasicCredentials) and self.auth == "basic":
            return verify_basic(credentials, USER, PASSWORD)
        if isinstance(credentials, DigestCredentials) and self.auth == "digest":
            return verify_digest(credentials, "POST", password=PASSWORD)
        return False

    async def _handle(self, request: web.Request) -> web.Response:
        if self.busy > 0:
            self.busy -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return web.Response(status=503, text="busy\n", headers=headers)
        if not self._authorized(request):
            challenge = (
                basic_challenge("acs") if self.auth == "basic" else digest_challenge("acs", secrets.token_hex(8))
            )
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        body = await request.read()
        cookie = request.cookies.get("session")
        self.cookies_seen.append(cookie)
        if not body.strip():
            return self._next_request(cookie)
        envelope = parse(body)
        if isinstance(envelope.body, Inform):
            return self._inform(envelope)
        serial = self.sessions.get(cookie or "", "")
        if isinstance(envelope.body, TransferComplete):
            self.transfer_completes.append(envelope.body)
            return self._reply(TransferCompleteResponse(), envelope)
        self.responses[serial].append(envelope.body)
        return self._next_request(cookie, envelope)

    def _inform(self, envelope: Envelope) -> web.Response:
        assert isinstance(envelope.body, Inform)
        cookie = secrets.token_hex(8)
        self.sessions[cookie] = envelope.body.device_id.serial_number
        self.informs.append((envelope, cookie))
        response = self._reply(InformResponse(), envelope, use_version=self.use_cwmp_version)
        response.set_cookie("session", cookie)
        return response

    def _next_request(self, cookie: str | None, previous: Envelope | None = None) -> web.Response:
        serial = self.sessions.get(cookie or "", "")
        if not self.queued[serial]:
            return web.Response(status=204)
        version = previous.version if previous is not None else self._version_of(serial)
        envelope = Envelope(id=secrets.token_hex(4), body=self.queued[serial].pop(0), version=version)  # type: ignore[arg-type]
        return web.Response(body=serialize(envelope), content_type="text/xml")

    def _version_of(self, serial: str) -> object:
        for envelope, _ in reversed(self.informs):
            if isinstance(envelope.body, Inform) and envelope.body.device_id.serial_number == serial:
                return envelope.version
        raise AssertionError(f"no inform from {serial}")

    def _reply(self, body: CwmpModel, request: Envelope, use_version: str | None = None) -> web.Response:
        envelope = Envelope(id=request.id, body=body, version=request.version, use_cwmp_version=use_version)  # type: ignore[arg-type]
        return web.Response(body=serialize(envelope), content_type="text/xml")

    def events_of(self, serial: str) -> list[list[str]]:
        return [
            [e.event_code for e in env.body.events]
            for env, _ in self.informs
            if isinstance(env.body, Inform) and env.body.device_id.serial_number == serial
        ]
