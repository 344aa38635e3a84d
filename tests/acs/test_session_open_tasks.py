"""Each session reads its device's open tasks at the Inform (one query by ``device_id``) and claims
from there: nothing on the device document says whether a task waits, so no write to the device,
even one FerretDB 1.24 loses, can hide a task from the device's sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from schemas.tasks import GetParameterValuesTask
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name


@dataclass
class Acs:
    url: str
    services: Services
    db: AsyncDatabase[MongoDocument]


@pytest.fixture
async def acs(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[Acs]:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("opentasks")
    services = build_services(Settings(data_dir=tmp_path), Database(client=client, db=client[name]),
                              lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield Acs(str(server.make_url("/")), services, client[name])
    finally:
        await server.close()
        await client.drop_database(name)
        await client.close()


def _read(cpe: ScriptedCpe, leaf: str) -> GetParameterValuesTask:
    return GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + leaf])


def _task_ids(request_ids: list[str]) -> list[str]:
    return [request_id.partition(":")[0] for request_id in request_ids]


async def test_tasks_reach_the_device_after_a_lost_update_puts_its_old_document_back(acs: Acs) -> None:
    """The CI defect: FerretDB 1.24 runs a device update as "read the document, write it whole by
    _id", so a session's own device write racing the health poll's bookkeeping (or an operator's
    task) can put back the device as it was before the task was queued. Reproduced here without the
    race: the old image is written back with replace_one, which is what that lost update does. The
    device's next session must still send both tasks (with task marks on the device it sent none,
    and the tasks waited until they expired)."""
    cpe = ScriptedCpe(acs.url, serial="LOST01")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    assert (await cpe.run_session(["2 PERIODIC"])).request_ids == []
    old_image = await acs.db.devices.find_one({"_id": cpe.device_id})
    assert old_image is not None
    # The health poll queues the device's read (the device is new: its first read is due at once)...
    assert (await acs.services.health.run())["queued"] == 1
    health_read = await acs.db.tasks.find_one({"device_id": cpe.device_id, "created_by": "system:health"})
    assert health_read is not None and health_read["status"] == "queued"
    # ... and an operator queues a task through the API's path.
    operator, _ = await acs.services.queue.create(cpe.device_id, _read(cpe, "DeviceInfo.UpTime"), "operator")
    # A concurrent device write that read the device before both tasks were queued wins last.
    await acs.db.devices.replace_one({"_id": cpe.device_id}, old_image)

    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.ended_with == 204
    assert sorted(_task_ids(exchange.request_ids)) == sorted([health_read["_id"], operator["_id"]])
    # Both answered in that session (the scripted CPE has no GPON parameters: the health read fails with the fault).
    statuses = {task_id: (await acs.services.queue.get(task_id) or {}).get("status")
                for task_id in (health_read["_id"], operator["_id"])}
    assert statuses == {health_read["_id"]: "failed", operator["_id"]: "done"}, statuses


async def test_a_task_queued_while_a_session_runs_goes_out_in_the_devices_next_session(acs: Acs) -> None:
    """The session claims what it read at its Inform; a task queued later waits for the next one."""
    url, services = acs.url, acs.services
    queued_meanwhile: list[str] = []
    posts: list[int] = []  # counted once armed: the Inform, the empty POST, the answer to the read

    async def queue_during_the_answer(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if posts:
            posts.append(len(posts))
            if len(posts) == 4:  # before the CPE's answer to the first read, an operator queues another task
                task, _ = await services.queue.create(cpe.device_id, _read(cpe, "DeviceInfo.SoftwareVersion"), "test")
                queued_meanwhile.append(task["_id"])
        return await handler(request)

    cpe = ScriptedCpe(url, serial="OPEN01", client_middlewares=(queue_during_the_answer,))
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    first, _ = await services.queue.create(cpe.device_id, _read(cpe, "DeviceInfo.UpTime"), "test")
    posts.append(0)  # armed
    exchange = await cpe.run_session(["2 PERIODIC"])
    posts.clear()
    assert exchange.ended_with == 204 and queued_meanwhile
    assert _task_ids(exchange.request_ids) == [first["_id"]]
    assert _task_ids((await cpe.run_session(["2 PERIODIC"])).request_ids) == queued_meanwhile
    assert (await cpe.run_session(["2 PERIODIC"])).request_ids == []


async def test_a_task_queued_between_sessions_is_claimed_by_the_next_one(acs: Acs) -> None:
    cpe = ScriptedCpe(acs.url, serial="OPEN02")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    assert (await cpe.run_session(["2 PERIODIC"])).request_ids == []
    task, _ = await acs.services.queue.create(cpe.device_id, _read(cpe, "DeviceInfo.UpTime"), "test")
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.request_ids == [f"{task['_id']}:0"]


async def test_tasks_queued_many_at_once_reach_their_devices(acs: Acs) -> None:
    """The health poll queues its reads with one insert (``TaskQueue.create_many``)."""
    cpes = [ScriptedCpe(acs.url, serial=f"OPEN1{n}") for n in range(3)]
    for cpe in cpes:
        assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
        assert (await cpe.run_session(["2 PERIODIC"])).request_ids == []
    tasks = await acs.services.queue.create_many(
        [(cpe.device_id, _read(cpe, "DeviceInfo.UpTime")) for cpe in cpes], "test"
    )
    for cpe, task in zip(cpes, tasks, strict=True):
        assert (await cpe.run_session(["2 PERIODIC"])).request_ids == [f"{task['_id']}:0"]
