"""Connection-request listener for the whole fleet: one port, one path per device (TR-069 3.2.2).

`GET /cr/<serial>` with HTTP Digest authentication against the device's own
ManagementServer.ConnectionRequestUsername / ConnectionRequestPassword (which the ACS may change).
Nonces are stateless: an HMAC of the serial and issue time with a per-listener key, valid for
NONCE_LIFETIME seconds, so 10,000 devices need no nonce table.

Every Digest exchange starts with a 401 (RFC 7616 3.3: the client learns the nonce from the
challenge), so the stats count that first leg apart (``challenged``) from credentials that were
sent and refused (``unauthorized``): only the latter is a failed connection request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from acs.sim.device import SimDevice
from cwmp.httpauth import DigestCredentials, digest_challenge, parse_authorization, verify_digest

NONCE_LIFETIME = 300.0
REALM = "CPE Connection Request"
Verdict = Literal["ok", "challenge", "stale", "refused"]


@dataclass
class CrStats:
    accepted: int = 0
    ignored_in_session: int = 0
    challenged: int = 0  # no Digest answer for us yet (or a stale nonce): the handshake's first 401
    unauthorized: int = 0  # Digest credentials sent and wrong: the request is refused
    unreachable: int = 0


class NonceIssuer:
    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        self._key = key
        self._clock = clock

    def issue(self, serial: str) -> str:
        issued = f"{int(self._clock()):x}"
        return issued + "-" + self._sign(serial, issued)

    def valid(self, serial: str, nonce: str) -> bool:
        issued, _, signature = nonce.partition("-")
        try:
            age = self._clock() - int(issued, 16)
        except ValueError:
            return False
        fresh = 0 <= age <= NONCE_LIFETIME
        return fresh and hmac.compare_digest(signature, self._sign(serial, issued))

    def _sign(self, serial: str, issued: str) -> str:
        return hmac.new(self._key, f"{serial}:{issued}".encode(), hashlib.sha256).hexdigest()[:32]


class ConnectionRequestListener:
    """aiohttp server; `on_request(device)` is called for every accepted, authenticated request."""

    def __init__(
        self,
        devices: Callable[[str], SimDevice | None],
        on_request: Callable[[SimDevice], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._devices = devices
        self._on_request = on_request
        self._clock = clock
        self._nonces = NonceIssuer(secrets.token_bytes(32), clock)
        self._runner: web.AppRunner | None = None
        self.stats = CrStats()
        self.port = 0

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cr/{serial}", self._handle)
        return app

    async def start(self, host: str, port: int) -> int:
        self._runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        serial = request.match_info["serial"]
        device = self._devices(serial)
        if device is None:
            raise web.HTTPNotFound(text="no such device")
        if not device.online:
            # A powered-off CPE (or one behind a dead OLT) does not answer at all.
            self.stats.unreachable += 1
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        verdict = self._verdict(request, device)
        if verdict != "ok":
            if verdict == "refused":
                self.stats.unauthorized += 1
            else:
                self.stats.challenged += 1
            challenge = digest_challenge(REALM, self._nonces.issue(serial), stale=verdict == "stale")
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": challenge})
        if device.in_session:
            self.stats.ignored_in_session += 1  # TR-069 3.2.2: ignored during a session
        elif self._on_request(device):
            self.stats.accepted += 1
        return web.Response(status=200)

    def _verdict(self, request: web.Request, device: SimDevice) -> Verdict:
        """"ok"; "challenge": no Digest answer to our challenge yet; "stale": a good answer to an
        expired nonce (RFC 7616 3.3: stale=true, retry without asking the user); "refused"."""
        credentials = parse_authorization(request.headers.get("Authorization", ""))
        if not isinstance(credentials, DigestCredentials) or credentials.realm != REALM:
            return "challenge"
        username = device.read(device.param("ManagementServer.ConnectionRequestUsername"), self._clock())
        password = device.read(device.param("ManagementServer.ConnectionRequestPassword"), self._clock())
        if credentials.username != username:
            return "refused"
        if not verify_digest(credentials, "GET", password=password or "", uri=request.path_qs):
            return "refused"
        return "ok" if self._nonces.valid(device.serial, credentials.nonce) else "stale"
