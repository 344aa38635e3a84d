"""`acs serve` + `acs sim`: firmware stored in the ACS and fetched by a simulated device from the
CWMP listener; a configuration file uploaded by a device to the ACS's own URL.

The simulator really GETs Download URLs and PUTs Upload URLs; the tasks end by TransferComplete.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import AcsServeFactory
from tests.support.api import create_token
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import AcsProcess, free_port, start_sim, wait_until

FIRMWARE = os.urandom(700 * 1024)


@dataclass
class Fleet:
    acs: AcsProcess
    http: aiohttp.ClientSession
    device: dict[str, Any]

    def api(self, path: str) -> str:
        return f"{self.acs.api_url}/api/v1{path}"

    async def task(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.api(f"/devices/{quote(self.device['_id'], safe='')}/tasks")
        async with self.http.post(url, json=body, params={"connection_request": "true", "wait": "5"}) as response:
            created: dict[str, Any] = await response.json()
            assert response.status in (201, 202), created
        return await self.final(created["id"])

    async def final(self, task_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def is_final() -> bool:
            async with self.http.get(self.api(f"/tasks/{task_id}")) as response:
                found.update(await response.json())
            return found["status"] in ("done", "failed", "expired", "cancelled")

        await wait_until(is_final, timeout=60, message=f"task {task_id} final")
        return found


@pytest.fixture
async def fleet(
    acs_serve: AcsServeFactory,
    mongo_client: AsyncMongoClient[MongoDocument],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Fleet]:
    name = unique_db_name(request.node.name)
    cwmp_port = free_port()
    cwmp_url = f"http://127.0.0.1:{cwmp_port}/"
    # The listener's address is chosen here so the public URL (where devices fetch files) names it.
    acs = await acs_serve(database=name, env={"ACS_CWMP_LISTEN": f"127.0.0.1:{cwmp_port}",
                                              "ACS_CWMP_PUBLIC_URL": cwmp_url})
    acs.urls["cwmp"] = cwmp_url
    sim = start_sim(
        args=["--url", cwmp_url, "--devices", "1", "--profile", "mix", "--seed", "5",
              "--cr-listen", f"127.0.0.1:{free_port()}"],
        log_path=tmp_path / "sim.log",
    )
    devices = mongo_client[name].devices

    async def provisioned() -> dict[str, Any] | None:
        return await devices.find_one({"connection_request_username": {"$exists": True}})

    token = await create_token(acs, "line2", "operator")
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
    try:
        device = await wait_until(provisioned, timeout=90, message=sim.describe("device not provisioned"))
        yield Fleet(acs, http, device)
    finally:
        await http.close()
        await sim.stop(grace=20, expect_returncode=0)
        await mongo_client.drop_database(name)


async def test_firmware_from_the_acs_and_config_upload_to_it(fleet: Fleet) -> None:
    params = {"name": "fw-next.bin", "file_type": "1 Firmware Upgrade Image", "oui": fleet.device["oui"]}
    async with fleet.http.post(fleet.api("/files"), params=params, data=FIRMWARE) as response:
        stored = await response.json()
        assert response.status == 201, stored
    assert stored["url"] == f"{fleet.acs.cwmp_url}files/{stored['id']}"
    async with fleet.http.get(fleet.api(f"/files/{stored['id']}/content"),
                              headers={"Range": "bytes=1000-1999"}) as response:
        assert response.status == 206 and await response.read() == FIRMWARE[1000:2000]

    upgraded = await fleet.task({"kind": "download", "file_type": "1 Firmware Upgrade Image",
                                 "file_id": stored["id"]})
    assert upgraded["status"] == "done", upgraded
    assert upgraded["params"]["url"] == stored["url"] and upgraded["params"]["file_size"] == len(FIRMWARE)
    assert upgraded["result"]["complete_time"] is not None

    async def new_version() -> bool:
        async with fleet.http.get(fleet.api(f"/devices/{quote(fleet.device['_id'], safe='')}")) as response:
            shown = await response.json()
        return bool(shown.get("software_version")) and shown["software_version"] != fleet.device["software_version"]

    await wait_until(new_version, timeout=60, message="the device did not report a new SoftwareVersion")

    uploaded = await fleet.task({"kind": "upload", "file_type": "1 Vendor Configuration File"})
    assert uploaded["status"] == "done", uploaded
    assert uploaded["params"]["url"].startswith(f"{fleet.acs.cwmp_url}uploads/{uploaded['id']}/")
    async with fleet.http.get(fleet.api("/files"), params={"task_id": uploaded["id"]}) as response:
        page = await response.json()
    assert len(page["items"]) == 1, page
    config = page["items"][0]
    assert config["device_id"] == fleet.device["_id"] and config["file_type"] == "1 Vendor Configuration File"
    async with fleet.http.get(fleet.api(f"/files/{config['id']}/content")) as response:
        content = await response.read()
    assert fleet.device["serial_number"].encode() in content
    assert hashlib.sha256(content).hexdigest() == config["sha256"]
