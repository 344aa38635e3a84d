"""A CPE's connection-request listener for tests: a real HTTP server on 127.0.0.1 demanding Digest.

    listener = CrListener(lambda: ("user", "pass"), on_wake=...)
    await listener.start(); listener.url ... await listener.close()
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from cwmp.httpauth import (
    BasicCredentials,
    DigestCredentials,
    basic_challenge,
    digest_challenge,
    parse_authorization,
    verify_basic,
    verify_digest,
)

REALM = "cpe"


@dataclass
class CrListener:
    credentials: Callable[[], tuple[str, str]]
    on_wake: Callable[[], Awaitable[None]] | None = None
    scheme: str = "digest"  # or "basic"
    requests: int = 0
    answered: int = 0
    nonces: set[str] = field(default_factory=set)
    server: TestServer | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/cr", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/cr"))

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        username, password = self.credentials()
        offered = parse_authorization(request.headers.get("Authorization", ""))
        if isinstance(offered, DigestCredentials) and offered.nonce in self.nonces and offered.username == username:
            ok = verify_digest(offered, "GET", password=password, uri=request.path_qs)
        elif isinstance(offered, BasicCredentials) and self.scheme == "basic":
            ok = verify_basic(offered, username, password)
        else:
            ok = False
        if not ok:
            nonce = secrets.token_hex(8)
            self.nonces.add(nonce)
            challenge = digest_challenge(REALM, nonce) if self.scheme == "digest" else basic_challenge(REALM)
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        self.answered += 1
        if self.on_wake is not None:
            task = asyncio.create_task(self.on_wake())
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return web.Response(status=204)

    async def close(self) -> None:
        for task in list(self.background):
            await task
        if self.server is not None:
            await self.server.close()
