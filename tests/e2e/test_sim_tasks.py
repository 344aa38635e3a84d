"""`acs serve` + `acs sim` as processes, driven through the operator API like line 2 would.

Each profile's devices are woken by connection request and answer every task kind; a reboot
comes back with ``M Reboot``; a firmware Download is fetched from a real HTTP server, ends in
TransferComplete and a new SoftwareVersion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from pymongo import AsyncMongoClient

from tests.conftest import AcsServeFactory
from tests.support.api import create_token
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name
from tests.support.processes import AcsProcess, free_port, start_sim, wait_until

Client = AsyncMongoClient[MongoDocument]
FIRMWARE = b"\x7fFIRMWARE" * 1000


@dataclass
class Line2:
    acs: AcsProcess
    http: aiohttp.ClientSession
    devices: list[dict[str, Any]]
    firmware_url: str

    async def task(self, device_id: str, body: dict[str, Any], wait: int = 30) -> tuple[int, dict[str, Any]]:
        url = f"{self.acs.api_url}/api/v1/devices/{quote(device_id, safe='')}/tasks"
        params = {"connection_request": "true", "wait": str(wait)}
        async with self.http.post(url, json=body, params=params) as response:
            return response.status, await response.json()


@pytest.fixture
async def line2(
    acs_serve: AcsServeFactory,
    mongo_client: Client,
    mongo_server: MongoServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Line2]:
    name = unique_db_name(request.node.name)
    acs = await acs_serve(database=name)
    files = web.Application()

    async def firmware(_request: web.Request) -> web.Response:
        return web.Response(body=FIRMWARE)

    files.router.add_get("/fw.bin", firmware)
    runner = web.AppRunner(files)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sim = start_sim(
        args=[
            "--url",
            acs.cwmp_url,
            "--devices",
            "6",
            "--profile",
            "mix",
            "--cwmp-version",
            "mix",
            "--seed",
            "11",
            "--ramp",
            "20",
            "--cr-listen",
            f"127.0.0.1:{free_port()}",
            "--summary-every",
            "2",
        ],
        log_path=tmp_path / "sim.log",
    )
    devices = mongo_client[name].devices

    async def provisioned() -> bool:
        # Provisioning is done once the device accepted its connection-request credentials.
        return await devices.count_documents({"connection_request_username": {"$exists": True}}) >= 6

    token = await create_token(acs, "line2", "operator")
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
    try:
        await wait_until(provisioned, timeout=90, message=sim.describe("devices were not provisioned"))
        found = [device async for device in devices.find({})]
        assert {device["root"] for device in found} == {"InternetGatewayDevice.", "Device."}
        yield Line2(acs, http, found, f"http://127.0.0.1:{port}/fw.bin")
    finally:
        await http.close()
        await sim.stop(grace=20, expect_returncode=0)
        await runner.cleanup()


async def test_each_profile_answers_tasks_woken_by_connection_request(line2: Line2) -> None:
    for device in line2.devices:
        device_id = device["_id"]
        root = device["root"]
        status, task = await line2.task(
            device_id, {"kind": "get_parameter_values", "names": [root + "DeviceInfo.SoftwareVersion"]}
        )
        assert status == 201, task
        assert task["status"] == "done"
        assert task["connection_request"]["answered"] is True
        assert task["result"]["values"][0]["value"] == device["software_version"]

        status, task = await line2.task(
            device_id,
            {
                "kind": "set_parameter_values",
                "values": [{"name": root + "ManagementServer.PeriodicInformInterval", "value": 900}],
            },
        )
        assert (status, task["status"]) == (201, "done"), task

        status, task = await line2.task(
            device_id,
            {
                "kind": "set_parameter_values",
                "values": [
                    # A valid unsignedInt the data model refuses (PeriodicInformInterval >= 1):
                    # the device's fault, since the API refuses a value its type cannot hold.
                    {
                        "name": root + "ManagementServer.PeriodicInformInterval",
                        "value": 0,
                        "type": "xsd:unsignedInt",
                    }
                ],
            },
        )
        assert task["status"] == "failed", task
        assert task["fault"]["code"] in (9003, 9007)

        status, task = await line2.task(
            device_id, {"kind": "get_parameter_names", "path": root + "DeviceInfo.", "next_level": True}
        )
        assert task["status"] == "done", task
        assert any(entry["name"].endswith("SerialNumber") for entry in task["result"]["names"])


async def test_reboot_and_firmware_upgrade_on_simulated_devices(line2: Line2) -> None:
    device = line2.devices[0]
    device_id = device["_id"]
    _status, task = await line2.task(device_id, {"kind": "reboot"})
    assert task["status"] in ("dispatched", "done"), task
    task_url = f"{line2.acs.api_url}/api/v1/tasks/{task['id']}"

    async def final(url: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def is_final() -> bool:
            async with line2.http.get(url) as response:
                found.update(await response.json())
            return found["status"] in ("done", "failed", "expired")

        await wait_until(is_final, timeout=60)
        return found

    rebooted = await final(task_url)
    assert rebooted["status"] == "done", rebooted
    assert rebooted["result"]["rebooted_after_seconds"] >= 0

    _status, task = await line2.task(
        device_id,
        {
            "kind": "download",
            "file_type": "1 Firmware Upgrade Image",
            "url": line2.firmware_url,
            "file_size": len(FIRMWARE),
        },
    )
    upgraded = await final(f"{line2.acs.api_url}/api/v1/tasks/{task['id']}")
    assert upgraded["status"] == "done", upgraded
    assert upgraded["result"]["complete_time"] is not None

    async def new_version() -> bool:
        async with line2.http.get(f"{line2.acs.api_url}/api/v1/devices/{quote(device_id, safe='')}") as response:
            shown = await response.json()
        return bool(shown.get("software_version")) and shown["software_version"] != device["software_version"]

    await wait_until(new_version, timeout=60, message="the device did not report a new SoftwareVersion")
