"""Task values XML cannot carry (issue 11 item 4): refused by the API with 422; one already in the
database fails alone, with the true reason, and the session goes on with the next task."""

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
from tests.support.mongo import MongoDocument, leases_freed, unique_db_name
from tests.support.processes import wait_until

Client = AsyncMongoClient[MongoDocument]
NAME = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"
POISONS = ["\x1b[2J", "bad\ufffe", "nul\x00"]
# Health polls off: the poll job queues a read for a new device about 10 s after its BOOTSTRAP, and
# on a loaded machine it would ride on the session these tests count the messages of.
QUIET = {"ACS_HEALTH_INTERVAL": "0"}


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    return unique_db_name(request.node.name)


def _bodies(poison: str) -> list[dict[str, Any]]:
    return [
        {"kind": "set_parameter_values", "values": [{"name": NAME, "value": poison, "type": "xsd:string"}]},
        {"kind": "download", "file_type": "1 Firmware Upgrade Image", "url": f"http://example.net/{poison}"},
        {"kind": "upload", "file_type": "3 Vendor Log File", "url": "http://example.net/u", "username": poison},
        {"kind": "add_object", "object": "InternetGatewayDevice.X.", "values": [{"name": "A", "value": poison}]},
        {"kind": "reboot", "idempotency_key": poison},
    ]


@pytest.mark.parametrize("poison", POISONS)
async def test_api_refuses_text_xml_cannot_carry(acs_serve: AcsServeFactory, poison: str) -> None:
    acs = await acs_serve(env=QUIET)
    cpe = ScriptedCpe(acs.cwmp_url, serial="POISON-API")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    token = await create_token(acs, "ops", "operator")
    url = f"{acs.api_url}/api/v1/devices/{quote(cpe.device_id, safe='')}/tasks"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for body in _bodies(poison):
            async with http.post(url, json=body) as reply:
                answer = await reply.json()
                assert reply.status == 422, (body, answer)
                assert "XML cannot carry" in answer["error"]["message"], answer
        async with http.get(url) as reply:
            listed = await reply.json()
    assert [task["kind"] for task in listed["items"]] == ["set_parameter_values"]  # provisioning only


async def test_a_poison_task_in_the_database_fails_alone_and_the_session_goes_on(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name, env=QUIET)
    cpe = ScriptedCpe(acs.cwmp_url, serial="POISON-DB")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    token = await create_token(acs, "ops", "operator")
    url = f"{acs.api_url}/api/v1/devices/{quote(cpe.device_id, safe='')}/tasks"
    ids = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for value in ("1", "600"):
            body = {"kind": "set_parameter_values", "values": [{"name": NAME, "value": value}]}
            async with http.post(url, json=body) as reply:
                assert reply.status == 202
                ids.append((await reply.json())["id"])
    db = mongo_client[db_name]
    # Written before the API refused such values, or by hand: the stored task carries an ESC.
    poisoned = await db.tasks.update_one({"_id": ids[0]}, {"$set": {"params.values.0.value": "\x1b[2J"}})
    assert poisoned.modified_count == 1

    exchange = await cpe.run_session(["2 PERIODIC"])

    assert exchange.statuses[-1] == 204 and 500 not in exchange.statuses, exchange.statuses
    assert len(exchange.received) == 1 and isinstance(exchange.received[0], SetParameterValues)
    assert exchange.received[0].parameters[0].value == "600"  # the good task was sent in the same session
    bad, good = [await db.tasks.find_one({"_id": task_id}) for task_id in ids]
    assert bad is not None and good is not None
    assert bad["status"] == "failed"
    assert "cannot build the RPC" in bad["reason"] and "XML compatible" in bad["reason"], bad["reason"]
    assert good["status"] == "done"
    await wait_until(lambda: leases_freed(db), message="the lease freed")  # a clean end frees it after its 204
    session = await db.sessions.find_one({"device_id": cpe.device_id}, sort=[("started_at", -1)])
    assert session is not None and session["outcome"] == "ok"


async def _queue(acs_url: str, token: str, device_id: str, value: str) -> str:
    url = f"{acs_url}/api/v1/devices/{quote(device_id, safe='')}/tasks"
    body = {"kind": "set_parameter_values", "values": [{"name": NAME, "value": value}]}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(url, json=body) as reply:
            assert reply.status == 202
            return str((await reply.json())["id"])


async def test_a_malformed_stored_task_fails_alone_saying_what_broke(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name, env=QUIET)
    cpe = ScriptedCpe(acs.cwmp_url, serial="POISON-SHAPE")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    token = await create_token(acs, "ops", "operator")
    bad = await _queue(acs.api_url, token, cpe.device_id, "1")
    good = await _queue(acs.api_url, token, cpe.device_id, "600")
    db = mongo_client[db_name]
    await db.tasks.update_one({"_id": bad}, {"$set": {"params.values": "not a list"}})

    exchange = await cpe.run_session(["2 PERIODIC"])

    assert exchange.ended_with == 204 and len(exchange.received) == 1
    failed, done = [await db.tasks.find_one({"_id": task_id}) for task_id in (bad, good)]
    assert failed is not None and failed["status"] == "failed"
    assert "cannot build the RPC: AttributeError" in failed["reason"], failed["reason"]
    assert done is not None and done["status"] == "done"


async def test_an_error_while_answering_ends_the_session_and_frees_the_device(
    acs_serve: AcsServeFactory, mongo_client: Client, db_name: str
) -> None:
    acs = await acs_serve(database=db_name, env=QUIET)
    cpe = ScriptedCpe(acs.cwmp_url, serial="POISON-CLAIM")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    token = await create_token(acs, "ops", "operator")
    broken = await _queue(acs.api_url, token, cpe.device_id, "600")
    db = mongo_client[db_name]
    await db.tasks.update_one({"_id": broken}, {"$unset": {"expires_at": ""}})  # breaks the claim itself

    exchange = await cpe.run_session(["2 PERIODIC"])

    assert exchange.statuses == [200, 500]
    session = await db.sessions.find_one({"device_id": cpe.device_id}, sort=[("started_at", -1)])
    assert session is not None and session["outcome"] == "error"
    assert "KeyError" in session["error"]
    await wait_until(lambda: leases_freed(db), message="the lease freed")  # no 503 for the next minute
    assert (await cpe.run_session(["2 PERIODIC"])).ended_with == 204
