"""The console served by aiohttp's test server on the API application, over the test's own database.

    console.services                 the Services behind it (real repositories)
    await console.login("operator")  an aiohttp session logged in as that role's user; .csrf holds its token
    await console.device("SERIAL")   a device recorded as by an Inform; returns its device_id
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from acs.app import create_api_app
from acs.config import Settings
from acs.console.web import CONSOLE
from acs.services import Services, build_services
from cwmp.device_id import make_device_id
from schemas.api import Role
from tasks.store.db import Database
from tests.support.mongo import MongoDocument

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class LoggedIn:
    http: aiohttp.ClientSession
    csrf: str


@dataclass
class ConsoleHarness:
    services: Services
    server: TestServer
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def client(self) -> aiohttp.ClientSession:
        # unsafe: accept cookies from an IP-address host (127.0.0.1).
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(session)
        return session

    async def login_form(self, http: aiohttp.ClientSession) -> str:
        async with http.get(self.url("/login")) as response:
            match = CSRF_FIELD.search(await response.text())
        assert match is not None
        return match.group(1)

    async def login(self, role: str, username: str | None = None, password: str = PASSWORD) -> LoggedIn:
        http = self.client()
        token = await self.login_form(http)
        form = {"username": username or f"u-{role}", "password": password, "csrf": token}
        async with http.post(self.url("/login"), data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        async with http.get(self.url("/")) as response:
            page = await response.text()
        match = CSRF_FIELD.search(page)
        assert match is not None
        return LoggedIn(http, match.group(1))

    async def device(self, serial: str, *, online: bool = True, **state: Any) -> str:
        device_id = make_device_id("00E0FC", "HG8245H", serial)
        now = self.services.clock()
        identity = {"oui": "00E0FC", "product_class": "HG8245H", "serial_number": serial, "manufacturer": "Huawei"}
        fields = {"software_version": "V1", "remote_ip": "10.1.2.3", "last_events": ["1 BOOT"],
                  "offline_after": now + (timedelta(minutes=10) if online else -timedelta(minutes=10)),
                  "presence": "online" if online else "offline", **state}
        await self.services.repositories.devices.record_inform(device_id, identity, fields, now)
        return device_id

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


@pytest.fixture
async def console(
    mongo_client: AsyncMongoClient[MongoDocument], mongo_db: AsyncDatabase[MongoDocument], tmp_path: Path
) -> AsyncIterator[ConsoleHarness]:
    settings = Settings(data_dir=tmp_path, connection_request_timeout=0.5, connection_request_attempts=1)
    services = build_services(settings, Database(client=mongo_client, db=mongo_db), lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_api_app(services), host="127.0.0.1")
    await server.start_server()
    accounts = server.app[CONSOLE].accounts
    for role in Role:
        await accounts.create(f"u-{role.value}", PASSWORD, role, "test")
    harness = ConsoleHarness(services, server)
    try:
        yield harness
    finally:
        await harness.close()
        await server.close()
