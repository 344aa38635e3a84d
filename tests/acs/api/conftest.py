"""An operator API served on 127.0.0.1 by aiohttp's test server, over the test's own database.

    api.services          the Services behind it (real repositories on FerretDB/MongoDB)
    api.as_role("viewer") an aiohttp session sending that role's token
    api.url(path)         absolute URL
    await api.device("SERIAL")   a device recorded as by an Inform; returns its device_id
"""

from __future__ import annotations

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

from acs.app import create_api_app, create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from cwmp.device_id import make_device_id
from schemas.api import Role
from tasks.store.db import Database
from tests.support.mongo import MongoDocument

ROLES = [role.value for role in Role]


@dataclass
class ApiHarness:
    services: Services
    server: TestServer
    cwmp_server: TestServer
    tokens: dict[str, str] = field(default_factory=dict)
    sessions: dict[str | None, aiohttp.ClientSession] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def cwmp_url(self) -> str:
        return str(self.cwmp_server.make_url("/"))

    def as_role(self, role: str | None) -> aiohttp.ClientSession:
        """A client session sending the token of ``role`` (None: no Authorization header)."""
        if role not in self.sessions:
            headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
            self.sessions[role] = aiohttp.ClientSession(headers=headers)
        return self.sessions[role]

    async def call(self, method: str, path: str, role: str | None = "admin", **kwargs: Any) -> tuple[int, Any]:
        async with self.as_role(role).request(method, self.url(path), **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body

    async def device(self, serial: str, *, product_class: str = "HG8245H", oui: str = "00E0FC",
                     online: bool = True, **state: Any) -> str:
        device_id = make_device_id(oui, product_class, serial)
        now = self.services.clock()
        identity = {"oui": oui, "product_class": product_class, "serial_number": serial, "manufacturer": "Test"}
        offline_after = now + (timedelta(minutes=10) if online else -timedelta(minutes=10))
        fields = {"software_version": "V1.0", "remote_ip": "127.0.0.1", "last_events": ["1 BOOT"],
                  "offline_after": offline_after, "presence": "online" if online else "offline", **state}
        await self.services.repositories.devices.record_inform(device_id, identity, fields, now)
        return device_id

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()


@pytest.fixture
async def api(
    mongo_client: AsyncMongoClient[MongoDocument], mongo_db: AsyncDatabase[MongoDocument], tmp_path: Path
) -> AsyncIterator[ApiHarness]:
    settings = Settings(data_dir=tmp_path, connection_request_timeout=1.0, connection_request_attempts=2)
    services = build_services(settings, Database(client=mongo_client, db=mongo_db), lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_api_app(services), host="127.0.0.1")
    cwmp_server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    await cwmp_server.start_server()
    harness = ApiHarness(services, server, cwmp_server)
    from acs.api.context import API

    authority = server.app[API].auth
    for role in Role:
        token, _ = await authority.create(f"test-{role.value}", role, "test")
        harness.tokens[role.value] = token
    try:
        yield harness
    finally:
        await harness.close()
        await server.close()
        await cwmp_server.close()
