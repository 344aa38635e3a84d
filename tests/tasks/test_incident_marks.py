"""An open incident's members marked on their devices, and its device list read by the marks
(``tasks/incidents/marks.py``, ``tasks/store/incident_members.py``), against the real database.

A page of 50 members is one read by its mark, not 50 reads by ``_id``; the incident's ``members``
stay the truth (a member not marked yet or whose mark was lost is looked up, a stray mark is not
listed); resolving removes the marks, a device of two incidents keeps the other one's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tasks import search
from tasks.incidents import service
from tasks.incidents.grouping import Config
from tasks.incidents.job import IncidentDetector
from tasks.incidents.marks import MemberMarks
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceFilter, DeviceRepository, SearchPage
from tasks.store.incident_census import IncidentCensusRepository
from tasks.store.incident_members import MARKS
from tasks.store.incidents import IncidentRepository
from tests.support.mongo import MongoDocument, MongoServer, StartedCommands

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)


def _database(mongo_db: AsyncDatabase[MongoDocument]) -> Database:
    return Database(client=mongo_db.client, db=mongo_db)


async def _devices(mongo_db: AsyncDatabase[MongoDocument], names: list[str], **fields: Any) -> list[str]:
    """Devices as the registry stores them (with their partitions: ``tasks/search.py``)."""
    documents = [{"_id": name, "product_class": "HG8245H", "software_version": "S120", "presence": "online",
                  "offline_after": NOW + timedelta(hours=1), **fields} for name in names]
    await mongo_db["devices"].insert_many([{**device, **search.search_fields(device["_id"], device)}
                                           for device in documents])
    return names


async def _open(incidents: IncidentRepository, key: str, members: list[str]) -> MongoDocument:
    number = await incidents.open({"key": key, "dimension": "olt", "value": key, "title": key, "opened_at": NOW,
                                   "members": members, "member_count": len(members), "timeline": []}, NOW)
    assert number is not None
    incident = await incidents.get(number)
    assert incident is not None
    return incident


def _listing(incident: MongoDocument, **filters: Any) -> DeviceFilter:
    """The console's incident filter (acs/console/devices_list.py ``search_filter``)."""
    marked = int(incident.get("marked") or 0) if incident["status"] == "open" else 0
    return DeviceFilter(device_ids=tuple(incident["members"]), incident=incident["_id"], marked=marked, **filters)


async def _walk(devices: DeviceRepository, device_filter: DeviceFilter) -> tuple[list[str], list[SearchPage]]:
    """Every page of a listing, first to last: the devices listed, in order, and the pages."""
    listed: list[str] = []
    pages: list[SearchPage] = []
    position = None
    while True:
        page = await devices.search_page(device_filter, position, 50)
        pages.append(page)
        listed += [device["_id"] for device in page.devices]
        position = page.next_position
        if position is None:
            return listed, pages


async def test_a_page_of_an_open_incidents_devices_is_one_read_by_its_mark_not_one_per_member(
    mongo_db: AsyncDatabase[MongoDocument], mongo_server: MongoServer,
) -> None:
    members = await _devices(mongo_db, [f"M{n:03d}" for n in range(120)])
    await _devices(mongo_db, [f"X{n:03d}" for n in range(30)])  # not members
    incidents = IncidentRepository(_database(mongo_db))
    incident = await _open(incidents, "olt:A", members)
    counts = await MemberMarks(DeviceRepository(_database(mongo_db)), incidents).run([incident])
    assert (counts.marked, counts.left) == (120, 0)
    incident = await incidents.get(incident["_id"]) or {}
    assert incident["marked"] == 120
    listener = StartedCommands()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(
        mongo_server.uri, tz_aware=True, maxPoolSize=10, event_listeners=[listener])
    try:
        devices = DeviceRepository(Database(client=client, db=client[mongo_db.name]))
        await devices.ensure_indexes()
        listener.started_commands.clear()
        first = await devices.search_page(_listing(incident), None, 50)
        assert [device["_id"] for device in first.devices] == members[:50]
        assert (first.total, first.total_exact) == (120, True)
        assert listener.names == ["find"], "one read of the page's 50 members, not one per member"
        assert listener.started_commands[0][1]["filter"] == {MARKS: f"{incident['_id']}/0"}
        listener.started_commands.clear()
        following = await devices.search_page(_listing(incident), first.next_position, 50)
        assert [device["_id"] for device in following.devices] == members[50:100]
        assert listener.names == ["find"]
        listed, pages = await _walk(devices, _listing(incident))
        assert listed == members and len(pages) == 3
        # The other filters apply to the members read by their marks.
        listed, _ = await _walk(devices, _listing(incident, online=False))
        assert listed == []
    finally:
        await client.close()


async def test_the_members_are_the_truth_a_member_unmarked_or_whose_mark_was_lost_is_listed_a_stray_is_not(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    database = _database(mongo_db)
    devices, incidents = DeviceRepository(database), IncidentRepository(database)
    members = await _devices(mongo_db, [f"M{n:03d}" for n in range(80)])
    await _devices(mongo_db, ["STRAY"])
    incident = await _open(incidents, "olt:A", members[:70])
    await MemberMarks(devices, incidents).run([incident])
    incident = await incidents.get(incident["_id"]) or {}
    number = incident["_id"]
    # A mark lost to a concurrent device write (FerretDB writes the whole document it read), a mark
    # left on a device that is no member, and members the job has not marked yet.
    await mongo_db["devices"].update_one({"_id": "M010"}, {"$unset": {MARKS: ""}})
    await mongo_db["devices"].update_one({"_id": "STRAY"}, {"$set": {MARKS: [f"{number}/0"]}})
    await incidents.update(number, {"members": members})
    incident = await incidents.get(number) or {}
    assert incident["marked"] == 70
    listed, pages = await _walk(devices, _listing(incident))
    assert listed == members and pages[0].total == 80
    # A resolved incident is listed by _id alone (its marks are being removed).
    await service.resolve(incidents, incident, "user:olga", "fibre repaired", NOW)
    listed, _ = await _walk(devices, _listing(await incidents.get(number) or {}))
    assert listed == members


async def test_resolving_removes_the_marks_and_a_device_of_two_incidents_keeps_the_others(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    database = _database(mongo_db)
    devices, incidents = DeviceRepository(database), IncidentRepository(database)
    olt = await _devices(mongo_db, [f"O{n:03d}" for n in range(60)])
    firmware = await _devices(mongo_db, ["F000", "F001"])
    first = await _open(incidents, "olt:A", olt)
    second = await _open(incidents, "software_version:X", [*firmware, olt[0]])
    marks = MemberMarks(devices, incidents)
    await marks.run([first, second])
    shared = await mongo_db["devices"].find_one({"_id": olt[0]}) or {}
    assert sorted(shared[MARKS]) == sorted([f"{first['_id']}/0", f"{second['_id']}/0"])
    assert (await mongo_db["devices"].find_one({"_id": olt[55]}) or {})[MARKS] == [f"{first['_id']}/1"]
    # Resolved by hand: the next run removes its marks, page by page, and only its own.
    await service.resolve(incidents, await incidents.get(first["_id"]) or {}, "user:olga", "fibre repaired", NOW)
    second = await incidents.get(second["_id"]) or {}
    counts = await marks.run([second])
    assert counts.unmarked == 60
    assert await mongo_db["devices"].count_documents({MARKS: {"$in": [f"{first['_id']}/0", f"{first['_id']}/1"]}}) == 0
    assert (await mongo_db["devices"].find_one({"_id": olt[0]}) or {})[MARKS] == [f"{second['_id']}/0"]
    resolved = await incidents.get(first["_id"]) or {}
    assert "marks_left" not in resolved and "marked" not in resolved
    assert await incidents.marks_left() == []
    listed, _ = await _walk(devices, _listing(second))
    assert listed == [*firmware, olt[0]]


async def test_a_run_out_of_budget_marks_part_and_the_next_goes_on(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    database = _database(mongo_db)
    devices, incidents = DeviceRepository(database), IncidentRepository(database)
    members = await _devices(mongo_db, [f"M{n:03d}" for n in range(100)])
    incident = await _open(incidents, "olt:A", members)  # as one opened before the marks existed: none
    ticks = iter(range(1000))
    marks = MemberMarks(devices, incidents, budget=1.5, monotonic=lambda: float(next(ticks)))
    counts = await marks.run([incident])  # one chunk of 64, then the budget is spent
    assert (counts.marked, counts.left) == (64, 36)
    stored = await incidents.get(incident["_id"]) or {}
    assert stored["marked"] == 64
    listed, _ = await _walk(devices, _listing(stored))
    assert listed == members, "the members not marked yet are looked up"
    counts = await marks.run([stored])
    assert (counts.marked, counts.left) == (36, 0)
    assert await mongo_db["devices"].count_documents({MARKS: f"{incident['_id']}/1"}) == 50


async def test_the_job_marks_the_members_it_opens_with_and_removes_the_marks_when_they_recover(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    clock = [NOW]
    database = _database(mongo_db)
    incidents = IncidentRepository(database)
    await incidents.ensure_indexes()
    detector = IncidentDetector(DeviceRepository(database), DeviceEventRepository(database), incidents,
                                Config(window=timedelta(minutes=15)), lambda: clock[0],
                                census=IncidentCensusRepository(database))
    critical = {"status": "critical", "since": NOW - timedelta(seconds=30)}
    sick = await _devices(mongo_db, [f"D{n}" for n in range(6)], health=critical, health_definite="critical")
    counts = await detector.run()
    assert (counts["opened"], counts["marked"]) == (1, 6)
    opened = await mongo_db["incidents"].find_one({"status": "open"}) or {}
    assert opened["marked"] == 6
    assert await mongo_db["devices"].count_documents({MARKS: f"{opened['_id']}/0"}) == 6
    await mongo_db["devices"].update_many({"_id": {"$in": sick}}, {"$set": {
        "health": {"status": "ok", "since": NOW + timedelta(minutes=1)}, "health_definite": "ok"}})
    clock[0] = NOW + timedelta(minutes=2)
    counts = await detector.run()
    assert (counts["resolved"], counts["unmarked"]) == (1, 6)
    assert await mongo_db["devices"].count_documents({MARKS: f"{opened['_id']}/0"}) == 0
