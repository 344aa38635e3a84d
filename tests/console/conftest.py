"""The console served by aiohttp's test server on the API application, over the test's own database.

    console.services                 the Services behind it (real repositories)
    await console.login("operator")  an aiohttp session logged in as that role's user; .csrf holds its token
    await console.device("SERIAL")   a device recorded as by an Inform; returns its device_id
    night_upgrade                    a running campaign over four devices (the campaign pages' tests)
    await open_version_incident(...) the incident of the version that campaign installs
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
from tasks.campaigns.service import CampaignService
from tasks.store.db import Database
from tasks.store.files import NewFile
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


@dataclass(frozen=True)
class NightUpgrade:
    """A running campaign ("night upgrade": HG8245H to V2, a canary of 2 then the rest) over four
    devices, the first of which failed its transfer."""

    campaign_id: str
    devices: list[str]


@pytest.fixture
async def night_upgrade(console: ConsoleHarness) -> NightUpgrade:
    devices = [await console.device(f"HW{n:04d}") for n in range(4)]
    repositories = console.services.repositories
    now = datetime.now(UTC)

    async def content() -> AsyncIterator[bytes]:
        yield b"image"

    stored = await repositories.files.put(content(), NewFile("HG8245H-V2.bin", "1 Firmware Upgrade Image",
                                                             "application/octet-stream", "test"), now, 1000)
    image = await repositories.firmware.add(stored, "V2", ["HG8245H"], None, "test", now)
    service = CampaignService(repositories.campaigns, repositories.firmware, repositories.devices,
                              console.services.clock)
    campaign = await service.create({
        "name": "night upgrade", "target": {"product_classes": ["HG8245H"]}, "images": {"HG8245H": image["_id"]},
        "waves": [{"devices": 2}, {"percent": 100}], "concurrency": 10, "rate": 60, "windows": [],
        "time_zone": "Europe/Moscow", "stop_rules": {"max_failed_share": 0.2, "max_health_regression": 0.2,
                                                     "min_devices": 3, "return_timeout": 900, "health_settle": 60,
                                                     "health_timeout": 1800}}, "test")
    members = console.services.database.collection("campaign_devices")
    await members.update_one({"_id": f"{campaign['_id']}#{devices[0]}"},
                             {"$set": {"state": "failed", "reason": "TransferComplete fault 9010: HTTP 500"}})
    return NightUpgrade(campaign["_id"], devices)


async def open_version_incident(console: ConsoleHarness, upgrade: NightUpgrade) -> str:
    """The open incident of software version V2 on HG8245H (the version the campaign installs), with
    the campaign's first two devices in it."""
    now = datetime.now(UTC)
    incident_id = await console.services.repositories.incidents.open({
        "key": "software_version:HG8245H V2", "dimension": "software_version", "value": "HG8245H V2",
        "title": "Software version V2 (HG8245H)", "cause": "software version V2", "selector": [], "opened_at": now,
        "updated_at": now, "members": upgrade.devices[:2], "member_count": 2, "affected_now": 2, "peak": 2,
        "group_size": 2, "baseline": 0.0, "signals": {"critical": 2}, "acknowledged": None, "comments": [],
        "timeline": [{"at": now, "event": "opened", "affected": 2, "detail": ""}]}, now)
    assert incident_id is not None
    return str(incident_id)
