"""The incident job of ``acs serve`` reads the window's changes, not every affected device (issue 13).

Against the real database: devices go offline through the offline job and come back as an Inform
brings them (their ``device_events``); a run reads the devices those events name and the open
incidents' members, and decides what reading every offline device decided.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tasks import search
from tasks.incidents import affected
from tasks.incidents.grouping import Config
from tasks.incidents.job import IncidentDetector
from tasks.offline import OfflineDetector
from tasks.store import device_events
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository, due_slice
from tasks.store.incident_census import IncidentCensusRepository
from tasks.store.incidents import IncidentRepository
from tests.support.mongo import MongoDocument

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def _fleet() -> list[dict[str, Any]]:
    """600 ONTs on 10 OLTs; 200 of them offline for two hours (marked long before the window)."""
    fleet = []
    for olt in range(10):
        for n in range(60):
            device: dict[str, Any] = {
                "_id": f"F{olt:02d}-{n:03d}", "olt_id": f"OLT-{olt:02d}", "pon_port": f"0/1/{n % 4}",
                "product_class": "HG8245H", "software_version": f"S{100 + n % 7}", "tags": [],
                "remote_ip": f"10.{olt}.{n % 8}.{n + 1}", "presence": "online", "offline_after": LATER,
                "offline_due": due_slice(LATER)}
            if olt >= 5 and n < 40:
                gone = NOW - timedelta(hours=2)
                device.update(presence="offline", offline_since=gone, offline_after=gone)
            fleet.append({**device, **search.search_fields(device["_id"], device)})
    return fleet


class World:
    def __init__(self, mongo_db: AsyncDatabase[MongoDocument]) -> None:
        self.db = mongo_db
        self.database = Database(client=mongo_db.client, db=mongo_db)
        self.devices = DeviceRepository(self.database)
        self.events = DeviceEventRepository(self.database)
        self.incidents = IncidentRepository(self.database)
        self.clock = [NOW]
        self.offline = OfflineDetector(self.devices, self.events, lambda: self.clock[0])

    async def start(self) -> None:
        for repository in (self.devices, self.events, self.incidents):
            await repository.ensure_indexes()
        await self.db["devices"].insert_many(_fleet())

    def detector(self, read_budget: float = math.inf, census_in_run: bool = True) -> IncidentDetector:
        """One process's job as ``acs serve`` builds it (a census taken in the run here, as a test has no
        ``incident_census`` job beside it)."""
        return IncidentDetector(self.devices, self.events, self.incidents, Config(window=timedelta(minutes=15)),
                                lambda: self.clock[0], census=IncidentCensusRepository(self.database),
                                by_changes=True, read_budget=read_budget, census_in_run=census_in_run)

    async def go_offline(self, ids: list[str]) -> None:
        """Their deadline passes now; the offline job marks them (and records each transition)."""
        deadline = self.clock[0] - timedelta(seconds=5)
        await self.db["devices"].update_many({"_id": {"$in": ids}}, {"$set": {"offline_after": deadline,
                                                                               "offline_due": due_slice(deadline)}})
        assert await self.offline.run() == len(ids)

    async def come_back(self, ids: list[str]) -> None:
        """Each one's Inform, as the registry writes it: online, and an ``online`` event."""
        now = self.clock[0]
        await self.db["devices"].update_many({"_id": {"$in": ids}}, {
            "$set": {"presence": "online", "offline_after": now + timedelta(hours=1)}, "$unset": {"offline_since": ""}})
        for device_id in ids:
            await self.events.record(device_id, device_events.ONLINE, now, {})

    async def open_incidents(self) -> list[MongoDocument]:
        return await self.db["incidents"].find({"status": "open"}).to_list()


async def test_a_run_reads_the_windows_changes_and_the_members_not_every_offline_device(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    world = World(mongo_db)
    await world.start()
    detector = world.detector()
    counts = await detector.run()
    assert counts["event_reads"] == 18 * 3, "the window's 15 minutes and a minute of slack each side, by type"
    assert (counts["devices"], counts["read"], counts["affected"], counts["opened"]) == (600, 0, 0, 0), \
        "the 200 devices offline since before the window are not read"

    world.clock[0] += timedelta(seconds=30)
    dark = [f"F02-{n:03d}" for n in range(30)]  # half of OLT-02 goes dark
    await world.go_offline(dark)
    counts = await detector.run()
    assert (counts["read"], counts["affected"], counts["opened"]) == (30, 30, 1)
    [incident] = await world.open_incidents()
    assert incident["key"] == "olt:OLT-02" and incident["group_size"] == 60 and incident["member_count"] == 30

    world.clock[0] += timedelta(seconds=30)
    await world.go_offline([f"F02-{n:03d}" for n in range(30, 36)])  # it grows
    counts = await detector.run()
    assert counts["read"] == 6, "the members read last run are judged by their copies"
    [grown] = await world.open_incidents()
    assert grown["member_count"] == 36 and grown["affected_now"] == 36

    world.clock[0] += timedelta(seconds=30)
    counts = await detector.run()
    assert counts["read"] == 0, "nothing changed: nothing read"
    # the window's minutes two minutes past were read once and kept: the last few are read again
    assert counts["events"] == 36 and counts["event_reads"] <= 5 * 3, counts

    # 33 come back: the next run sees it (their online events), and resolves the incident.
    world.clock[0] += timedelta(seconds=30)
    await world.come_back([f"F02-{n:03d}" for n in range(33)])
    counts = await detector.run()
    assert (counts["read"], counts["resolved"]) == (33, 1)
    assert await world.open_incidents() == []


async def test_another_process_taking_the_lease_reads_the_members_again_and_decides_the_same(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    world = World(mongo_db)
    await world.start()
    first = world.detector()
    await first.run()
    world.clock[0] += timedelta(seconds=30)
    await world.go_offline([f"F03-{n:03d}" for n in range(40)])
    assert (await first.run())["opened"] == 1
    # 20 minutes later the lease is another process's: the offline events are out of its window.
    world.clock[0] += timedelta(minutes=20)
    await world.come_back([f"F03-{n:03d}" for n in range(10)])
    counts = await world.detector().run()
    assert (counts["read"], counts["affected"], counts["resolved"]) == (40, 30, 0)
    [incident] = await world.open_incidents()
    assert incident["affected_now"] == 30, "the members still offline, read again by id"
    # and the first process, back after a gap longer than the window, reads them again too
    world.clock[0] += timedelta(seconds=30)
    await world.come_back([f"F03-{n:03d}" for n in range(10, 38)])
    counts = await first.run()
    assert (counts["read"], counts["resolved"]) == (40, 1)


async def test_an_old_copy_is_not_judged_offline_by_its_passed_deadline(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    """A member that Informs on time moves its deadline without an event: its copy's deadline passes."""
    world = World(mongo_db)
    await world.start()
    detector = world.detector()
    await detector.run()
    dark = [f"F04-{n:03d}" for n in range(20)]
    await world.go_offline(dark)
    assert (await detector.run())["opened"] == 1
    world.clock[0] += timedelta(seconds=30)
    await world.come_back(dark[:10])
    await world.db["devices"].update_many({"_id": {"$in": dark[:10]}},
                                          {"$set": {"offline_after": world.clock[0] + timedelta(minutes=2)}})
    assert (await detector.run())["affected"] == 10
    for _ in range(3):  # their Informs move the deadline on; the copies keep the one they were read with
        world.clock[0] += timedelta(minutes=1)
        await world.db["devices"].update_many({"_id": {"$in": dark[:10]}},
                                              {"$set": {"offline_after": world.clock[0] + timedelta(minutes=2)}})
        counts = await detector.run()
        assert (counts["read"], counts["affected"]) == (0, 10)
    [incident] = await world.open_incidents()
    assert incident["affected_now"] == 10


async def test_the_windows_changes_are_read_by_indexed_equality(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    world = World(mongo_db)
    await world.start()
    await world.go_offline(["F00-000"])
    minute = device_events.minute_of(NOW)
    found = await world.events.noticed_in(device_events.OFFLINE, minute)
    assert [event["device_id"] for event in found] == ["F00-000"]
    indexes = (await mongo_db["device_events"].index_information()).values()
    assert ("minute", "type") in {tuple(key for key, _ in spec["key"]) for spec in indexes}


async def test_past_its_budget_a_run_leaves_the_windows_other_devices_to_the_next_runs(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """250 devices go offline at once: a run with no time to spare reads one chunk of them and opens
    nothing; the next, with time, reads the rest and opens the one incident."""
    world = World(mongo_db)
    await world.start()
    detector = world.detector(read_budget=0.0)
    await detector.run()
    world.clock[0] += timedelta(seconds=30)
    await world.go_offline([f"F{olt:02d}-{n:03d}" for olt in range(5) for n in range(50)])
    counts = await detector.run()
    left = 250 - affected.CHUNK
    assert (counts["read"], counts["deferred"], counts["opened"], counts["held"]) == (affected.CHUNK, left, 0, True), \
        "no incident over part of the problem"
    assert detector.changes is not None
    detector.changes.budget_seconds = math.inf
    world.clock[0] += timedelta(seconds=30)
    counts = await detector.run()
    assert (counts["read"], counts["deferred"], counts["opened"]) == (left, 0, 1)
    [incident] = await world.open_incidents()
    assert incident["member_count"] == 250, "one incident, as reading them all in one run opens"
    world.clock[0] += timedelta(seconds=30)
    assert (await detector.run())["read"] == 0


async def test_health_events_that_cannot_make_a_device_affected_name_no_device_to_read(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """Every device's first health read writes a ``health`` event (none -> ok): a bring-up of 5,000
    devices named them all, and each run spent seconds reading them (docs/performance.md). Only a
    change to ``critical`` can make a device freshly affected; that one is read and opens nothing alone."""
    world = World(mongo_db)
    await world.start()
    detector = world.detector()
    await detector.run()
    world.clock[0] += timedelta(seconds=30)
    now = world.clock[0]
    for n in range(60):
        await world.events.record(f"F01-{n:03d}", device_events.HEALTH, now, {"from": None, "to": "ok"})
    for n in range(10):
        await world.events.record(f"F03-{n:03d}", device_events.HEALTH, now, {"from": "critical", "to": "unknown"})
        await world.events.record(f"F04-{n:03d}", device_events.HEALTH, now, {"from": "ok", "to": "warn"})
    await world.db["devices"].update_one({"_id": "F00-007"}, {"$set": {"health": {
        "status": "critical", "since": now, "last_definite": {"status": "critical", "since": now}}}})
    await world.events.record("F00-007", device_events.HEALTH, now, {"from": "ok", "to": "critical"})
    counts = await detector.run()
    assert counts["events"] == 81
    assert (counts["read"], counts["affected"], counts["opened"]) == (1, 1, 0), counts


async def test_with_no_census_yet_a_run_counts_no_group_and_opens_once_the_census_job_has_sizes(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """``acs serve``: the census is the ``incident_census`` job's. Before its first run nothing sizes the
    groups, and counting every group with 5 fresh devices (a product class of 100,000 at 200,000
    devices: 60 s) is what the run would do; it waits for the census job instead."""
    world = World(mongo_db)
    await world.start()
    detector = world.detector(census_in_run=False)
    await world.go_offline([f"F02-{n:03d}" for n in range(30)])
    counts = await detector.run()
    assert (counts["held"], counts["exact_counts"], counts["opened"]) == (True, 0, 0)
    assert await world.db["incident_baselines"].count_documents({}) == 0, "no baseline moved"
    await detector.advance_census()  # the census job's run (a whole pass here)
    world.clock[0] += timedelta(seconds=30)
    counts = await detector.run()
    assert (counts["held"], counts["devices"], counts["opened"]) == (False, 600, 1)
    [incident] = await world.open_incidents()
    assert incident["key"] == "olt:OLT-02" and incident["group_size"] == 60
