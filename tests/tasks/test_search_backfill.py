"""The search fields' backfill (tasks/search_backfill.py) on the real database: a pass spread over
runs goes on where the last run stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from tasks import search
from tasks import search_backfill as backfill_module
from tasks.search_backfill import SearchBackfill
from tasks.store import devices as devices_module
from tasks.store.db import Database
from tasks.store.devices import SEARCH_BACKFILL, DeviceFilter, DeviceRepository
from tasks.store.jobs import JobRepository
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

FLEET = 240


class DevicesRead(monitoring.CommandListener):
    """Documents the server returned from ``devices`` (find and getMore replies)."""

    def __init__(self) -> None:
        self.count = 0
        self._collection: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "getMore"):
            key = "find" if event.command_name == "find" else "collection"  # getMore names it so
            self._collection[event.request_id] = str(event.command.get(key))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self._collection.pop(event.request_id, None) == "devices":
            cursor = event.reply.get("cursor") or {}
            self.count += len(cursor.get("firstBatch") or cursor.get("nextBatch") or [])

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._collection.pop(event.request_id, None)


@pytest.fixture
async def counted(mongo_server: MongoServer) -> AsyncIterator[tuple[Database, DevicesRead]]:
    read = DevicesRead()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(
        mongo_server.uri, tz_aware=True, maxPoolSize=10, event_listeners=[read]
    )
    name = unique_db_name("searchbackfill")
    try:
        yield Database(client=client, db=client[name]), read
    finally:
        await client.drop_database(name)
        await client.close()


def _small_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 buckets in 8 groups (about 30 devices a group here), and batches of 10 writes."""
    monkeypatch.setattr(search, "BUCKETS", 64)
    monkeypatch.setattr(search, "GROUP_SIZE", 8)
    monkeypatch.setattr(search, "GROUPS", 8)
    monkeypatch.setattr(search, "BLOCK_SIZE", 2)
    monkeypatch.setattr(search, "BLOCKS", 32)
    monkeypatch.setattr(backfill_module, "BATCH", 10)


def _device(n: int, version: int) -> MongoDocument:
    """A device as a version-2 pass (no ``page_block``) or no pass at all (version 0) left it."""
    device: MongoDocument = {
        "_id": f"00E0FC-HG8245H-OLD{n:04d}",
        "serial_number": f"OLD{n:04d}",
        "tags": [],
        "presence": "online",
        "health_due": 0,
    }
    if version:
        fields: dict[str, Any] = search.search_fields(device["_id"], device)
        del fields["page_block"]
        device.update(fields)
    return device


async def _pass(database: Database, read: DevicesRead) -> list[int]:
    """Runs with no time left (each writes one batch at least) until one says the pass is complete:
    the documents each run read."""
    repository = DeviceRepository(database)
    per_run: list[int] = []
    for _ in range(100):
        read.count = 0
        outcome = await SearchBackfill(repository, JobRepository(database), 0).run()
        per_run.append(read.count)
        if outcome.get("complete"):
            return per_run
    raise AssertionError(f"no complete pass in 100 runs: {per_run}")


async def _blocks_written(database: Database) -> int:
    return await database.db.devices.count_documents({"page_block": {"$exists": True}})


async def test_a_pass_cut_by_its_budget_goes_on_where_the_last_run_stopped(
    counted: tuple[Database, DevicesRead], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, read = counted
    _small_fleet(monkeypatch)
    await DeviceRepository(database).ensure_indexes()
    await database.db.devices.insert_many([_device(n, 2) for n in range(FLEET)])
    await JobRepository(database).save_state(SEARCH_BACKFILL, {"version": 2})  # the last pass's

    per_run = await _pass(database, read)

    assert await _blocks_written(database) == FLEET
    assert (await JobRepository(database).state(SEARCH_BACKFILL) or {}).get("version") == search.VERSION
    # Each run reads the partition the last one cut, and the next ones: the pass reads each device
    # about twice at most (a 30-device group cut after 10 and 20 writes is read 10 + 20 + 30 times),
    # not the fleet from its start again on every run (24 runs of 10 writes: 10 + 20 + ... + 240).
    assert sum(per_run) <= FLEET * 2.5, per_run
    assert max(per_run) <= FLEET // 4, per_run
    assert (await SearchBackfill(DeviceRepository(database), JobRepository(database), 0).run())["done_before"]


async def test_devices_stored_before_any_search_fields_are_read_by_their_absence_first(
    counted: tuple[Database, DevicesRead], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, read = counted
    _small_fleet(monkeypatch)
    await DeviceRepository(database).ensure_indexes()
    await database.db.devices.insert_many([_device(n, 0) for n in range(60)])

    per_run = await _pass(database, read)

    assert await _blocks_written(database) == 60
    assert await database.db.devices.count_documents({"page_bucket": None}) == 0
    # the devices with no partition first, 10 written a run, each run reading only a batch of those
    # left; then one partition a run (none stale): each device read twice in all
    assert per_run[:6] == [10] * 6, per_run
    assert sum(per_run) == 120, per_run


async def test_devices_stored_before_the_inform_slices_get_those_of_their_last_inform(
    counted: tuple[Database, DevicesRead], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slices' version (4): a device with a last inform and no ``last_inform_slices`` gets those of
    its last inform; one that has them (an Inform wrote them) keeps its own; one that never informed
    gets none. Then the list sorted by last inform may read by slices (``newest_informed``)."""
    database, read = counted
    _small_fleet(monkeypatch)
    repository = DeviceRepository(database)
    await repository.ensure_indexes()
    t0 = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    devices = [_device(n, 2) | {"page_block": 0, "last_inform": t0 - timedelta(minutes=n)} for n in range(30)]
    devices[0][search.INFORM_SLICES_FIELD] = ["kept"]
    del devices[1]["last_inform"]
    await database.db.devices.insert_many(devices)
    await JobRepository(database).save_state(SEARCH_BACKFILL, {"version": 3})
    assert await repository.newest_informed(DeviceFilter(), 10, t0) is None, "not every device has them yet"

    await _pass(database, read)

    stored = {device["_id"]: device async for device in database.db.devices.find({})}
    assert stored[devices[0]["_id"]][search.INFORM_SLICES_FIELD] == ["kept"]
    assert search.INFORM_SLICES_FIELD not in stored[devices[1]["_id"]]
    for device in devices[2:]:
        assert stored[device["_id"]][search.INFORM_SLICES_FIELD] == search.inform_slices(device["last_inform"])[
            search.INFORM_SLICES_FIELD]
    monkeypatch.setattr(devices_module, "NEWEST_WHOLE_MAX", -1)
    newest = await DeviceRepository(database).newest_informed(DeviceFilter(), 10, t0)  # not the made-up "kept"
    assert newest is not None and [device["_id"] for device in newest.devices[:10]] == [
        device["_id"] for device in devices[2:12]]


async def test_devices_stored_before_the_olt_named_slices_get_those_of_their_olt_and_last_inform(
    counted: tuple[Database, DevicesRead], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OLT-named slices' version (5): a device with a last inform and no ``olt_inform_slices``
    gets those of its OLT (none without one); one that has them (an Inform wrote them) keeps its own.
    Until the pass completes, a list of one OLT walks version 4's slices (the OLT and the slice apart),
    so the devices not written yet are listed; then the OLT-named ones, with the same devices."""
    database, read = counted
    _small_fleet(monkeypatch)
    repository = DeviceRepository(database)
    await repository.ensure_indexes()
    t0 = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    devices = []
    for n in range(30):
        device = _device(n, 2) | {"page_block": 0, "last_inform": t0 - timedelta(minutes=n), "olt_id": "OLT-1"}
        devices.append(device | search.inform_slices(device["last_inform"]))
    devices[0][search.OLT_SLICES_FIELD] = ["kept"]
    del devices[1]["olt_id"]
    await database.db.devices.insert_many(devices)
    await JobRepository(database).save_state(SEARCH_BACKFILL, {"version": 4})
    monkeypatch.setattr(devices_module, "NEWEST_WHOLE_MAX", -1)
    olt = DeviceFilter(olt_id="OLT-1")
    before = await repository.newest_informed(olt, 10, t0)
    assert before is not None and [device["_id"] for device in before.devices[:10]] == [
        device["_id"] for device in devices[:12] if device is not devices[1]
    ][:10], "version 4's walk: every device of the OLT, none written yet"
    outcome = await SearchBackfill(repository, JobRepository(database), 0).run()  # one partition
    assert outcome["complete"] is False
    monkeypatch.setattr(repository, "_version_checked", -1e18)
    during = await repository.newest_informed(olt, 10, t0)
    assert during is not None and [device["_id"] for device in during.devices[:10]] == [
        device["_id"] for device in before.devices[:10]
    ], "version 4's walk during the pass"

    await _pass(database, read)

    stored = {device["_id"]: device async for device in database.db.devices.find({})}
    assert stored[devices[0]["_id"]][search.OLT_SLICES_FIELD] == ["kept"]
    assert stored[devices[1]["_id"]][search.OLT_SLICES_FIELD] == []
    for device in devices[2:]:
        assert stored[device["_id"]][search.OLT_SLICES_FIELD] == search.olt_inform_slices(
            device["_id"], "OLT-1", device["last_inform"]
        )[search.OLT_SLICES_FIELD]
    after = await DeviceRepository(database).newest_informed(olt, 10, t0)  # not the made-up "kept"
    assert after is not None and [device["_id"] for device in after.devices[:10]] == [
        device["_id"] for device in devices[2:12]
    ]
