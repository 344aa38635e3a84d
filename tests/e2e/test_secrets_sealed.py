"""Secrets sealed (issue 11 item 3): connection-request passwords, Wi-Fi keys and passwords in URLs
are sealed in every collection they reach, shown as ``***`` to every role, and revealed only to an
admin who asks (audited). Real HTTP against ``acs serve``, the database read directly."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from cwmp import SetParameterValues
from tests.conftest import AcsServeFactory
from tests.support.api import create_token
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, unique_db_name
from tests.support.processes import AcsProcess, wait_until

Client = AsyncMongoClient[MongoDocument]
PSK = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase"
WIFI_KEY = "correct horse battery staple"


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    return unique_db_name(request.node.name)


async def _everything(client: Client, db_name: str) -> str:
    """Every document of every collection of the ACS's database, as text."""
    db = client[db_name]
    dumped = []
    for name in await db.list_collection_names():
        dumped += [repr(document) async for document in db[name].find({})]
    return "\n".join(dumped)


async def _api(acs: AcsProcess, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.request(method, f"{acs.api_url}/api/v1{path}", json=body) as reply:
            return reply.status, await reply.json()


async def test_secrets_are_sealed_everywhere_and_revealed_only_on_purpose(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name, env={"ACS_SESSION_TIMEOUT": "2"})
    cpe = ScriptedCpe(acs.cwmp_url, serial="SEALED-1")
    cpe.params[PSK] = ("", "xsd:string", True)
    first = await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])
    provisioning = first.received[0]
    assert isinstance(provisioning, SetParameterValues)
    cr_password = next(p.value for p in provisioning.parameters if p.name.endswith("ConnectionRequestPassword"))
    viewer = await create_token(acs, "viewer", "viewer")
    operator = await create_token(acs, "ops", "operator")
    admin = await create_token(acs, "admin", "admin")
    device = quote(cpe.device_id, safe="")

    status, _ = await _api(
        acs,
        operator,
        "POST",
        f"/devices/{device}/tasks",
        {"kind": "set_parameter_values", "values": [{"name": PSK, "value": WIFI_KEY, "type": "xsd:string"}]},
    )
    assert status == 202
    # The session that will carry the Wi-Fi key stops with the request in flight: its snapshot is stored.
    await cpe.run_session(["6 CONNECTION REQUEST"], stop_after_requests=0, apply_unanswered=True)
    stored = await _everything(mongo_client, db_name)
    assert WIFI_KEY not in stored, "the Wi-Fi key of the open session is stored in clear"
    assert cr_password not in stored, "the connection-request password is stored in clear"

    # The device now holds the key; a read brings it back into the cache and into a task result.
    status, read = await _api(
        acs, operator, "POST", f"/devices/{device}/tasks", {"kind": "get_parameter_values", "names": [PSK]}
    )
    assert status == 202
    db = mongo_client[db_name]

    async def lease_freed() -> bool:  # the cut session is reaped after its idle timeout
        return await db.session_locks.count_documents({}) == 0

    await wait_until(lease_freed, timeout=30, message="the cut session reaped")
    assert (await cpe.run_session(["6 CONNECTION REQUEST"])).ended_with == 204
    status, read = await _api(acs, viewer, "GET", f"/tasks/{read['id']}")
    assert read["status"] == "done", read
    assert read["result"]["values"][0]["value"] == "***"
    assert WIFI_KEY not in await _everything(mongo_client, db_name)

    status, url_task = await _api(
        acs,
        operator,
        "POST",
        f"/devices/{device}/tasks",
        {"kind": "download", "file_type": "1 Firmware Upgrade Image", "url": "http://fw:hunter2@files.example/fw.bin"},
    )
    assert status == 202
    assert url_task["params"]["url"] == "http://fw:***@files.example/fw.bin"
    assert "hunter2" not in await _everything(mongo_client, db_name)

    for token in (viewer, operator, admin):
        status, cached = await _api(acs, token, "GET", f"/devices/{device}/parameters?prefix=InternetGatewayDevice.")
        assert status == 200
        assert cached[PSK]["value"] == "***"
        assert cached["InternetGatewayDevice.ManagementServer.ConnectionRequestPassword"]["value"] == "***"

    status, _ = await _api(acs, operator, "POST", f"/devices/{device}/parameters/reveal", {"name": PSK})
    assert status == 403
    status, revealed = await _api(acs, admin, "POST", f"/devices/{device}/parameters/reveal", {"name": PSK})
    assert status == 200 and revealed["value"] == WIFI_KEY
    audit = await mongo_client[db_name].audit.find_one({"parameter": PSK})
    assert audit is not None and audit["status"] == 200
    assert WIFI_KEY not in acs.log_path.read_text() and cr_password not in acs.log_path.read_text()
