"""The expiry job reads the tasks expiring in each minute, not every open task (issue 13 item 2).

By ``{status, expires_at <= now}`` each run read every queued task (FerretDB 1.24 pushes the status
down, not the range): 500 queued health reads took 0.3 s a run at 200,000 devices on a quiet box,
871 ms p50 during the api200k catch-up (5.8% of its 15 s), and a bulk task of 100,000 would be
100,000 documents every 15 s. Tasks now carry the minute they expire in (``expiry_due``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from pydantic import TypeAdapter
from pymongo import AsyncMongoClient, monitoring

from schemas.tasks import TaskRequest, TaskStatus
from tasks.notify import TaskNotifier
from tasks.queue import TaskQueue
from tasks.secretbox import SecretBox
from tasks.store.db import Database
from tasks.store.tasks import TaskRepository
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

T0 = datetime(2026, 12, 6, 12, 0, 10, tzinfo=UTC)
REQUEST: TypeAdapter[TaskRequest] = TypeAdapter(TaskRequest)


def _queue(tasks: TaskRepository, clock: list[datetime]) -> TaskQueue:
    return TaskQueue(tasks, SecretBox(Fernet.generate_key()), TaskNotifier(), lambda: clock[0], default_expiry=3600)


def _stored_without_expiry_due(task_id: str, expires_at: datetime) -> MongoDocument:
    """An open task as a process of the version before ``expiry_due`` stored it."""
    return {"_id": task_id, "device_id": "DEV", "kind": "reboot", "status": "queued", "open_on": "DEV",
            "created_at": T0, "expires_at": expires_at}


class TaskReads(monitoring.CommandListener):
    def __init__(self) -> None:
        self.filters: list[MongoDocument] = []
        self.returned = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command["find"] == "tasks":
            self.filters.append(dict(event.command.get("filter") or {}))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor") if event.command_name in ("find", "getMore") else None
        if isinstance(cursor, dict) and str(cursor.get("ns", "")).endswith(".tasks"):
            self.returned += len(cursor.get("firstBatch") or cursor.get("nextBatch") or [])

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_run_reads_the_minutes_that_expire_not_every_open_task(mongo_server: MongoServer) -> None:
    reads = TaskReads()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                              event_listeners=[reads])
    name = unique_db_name("expiryscan")
    clock = [T0]
    try:
        tasks = TaskRepository(Database(client=client, db=client[name]))
        await tasks.ensure_indexes()
        queue = _queue(tasks, clock)

        async def add(device: str, **request: Any) -> str:
            task, _ = await queue.create(device, REQUEST.validate_python({"kind": "reboot", **request}), "test")
            return task["_id"]

        waiting = [await add(f"DEV{n:04d}") for n in range(300)]  # expire in an hour
        soon = [await add("DEV-A", expires_in=60), await add("DEV-B", expires_in=90)]
        clock[0] = T0 + timedelta(seconds=100)
        assert await queue.expire_due(0.75) == 2  # the first run on a database: one read of every open task
        later = [await add("DEV-C", expires_in=30), await add("DEV-D", expires_in=200)]
        for seconds, expected in ((140, 1), (240, 0), (320, 1)):
            clock[0] = T0 + timedelta(seconds=seconds)
            reads.filters.clear()
            reads.returned = 0
            assert await queue.expire_due(0.75) == expected, seconds
            assert reads.filters and all(set(query) == {"expiry_due"} for query in reads.filters), reads.filters
            assert reads.returned <= 5, "the minutes read hold a few tasks, not the 300 open"
        for task_id in soon + later:
            assert (await tasks.get(task_id) or {}).get("status") == "expired"
        # A long stop: the hour-long ones expire, minute by minute, within budgeted runs.
        clock[0] = T0 + timedelta(hours=3)
        expired = 0
        for _ in range(100):
            expired += await queue.expire_due(0.75)
            if expired == len(waiting):
                break
        assert expired == len(waiting)
        assert await queue.expire_due(0.75) == 0
    finally:
        await client.drop_database(name)
        await client.close()


async def test_open_tasks_stored_before_expiry_due_get_it_once(mongo_server: MongoServer) -> None:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("expirydue")
    try:
        tasks = TaskRepository(Database(client=client, db=client[name]))
        old = _stored_without_expiry_due("before", T0 + timedelta(hours=2))
        await client[name].tasks.insert_many([old, {**old, "_id": "ended", "status": "done"}])
        assert await tasks.backfill_expiry_due() == 1
        assert await tasks.backfill_expiry_due() == 0
        assert [task["_id"] for task in await tasks.expiring(int((T0 + timedelta(hours=2)).timestamp()) // 60)] == [
            "before"]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_task_queued_without_expiry_due_after_the_scan_passed_its_minute_still_expires(
    mongo_server: MongoServer,
) -> None:
    """A rolling upgrade: a process of the version before ``expiry_due`` queues a task after the
    start-up pass; the hourly pass gives it a minute the scan has not passed yet, so it expires."""
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("expiryold")
    clock = [T0]
    try:
        tasks = TaskRepository(Database(client=client, db=client[name]))
        await tasks.ensure_indexes()
        queue = _queue(tasks, clock)
        assert await queue.expire_due(0.75) == 0  # the first run: the scan goes minute by minute now
        clock[0] = T0 + timedelta(minutes=10)
        assert await queue.expire_due(0.75) == 0
        # queued expiring in a minute the scan passed
        await client[name].tasks.insert_one(_stored_without_expiry_due("old-process", T0 + timedelta(minutes=2)))
        assert await queue.expire_due(0.75) == 0, "the scan does not see it"
        assert await tasks.backfill_expiry_due(await tasks.expiry_scan()) == 1
        assert await queue.expire_due(0.75) == 1
        assert (await tasks.get("old-process") or {}).get("status") == "expired"
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_finished_task_leaves_the_minute_it_would_have_expired_in(mongo_server: MongoServer) -> None:
    """The expiry job's read of a minute returns the tasks still open in it: a task finished before
    its expiry (by a session, group-committed, or cancelled) drops ``expiry_due``, as it drops
    ``open_on``. Kept, the read returned every task queued in that minute, as many as a fleet's
    health reads (thousands a minute), to keep the few still open."""
    reads = TaskReads()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                              event_listeners=[reads])
    name = unique_db_name("expiryfinished")
    clock = [T0]
    try:
        database = Database(client=client, db=client[name])
        tasks = TaskRepository(database)
        await tasks.ensure_indexes()
        queue = _queue(tasks, clock)
        assert await queue.expire_due(0.75) == 0  # the first run: minute by minute from now on
        queued = [(await queue.create(f"DEV{n:02d}", REQUEST.validate_python({"kind": "reboot", "expires_in": 90}),
                                      "test"))[0] for n in range(30)]
        for task in queued[:10]:
            await queue.cancel(task["_id"], "test")
        for task in queued[10:28]:  # a session's own tasks, finished through the group writer
            assert await tasks.finish_known(task, ["queued"], TaskStatus.DONE, {"finished_at": clock[0]}) is not None
        for task in queued[:28]:
            stored = await client[name].tasks.find_one({"_id": task["_id"]})
            assert stored is not None and "expiry_due" not in stored and "open_on" not in stored, stored
        clock[0] = T0 + timedelta(seconds=150)
        reads.returned = 0
        assert await queue.expire_due(0.75) == 2
        assert reads.returned == 2, "the minute's read returns its two open tasks, not the 28 finished"
        assert {task["_id"] for task in await tasks.expiring(int(queued[0]["expires_at"].timestamp()) // 60)} == set()
    finally:
        await database.flush_later()
        await client.drop_database(name)
        await client.close()
