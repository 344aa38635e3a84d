"""Lazy sessions: a session whose Inform finds nothing to do writes no lease (issue 10).

``CwmpService`` keeps such a session's state in the worker that owns the connection: the Inform costs
the device's write and the read of its tasks, the empty POST the history insert. The lease is written
only when the session gets something to do (a CPE request, an RPC to send), when its connection closes
before it ended (so that another worker can take the next message: that worker waits for it), or never
when it ends on time. Two workers (two sets of services) on one database, over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from cwmp import GetRPCMethods, GetRPCMethodsResponse, InformResponse, parse, serialize
from cwmp.models import Envelope
from schemas.tasks import GetParameterValuesTask
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[f"{event.command_name} {event.command.get(event.command_name)}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Worker:
    services: Services
    server: TestServer
    commands: Commands

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@dataclass
class Clock:
    ahead: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
async def workers(
    mongo_server: MongoServer, tmp_path: Path
) -> AsyncIterator[tuple[Worker, Worker, Database, Clock]]:
    name = unique_db_name("lazy")
    settings = Settings(data_dir=tmp_path)  # one secret key for both, as for processes of one ACS
    clock = Clock()
    started: list[Worker] = []
    for _ in range(2):
        commands = Commands()
        client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(
            mongo_server.uri, tz_aware=True, event_listeners=[commands]
        )
        database = Database(client=client, db=client[name])
        services = build_services(settings, database, clock)
        await services.repositories.ensure_indexes()
        server = TestServer(create_cwmp_app(services), host="127.0.0.1")
        await server.start_server()
        started.append(Worker(services, server, commands))
    observer: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    try:
        yield started[0], started[1], Database(client=observer, db=observer[name]), clock
    finally:
        for worker in started:
            await worker.server.close()
            await worker.services.database.close()
        await observer.drop_database(name)
        await observer.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.02)


async def bootstrapped(worker: Worker, serial: str) -> ScriptedCpe:
    cpe = ScriptedCpe(worker.url, serial=serial)
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204
    await worker.services.database.flush_later()
    return cpe


async def inform(http: aiohttp.ClientSession, url: str, cpe: ScriptedCpe, **headers: str) -> str:
    async with http.post(url, data=serialize(cpe.inform(["2 PERIODIC"])), headers=headers) as reply:
        assert reply.status == 200 and isinstance(parse(await reply.read()).body, InformResponse)
        return reply.cookies["acs_session"].value


async def leases(db: Database, device_id: str) -> int:
    return await db.collection("session_locks").count_documents({"_id": device_id})


async def outcomes(db: Database, device_id: str) -> list[str]:
    return [s["outcome"] async for s in db.collection("sessions").find({"device_id": device_id}).sort("started_at", 1)]


async def test_a_session_with_nothing_to_do_writes_no_lease(workers: tuple[Worker, Worker, Database, Clock]) -> None:
    first, _, db, _ = workers
    cpe = await bootstrapped(first, "LAZY1")
    first.commands.counts.clear()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        cookie = await inform(http, first.url, cpe)
        assert cookie.endswith(".lazy")
        assert await leases(db, cpe.device_id) == 0  # between the InformResponse and the empty POST
        async with http.post(first.url, data=b"", cookies={"acs_session": cookie}) as reply:
            assert reply.status == 204
    await first.services.database.flush_later()
    assert await leases(db, cpe.device_id) == 0
    assert await outcomes(db, cpe.device_id) == ["ok", "ok"]
    counts = first.commands.counts
    # The Inform's device write and task read, the history at the end; no lease written or freed.
    assert counts["findAndModify devices"] == counts["find tasks"] == counts["insert sessions"] == 1, counts
    assert not [name for name in counts if "session_locks" in name or "session_steps" in name], counts


async def test_a_session_with_a_task_queued_takes_the_lease_at_its_inform(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, _, db, _ = workers
    cpe = await bootstrapped(first, "EAGER1")
    request = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    await first.services.queue.create(cpe.device_id, request, "test")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        cookie = await inform(http, first.url, cpe)
        assert not cookie.endswith(".lazy")
        assert await leases(db, cpe.device_id) == 1


async def test_a_lazy_session_whose_connection_closes_goes_on_at_another_worker(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, second, db, _ = workers
    cpe = await bootstrapped(first, "MOVER1")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        cookie = await inform(http, first.url, cpe)
    # The connection is closed: the next message goes to the other worker at once, before the first
    # worker's sweep wrote the session out. The other worker waits for it, then ends the session.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(second.url, data=b"", cookies={"acs_session": cookie}) as reply:
            assert reply.status == 204, await reply.text()
    assert await outcomes(db, cpe.device_id) == ["ok", "ok"]
    await second.services.database.flush_later()
    assert await leases(db, cpe.device_id) == 0
    assert not first.services.cwmp.lazy


async def test_a_lazy_session_idle_past_its_expiry_is_ended_as_timed_out(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, _, db, clock = workers
    cpe = await bootstrapped(first, "SILENT1")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        await inform(http, first.url, cpe)
        assert len(first.services.cwmp.lazy) == 1
        clock.ahead = timedelta(seconds=first.services.settings.session_timeout + 1)
        await eventually(lambda: _ended(db, cpe.device_id, 2), "the silent session's history")
        assert await outcomes(db, cpe.device_id) == ["ok", "timeout"]
        assert await leases(db, cpe.device_id) == 0 and not first.services.cwmp.lazy


async def _ended(db: Database, device_id: str, count: int) -> bool:
    return await db.collection("sessions").count_documents({"device_id": device_id}) == count


async def test_a_cpe_request_in_a_lazy_session_takes_the_lease_first(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, _, db, _ = workers
    cpe = await bootstrapped(first, "ASKS1")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        cookie = await inform(http, first.url, cpe)
        asking = serialize(Envelope(id="ask-1", body=GetRPCMethods()))
        async with http.post(first.url, data=asking, cookies={"acs_session": cookie}) as reply:
            assert reply.status == 200
            assert isinstance(parse(await reply.read()).body, GetRPCMethodsResponse)
            cookie = reply.cookies["acs_session"].value
        lease = await db.collection("session_locks").find_one({"_id": cpe.device_id})
        assert lease is not None and cookie.startswith(str(lease["session_id"]))
        async with http.post(first.url, data=b"", cookies={"acs_session": cookie}) as reply:
            assert reply.status == 204
    await first.services.database.flush_later()
    assert await leases(db, cpe.device_id) == 0
    assert await outcomes(db, cpe.device_id) == ["ok", "ok"]


async def test_a_lazy_session_superseded_by_a_session_with_work_ends_without_touching_its_lease(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, second, db, _ = workers
    cpe = await bootstrapped(first, "TWICE1")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as old:
        await inform(old, first.url, cpe)
        # The device gives that session up and informs again elsewhere, with a task waiting now.
        request = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
        await first.services.queue.create(cpe.device_id, request, "test")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as new:
            cookie = await inform(new, second.url, cpe)
            holder = await db.collection("session_locks").find_one({"_id": cpe.device_id})
            assert holder is not None and holder["session_id"] == cookie
    # The old connection closed: its write-out finds the new session's lease and ends the old one.
    await eventually(lambda: _ended(db, cpe.device_id, 2), "the superseded lazy session's history")
    assert await outcomes(db, cpe.device_id) == ["ok", "superseded"]
    lease = await db.collection("session_locks").find_one({"_id": cpe.device_id})
    assert lease is not None and lease["session_id"] == cookie


async def test_a_cpe_closing_the_connection_after_each_reply_gets_the_lease_at_once(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, _, db, _ = workers
    cpe = await bootstrapped(first, "ONESHOT1")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        cookie = await inform(http, first.url, cpe, Connection="close")
        assert not cookie.endswith(".lazy")
        assert await leases(db, cpe.device_id) == 1
        async with http.post(first.url, data=b"", cookies={"acs_session": cookie}) as reply:
            assert reply.status == 204
    assert await outcomes(db, cpe.device_id) == ["ok", "ok"]


async def test_a_lazy_session_goes_on_at_another_worker_while_its_first_connection_stays_open(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, second, db, _ = workers
    cpe = await bootstrapped(first, "TWOCONN1")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as kept_open:
        cookie = await inform(kept_open, first.url, cpe)
        # The first connection stays open: the session is written out once its next message is
        # LAZY_HOLD late, and the other worker, given its cookie, waits for that.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            async with http.post(second.url, data=b"", cookies={"acs_session": cookie}) as reply:
                assert reply.status == 204, await reply.text()
        assert await outcomes(db, cpe.device_id) == ["ok", "ok"]
        assert not first.services.cwmp.lazy


async def test_a_new_inform_ends_the_devices_lazy_session_in_the_same_worker(
    workers: tuple[Worker, Worker, Database, Clock],
) -> None:
    first, _, db, _ = workers
    cpe = await bootstrapped(first, "AGAINLAZY1")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as old:
        cookie = await inform(old, first.url, cpe)
        # TR-069 3.7.1.1: the device gave that session up and informs again on a new connection.
        again = await cpe.run_session(["2 PERIODIC"])
        assert again.statuses[0] == 200 and again.ended_with == 204
        async with old.post(first.url, data=b"", cookies={"acs_session": cookie}) as reply:
            assert reply.status == 400  # the old session is over: its cookie starts nothing
    assert await outcomes(db, cpe.device_id) == ["ok", "superseded", "ok"]
