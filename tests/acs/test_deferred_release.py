"""A clean session end frees its lease after its 204, with the other releases of the moment.

``CwmpService._finish`` defers the lease's delete (``SessionLockRepository.release_later``,
``GroupWriter.write_later``): at a few sessions per second each release was a delete command of its
own (two PostgreSQL transactions on FerretDB 1.24), and waiting ``LINGER`` lets them leave as one.
Until it leaves, the lease still names the ended session, so: a new session of the device in the
same worker waits for the release (no collision), and a message with the ended session's cookie
at another worker is not taken for the running session's (``SessionRepository.load_live`` reads
the history). Two workers (two sets of services) on one database, over real HTTP; the linger is
raised to a minute so nothing leaves on its own while a test looks. The sessions here have work (a
task queued, or a connection closed after each reply): a session with nothing to do takes no lease
at all (``tests/acs/test_lazy_sessions.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from acs.app import create_cwmp_app
from acs.config import Settings
from acs.services import Services, build_services
from cwmp import InformResponse, parse, serialize
from schemas.tasks import GetParameterValuesTask
from tasks.store.db import Database
from tests.support.cpe import ScriptedCpe
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

LONG_LINGER = 60.0


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


@pytest.fixture
async def workers(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[tuple[Worker, Worker, Database]]:
    name = unique_db_name("deferred")
    settings = Settings(data_dir=tmp_path)  # one secret key for both, as for processes of one ACS
    started: list[Worker] = []
    for _ in range(2):
        commands = Commands()
        client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(
            mongo_server.uri, tz_aware=True, event_listeners=[commands]
        )
        database = Database(client=client, db=client[name])
        services = build_services(settings, database, lambda: datetime.now(UTC))
        await services.repositories.ensure_indexes()
        for collection in ("session_locks", "session_steps"):
            database.writer(collection).linger = LONG_LINGER
        server = TestServer(create_cwmp_app(services), host="127.0.0.1")
        await server.start_server()
        started.append(Worker(services, server, commands))
    observer: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    try:
        yield started[0], started[1], Database(client=observer, db=observer[name])
    finally:
        for worker in started:
            await worker.server.close()
            await worker.services.database.close()
        await observer.drop_database(name)
        await observer.close()


async def test_clean_ends_free_their_leases_together_after_their_204(
    workers: tuple[Worker, Worker, Database],
) -> None:
    first, _, db = workers
    cpes = [ScriptedCpe(first.url, serial=f"LATER{n}") for n in range(5)]
    for cpe in cpes:
        assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204
    for cpe in cpes:
        await queue_a_read(first, cpe)
    await first.services.database.flush_later()
    first.commands.counts.clear()
    for cpe in cpes:  # one after another: no two sessions meet in a group commit
        exchange = await cpe.run_session(["2 PERIODIC"])
        assert exchange.ended_with == 204 and [m.kind for m in exchange.received] == ["GetParameterValues"]
    # Every 204 went out with the lease still held: nothing was deleted yet.
    assert await db.collection("session_locks").count_documents({}) == 5
    assert first.commands.counts["delete session_locks"] == 0, first.commands.counts
    await first.services.database.flush_later()
    assert await db.collection("session_locks").count_documents({}) == 0
    # The five releases left as one delete command (five before).
    assert first.commands.counts["delete session_locks"] == 1, first.commands.counts
    sessions = [s async for s in db.collection("sessions").find({"events": ["2 PERIODIC"]})]
    assert len(sessions) == 5 and {s["outcome"] for s in sessions} == {"ok"}


async def test_the_devices_next_session_in_the_same_worker_waits_for_the_release(
    workers: tuple[Worker, Worker, Database],
) -> None:
    first, _, db = workers
    cpe = ScriptedCpe(first.url, serial="AGAIN1")
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204
    first.commands.counts.clear()
    await queue_a_read(first, cpe)
    # The release is pending (a minute's linger): the next Inform sends it first, then takes the
    # lease with one insert; no collision, so no read of the held lease and no session ended twice.
    exchange = await cpe.run_session(["6 CONNECTION REQUEST"])
    assert exchange.statuses[0] == 200 and exchange.ended_with == 204
    assert first.commands.counts["find session_locks"] == 0, first.commands.counts
    assert first.commands.counts["insert session_locks"] == 1, first.commands.counts
    outcomes = [s["outcome"] async for s in db.collection("sessions").find({"device_id": cpe.device_id})]
    assert outcomes == ["ok", "ok"]


async def test_the_ended_sessions_cookie_starts_nothing_at_another_worker(
    workers: tuple[Worker, Worker, Database],
) -> None:
    first, second, db = workers
    cpe = ScriptedCpe(first.url, serial="ZOMBIE1")
    assert (await cpe.run_session(["0 BOOTSTRAP", "1 BOOT"])).ended_with == 204
    await first.services.database.flush_later()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        # A connection closed after each reply: the session takes its lease at its Inform.
        close = {"Connection": "close"}
        async with http.post(first.url, data=serialize(cpe.inform(["2 PERIODIC"])), headers=close) as reply:
            assert reply.status == 200 and isinstance(parse(await reply.read()).body, InformResponse)
            cookie = reply.cookies["acs_session"].value
        async with http.post(first.url, data=b"", cookies={"acs_session": cookie}, headers=close) as reply:
            assert reply.status == 204
        # The lease still names the ended session (its release is pending at the first worker).
        assert await db.collection("session_locks").count_documents({"_id": cpe.device_id}) == 1
        # A stray message with its cookie at the other worker is not a running session's: it must
        # begin with Inform, as after the release (it would have continued the ended session).
        async with http.post(second.url, data=b"", cookies={"acs_session": cookie}) as reply:
            assert reply.status == 400
            assert "must begin with Inform" in await reply.text()
        # And the device's next session there ends the stale lease and starts.
        again = await ScriptedCpe(second.url, serial="ZOMBIE1").run_session(["2 PERIODIC"])
        assert again.statuses[0] == 200 and again.ended_with == 204
    await second.services.database.flush_later()  # a lazy session's history leaves after its 204
    outcomes = [s["outcome"] async for s in db.collection("sessions").find({"device_id": cpe.device_id})]
    assert outcomes == ["ok", "ok", "ok"], outcomes


async def queue_a_read(worker: Worker, cpe: ScriptedCpe) -> None:
    request = GetParameterValuesTask(kind="get_parameter_values", names=[cpe.root + "DeviceInfo.UpTime"])
    await worker.services.queue.create(cpe.device_id, request, "test")
