"""The scheduled jobs find their work by top-level equality, served by an index (issue 13).

FerretDB 1.24 pushes a top-level equality down to PostgreSQL (an index serves it) and evaluates
everything else (ranges, ``$or``, nested keys) by reading what the pushed part matched. So a job's
query costs what its *equality part* matches. Each job runs here over a fleet of online devices
none of which is due, with PyMongo command monitoring; for every query it sent, the test checks
that an index leads with one of its equality fields, that ``explain`` shows the filter pushed down,
and that the equality part alone matches only a few documents, not the fleet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from tasks.offline import OfflineDetector
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository, due_slice
from tasks.store.sessions import SessionRepository
from tasks.watch import WatchExpiry
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

FLEET = 600
NOW = datetime.now(UTC).replace(microsecond=0)
WATCH = "watch"


class Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.filters: list[tuple[str, MongoDocument]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.filters.append((event.command["find"], dict(event.command.get("filter") or {})))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def equality_part(query: MongoDocument) -> MongoDocument:
    """What FerretDB pushes down: the top-level keys compared with a plain value."""
    return {key: value for key, value in query.items() if not key.startswith("$") and not isinstance(value, dict)}


def device(n: int) -> MongoDocument:
    deadline = NOW + timedelta(seconds=60 + n * 10)  # all online and due later
    document: MongoDocument = {
        "_id": f"DEV{n:05d}",
        "presence": "online",
        "offline_after": deadline,
        "offline_due": due_slice(deadline),
        "tags": [],
    }
    if n % 100 == 0:  # a few watched, still within their watch
        document.update(tags=[WATCH], watch_until=NOW + timedelta(hours=1))
    return document


@pytest.fixture
async def fleet(mongo_server: MongoServer) -> Any:
    finds = Finds()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True, event_listeners=[finds])
    name = unique_db_name("jobqueries")
    database = Database(client=client, db=client[name])
    devices, sessions = DeviceRepository(database), SessionRepository(database)
    await devices.ensure_indexes()
    await sessions.ensure_indexes()
    await client[name].devices.insert_many([device(n) for n in range(FLEET)])
    await client[name].sessions.insert_many(
        [
            {"_id": f"S{n}", "device_id": f"DEV{n:05d}", "live": n < 3, "expires_at": NOW + timedelta(seconds=30)}
            for n in range(FLEET)
        ]
    )
    try:
        yield finds, database, devices, sessions, mongo_server
    finally:
        await client.drop_database(name)
        await client.close()


async def test_each_job_reads_its_due_work_by_indexed_equality(fleet: Any) -> None:
    finds, database, devices, sessions, server = fleet
    events = DeviceEventRepository(database)
    await events.ensure_indexes()
    finds.filters.clear()
    assert await OfflineDetector(devices, events, lambda: NOW).run() == 0
    assert await WatchExpiry(devices, WATCH, lambda: NOW).run() == 0
    assert await sessions.stale(NOW) == []  # the reaper's query
    jobs = {collection for collection, _ in finds.filters}
    assert jobs == {"devices", "sessions", "job_state"}, finds.filters  # job_state: where a scan stopped, by _id

    db = database.db
    for collection, query in finds.filters:
        matched = await db[collection].count_documents(equality_part(query))
        assert matched <= FLEET // 20, f"{collection} {query}: its equality part matches {matched} documents"
        leading = {spec["key"][0][0] for spec in (await db[collection].index_information()).values()}
        assert leading & set(equality_part(query)), f"{collection} {query}: no index leads with its equality fields"
        if server.kind == "ferretdb-postgresql":
            # Pushed down to PostgreSQL, where the GIN companion of that index serves it. (On a table
            # this small and this fresh, without statistics, PostgreSQL may still prefer to scan: so
            # the plan's node is not asserted; docs/performance.md has the plans at fleet size.)
            explained = await db.command({"explain": {"find": collection, "filter": query}})
            assert explained.get("filterPushdown") is True, (query, explained)


async def test_the_offline_scan_finds_a_device_overdue_for_hours(fleet: Any) -> None:
    """Slice by slice from where the last scan stopped: a job stopped for hours catches up."""
    _finds, database, devices, _sessions, _server = fleet
    events = DeviceEventRepository(database)
    await events.ensure_indexes()
    late = NOW - timedelta(hours=5)
    await database.db.devices.insert_one(
        {"_id": "LATE", "presence": "online", "offline_after": late, "offline_due": due_slice(late), "tags": []}
    )
    await database.db.job_state.insert_one({"_id": "offline_scan", "next": due_slice(late) - 3})
    detector = OfflineDetector(devices, events, lambda: NOW)
    marked = 0
    for _ in range(20):  # each run reads a bounded number of slices
        marked += await detector.run()
        if marked:
            break
    assert marked == 1
    stored = await devices.get("LATE")
    assert stored is not None and stored["presence"] == "offline" and stored["offline_since"] == late
