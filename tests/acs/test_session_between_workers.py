"""A session whose CPE moves between two workers while it keeps the InformResponse's cookie.

The worker that answered the Inform uses the record it created for the next message on the same
connection without reading it (``LiveSessions.first``), unverified: when the CPE went to the other
worker in between, that copy is stale. These tests run two workers (two sets of services, each
with its own ``LiveSessions`` and group-commit writers) on one database, over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from cwmp import Envelope, InformResponse, parse, serialize
from schemas.tasks import GetParameterValuesTask, ParameterSetting, SetParameterValuesTask
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name


@dataclass
class Worker:
    services: Services
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@pytest.fixture
async def workers(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[tuple[Worker, Worker, Database]]:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("workers")
    settings = Settings(data_dir=tmp_path)  # one secret key for both, as for processes of one ACS
    started: list[Worker] = []
    for _ in range(2):
        services = build_services(settings, Database(client=client, db=client[name]), lambda: datetime.now(UTC))
        await services.repositories.ensure_indexes()
        server = TestServer(create_cwmp_app(services), host="127.0.0.1")
        await server.start_server()
        started.append(Worker(services, server))
    try:
        yield started[0], started[1], Database(client=client, db=client[name])
    finally:
        for worker in started:
            await worker.server.close()
        await client.drop_database(name)
        await client.close()


def _client() -> aiohttp.ClientSession:
    """A connection the CPE keeps; cookies are passed by hand (the CPE never updates its own)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, cookie: str | None = None) -> tuple[int, Any]:
    cookies = {"acs_session": cookie} if cookie else None
    async with http.post(url, data=body, cookies=cookies, headers={"Content-Type": "text/xml"}) as reply:
        data = await reply.read()
        return reply.status, parse(data) if reply.status == 200 and data else None


async def _inform(http: aiohttp.ClientSession, url: str, cpe: ScriptedCpe, event: str) -> str:
    """The Inform; the InformResponse's cookie."""
    async with http.post(url, data=serialize(cpe.inform([event])), headers={"Content-Type": "text/xml"}) as reply:
        assert reply.status == 200 and isinstance(parse(await reply.read()).body, InformResponse)
        return reply.cookies["acs_session"].value


async def test_a_stale_copy_of_the_session_is_read_again_when_the_answer_does_not_fit_it(
    workers: tuple[Worker, Worker, Database],
) -> None:
    first, second, database = workers
    cpe = ScriptedCpe(first.url, serial="MOVER1")
    async with _client() as http, _client() as other:
        cookie = await _inform(http, first.url, cpe, "0 BOOTSTRAP")
        # The empty POST goes to the other worker (a load balancer), which sends the provisioning.
        status, request = await _post(other, second.url, b"", cookie)
        assert status == 200 and request.body.kind == "SetParameterValues"
        # Back on the first connection with the Inform's cookie: the first worker's copy of the
        # session expects no answer; it reads the session again and applies the answer.
        hits = first.services.cwmp.live.hits
        answer = Envelope(id=request.id, body=cpe.answer(request.body))
        status, _ = await _post(http, first.url, serialize(answer), cookie)
        assert status == 204
        assert first.services.cwmp.live.hits == hits + 1
    session = await database.collection("sessions").find_one({"device_id": cpe.device_id})
    assert session is not None and session["outcome"] == "ok"
    task = await database.collection("tasks").find_one({"device_id": cpe.device_id})
    assert task is not None and task["status"] == "done"


async def test_a_task_claimed_on_a_stale_copy_goes_back_to_the_queue_unsent(
    workers: tuple[Worker, Worker, Database],
) -> None:
    first, second, database = workers
    cpe = ScriptedCpe(first.url, serial="MOVER2")
    assert (await cpe.run_session(["0 BOOTSTRAP"])).ended_with == 204
    queue = first.services.queue
    read = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    one, _ = await queue.create(cpe.device_id, read, "test")
    # A write: had it been sent it could not go out again blindly (it would wait for proof).
    setting = ParameterSetting(name=cpe.root + "ManagementServer.PeriodicInformEnable", value=True, type="xsd:boolean")
    write = SetParameterValuesTask(kind="set_parameter_values", values=[setting])
    two, _ = await queue.create(cpe.device_id, write, "test")
    sent: list[str] = []
    async with _client() as http, _client() as other:
        cookie = await _inform(http, first.url, cpe, "2 PERIODIC")
        status, request = await _post(other, second.url, b"", cookie)
        assert status == 200 and request.body.kind == "GetParameterValues"
        sent.append(request.id)
        cpe.answer(request.body)
        # The CPE sends an empty POST again on its first connection: the first worker's stale
        # copy claims the next task, its save finds the session moved on, and that task goes back
        # to the queue (never sent). Handled again on the stored session, the empty POST breaks it
        # (an answer was due): the read it had sent is re-queued.
        status, again = await _post(http, first.url, b"", cookie)
        if again is not None:
            sent.append(again.id)
    assert sent[0] == f"{one['_id']}:0"
    assert f"{two['_id']}:0" not in sent, "the task claimed on the stale copy was never sent"
    stored = await database.collection("tasks").find_one({"_id": two["_id"]})
    assert stored is not None and stored["status"] == "queued" and stored["session_id"] is None
    # It goes out in the device's next session, as a new attempt.
    exchange = await cpe.run_session(["2 PERIODIC"])
    assert exchange.ended_with == 204 and f"{two['_id']}:0" in exchange.request_ids
    final = await database.collection("tasks").find_one({"_id": two["_id"]})
    assert final is not None and final["status"] == "done"
