"""The device's task marks (``TaskMarks``): a session looks for tasks only when they say there may
be some, and never misses one queued while it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from schemas.tasks import GetParameterValuesTask
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name


@pytest.fixture
async def acs(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[tuple[str, Services]]:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("marks")
    services = build_services(Settings(data_dir=tmp_path), Database(client=client, db=client[name]),
                              lambda: datetime.now(UTC))
    await services.repositories.ensure_indexes()
    server = TestServer(create_cwmp_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/")), services
    finally:
        await server.close()
        await client.drop_database(name)
        await client.close()


def _read(cpe: ScriptedCpe, leaf: str) -> GetParameterValuesTask:
    return GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + leaf])


async def test_a_task_queued_while_the_session_runs_goes_out_in_it(acs: tuple[str, Services]) -> None:
    url, services = acs
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

    cpe = ScriptedCpe(url, serial="MARKS01", client_middlewares=(queue_during_the_answer,))
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    first, _ = await services.queue.create(cpe.device_id, _read(cpe, "DeviceInfo.UpTime"), "test")
    posts.append(0)  # armed
    exchange = await cpe.run_session(["2 PERIODIC"])
    posts.clear()
    assert exchange.ended_with == 204 and queued_meanwhile
    assert [rid.partition(":")[0] for rid in exchange.request_ids] == [first["_id"], queued_meanwhile[0]]
    # The mark moved during that session: it read it again and stored it drained once the queue was
    # empty, so the next session asks for no task at all.
    assert (await cpe.run_session(["2 PERIODIC"])).request_ids == []
    device = await services.repositories.devices.get(cpe.device_id)
    assert device is not None and device["tasks_drained"] == device["tasks_mark"] == 3


async def test_a_task_queued_between_sessions_is_claimed_by_the_next_one(acs: tuple[str, Services]) -> None:
    url, services = acs
    cpe = ScriptedCpe(url, serial="MARKS02")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    assert (await cpe.run_session(["2 PERIODIC"])).request_ids == []
    task, _ = await services.queue.create(cpe.device_id, _read(cpe, "DeviceInfo.UpTime"), "test")
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.request_ids == [f"{task['_id']}:0"]


async def test_tasks_queued_many_at_once_reach_drained_devices(acs: tuple[str, Services]) -> None:
    """The health poll queues its reads with one insert (``TaskQueue.create_many``): each device's mark moves."""
    url, services = acs
    cpes = [ScriptedCpe(url, serial=f"MARKS1{n}") for n in range(3)]
    for cpe in cpes:
        assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
        assert (await cpe.run_session(["2 PERIODIC"])).request_ids == []  # drained
    tasks = await services.queue.create_many([(cpe.device_id, _read(cpe, "DeviceInfo.UpTime")) for cpe in cpes], "test")
    for cpe, task in zip(cpes, tasks, strict=True):
        assert (await cpe.run_session(["2 PERIODIC"])).request_ids == [f"{task['_id']}:0"]
