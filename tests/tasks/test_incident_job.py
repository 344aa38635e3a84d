"""The incident job against the real database.

Its one-open-incident-per-key lock: orphaned locks are recovered, held ones never. A failed health
read (a crash-looping device) does not resolve the incident its device is in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tasks.health.evaluate import HealthResult, Level, Reason, summarize
from tasks.incidents.grouping import Config
from tasks.incidents.job import IncidentDetector
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.incidents import KEY_GRACE, IncidentRepository
from tests.support.mongo import MongoDocument

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
KEY = "software_version:HG8245H S120"


def _incident(key: str = KEY) -> dict[str, Any]:
    return {"key": key, "dimension": "software_version", "value": "HG8245H S120", "title": "bad firmware",
            "opened_at": NOW, "members": [], "timeline": []}


def _repository(mongo_db: AsyncDatabase[MongoDocument]) -> IncidentRepository:
    return IncidentRepository(Database(client=mongo_db.client, db=mongo_db))


async def _open_incidents(mongo_db: AsyncDatabase[MongoDocument]) -> list[MongoDocument]:
    return await mongo_db["incidents"].find({"key": KEY, "status": "open"}).to_list()


async def _detector(mongo_db: AsyncDatabase[MongoDocument], clock: list[datetime]) -> IncidentDetector:
    database = Database(client=mongo_db.client, db=mongo_db)
    incidents = IncidentRepository(database)
    await incidents.ensure_indexes()
    return IncidentDetector(DeviceRepository(database), DeviceEventRepository(database), incidents,
                            Config(window=timedelta(minutes=15)), lambda: clock[0])


async def _sick_firmware(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    """Six S120 devices turned critical: a bad-firmware incident is due."""
    await mongo_db["devices"].insert_many([
        {"_id": f"D{n}", "product_class": "HG8245H", "software_version": "S120", "presence": "online",
         "offline_after": NOW + timedelta(hours=1),
         "health": {"status": "critical", "since": NOW - timedelta(seconds=30)}} for n in range(6)])


async def test_the_job_opens_an_incident_over_a_lock_orphaned_by_a_dead_opener(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    detector = await _detector(mongo_db, [NOW])
    await _sick_firmware(mongo_db)
    # Its opener took the key two minutes ago and died before writing the incident.
    await mongo_db["incident_keys"].insert_one(
        {"_id": KEY, "incident_id": None, "token": "dead", "taken_at": NOW - 2 * KEY_GRACE})
    counts = await detector.run()
    assert counts["opened"] == 1
    opened = await _open_incidents(mongo_db)
    assert len(opened) == 1 and opened[0]["member_count"] == 6
    lock = await mongo_db["incident_keys"].find_one({"_id": KEY})
    assert lock is not None and lock["incident_id"] == opened[0]["_id"] and lock["token"] != "dead"
    assert lock["taken_at"] == NOW
    assert (await detector.run())["opened"] == 0, "the new lock holds"


async def test_old_undated_locks_without_an_open_incident_are_freed(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    incidents = _repository(mongo_db)
    # A lock from before locks were dated, whose incident was resolved without freeing it.
    await mongo_db["incidents"].insert_one({**_incident(), "_id": 7, "status": "resolved"})
    await mongo_db["incident_keys"].insert_one({"_id": KEY, "incident_id": 7})
    number = await incidents.open(_incident(), NOW)
    assert number == 8
    assert [incident["_id"] for incident in await _open_incidents(mongo_db)] == [8]


async def test_a_lock_whose_incident_is_open_is_never_freed(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    incidents = _repository(mongo_db)
    number = await incidents.open(_incident(), NOW)
    assert number is not None
    assert await incidents.open(_incident(), NOW + timedelta(days=1)) is None
    lock = await mongo_db["incident_keys"].find_one({"_id": KEY})
    assert lock is not None and lock["incident_id"] == number
    # An opener that died after writing its incident, before linking it to the lock: still held.
    other = "olt:OLT-0001"
    await mongo_db["incidents"].insert_one({**_incident(other), "_id": number + 1, "status": "open"})
    await mongo_db["incident_keys"].insert_one({"_id": other, "incident_id": None, "taken_at": NOW})
    assert await incidents.open(_incident(other), NOW + timedelta(days=1)) is None
    assert await mongo_db["incident_keys"].find_one({"_id": other}) is not None
    assert len(await _open_incidents(mongo_db)) == 1


async def test_a_fresh_lock_is_left_to_its_opener(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    incidents = _repository(mongo_db)
    await mongo_db["incident_keys"].insert_one(
        {"_id": KEY, "incident_id": None, "token": "busy", "taken_at": NOW - KEY_GRACE / 2})
    assert await incidents.open(_incident(), NOW) is None, "its opener may still be writing the incident"
    lock = await mongo_db["incident_keys"].find_one({"_id": KEY})
    assert lock is not None and lock["token"] == "busy"


async def test_an_opener_whose_lock_was_recovered_meanwhile_withdraws(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    incidents = _repository(mongo_db)
    first = await incidents.open(_incident(), NOW)
    assert first is not None
    # As if the first opener stalled past the grace and its lock was judged orphaned and freed:
    # the next opener takes the key, writes its incident, sees the first one open and backs off.
    await mongo_db["incident_keys"].delete_one({"_id": KEY})
    assert await incidents.open(_incident(), NOW) is None
    assert [incident["_id"] for incident in await _open_incidents(mongo_db)] == [first]
    assert await mongo_db["incidents"].count_documents({}) == 1, "the withdrawn incident is gone"
    assert await mongo_db["incident_keys"].find_one({"_id": KEY}) is None, "its own lock released"


async def test_a_failed_health_read_does_not_resolve_a_bad_firmware_incident(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    clock = [NOW]
    detector = await _detector(mongo_db, clock)
    await _sick_firmware(mongo_db)
    assert (await detector.run())["opened"] == 1

    async def read_all(level: Level, reason: str) -> dict[str, Any]:
        clock[0] += timedelta(minutes=5)
        result = HealthResult(level, [Reason("device", level, reason)] if reason else [])
        async for device in mongo_db["devices"].find({}):
            health = summarize(device["health"], result, clock[0])
            await mongo_db["devices"].update_one({"_id": device["_id"]}, {"$set": {"health": health}})
        return await detector.run()

    assert (await read_all(Level.UNKNOWN, "health read failed: 9002 Internal error"))["resolved"] == 0
    incident = (await _open_incidents(mongo_db))[0]
    assert incident["affected_now"] == 6, "crash-looping devices are still sick"
    assert (await read_all(Level.OK, ""))["resolved"] == 1, "a successful ok read is the recovery"
