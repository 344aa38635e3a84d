"""The incident job against the real database.

Its one-open-incident-per-key lock: orphaned locks are recovered, held ones never. A failed health
read (a crash-looping device) does not resolve the incident its device is in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tasks import search
from tasks.health.evaluate import HealthResult, Level, Reason, summary_fields
from tasks.incidents import grouping, service
from tasks.incidents.grouping import Config
from tasks.incidents.job import IncidentDetector
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.incident_census import IncidentCensusRepository
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
                            Config(window=timedelta(minutes=15)), lambda: clock[0],
                            census=IncidentCensusRepository(database))


async def _insert_devices(mongo_db: AsyncDatabase[MongoDocument], devices: list[dict[str, Any]]) -> None:
    """Devices as the registry stores them: with the partitions the census reads by (``tasks/search.py``)."""
    await mongo_db["devices"].insert_many([{**device, **search.search_fields(device["_id"], device)}
                                           for device in devices])


async def _sick_firmware(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    """Six S120 devices turned critical: a bad-firmware incident is due."""
    await _insert_devices(mongo_db, [
        {"_id": f"D{n}", "product_class": "HG8245H", "software_version": "S120", "presence": "online",
         "offline_after": NOW + timedelta(hours=1),
         "health": {"status": "critical", "since": NOW - timedelta(seconds=30)}, "health_definite": "critical"}
        for n in range(6)])


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
            fields = summary_fields(device["health"], result, clock[0])  # as the health poll stores a read
            await mongo_db["devices"].update_one({"_id": device["_id"]}, {"$set": fields})
        return await detector.run()

    assert (await read_all(Level.UNKNOWN, "health read failed: 9002 Internal error"))["resolved"] == 0
    incident = (await _open_incidents(mongo_db))[0]
    assert incident["affected_now"] == 6, "crash-looping devices are still sick"
    assert (await read_all(Level.OK, ""))["resolved"] == 1, "a successful ok read is the recovery"


def _fleet(olts: int, per_olt: int) -> list[dict[str, Any]]:
    return [{"_id": f"F{olt:02d}-{n:03d}", "olt_id": f"OLT-{olt:02d}", "pon_port": f"0/1/{n % 4}",
             "product_class": "HG8245H", "software_version": f"S{100 + n % 7}", "tags": [],
             "remote_ip": f"10.{olt}.{n % 8}.{n + 1}", "presence": "online",
             "offline_after": NOW + timedelta(hours=1)} for olt in range(olts) for n in range(per_olt)]


async def _go_offline(mongo_db: AsyncDatabase[MongoDocument], ids: list[str], ago: float = 30) -> None:
    since = NOW - timedelta(seconds=ago)
    await mongo_db["devices"].update_many(
        {"_id": {"$in": ids}}, {"$set": {"presence": "offline", "offline_since": since, "offline_after": since}})


async def test_a_run_reads_the_affected_devices_and_judges_them_by_the_census(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    clock = [NOW]
    detector = await _detector(mongo_db, clock)
    await _insert_devices(mongo_db, _fleet(olts=10, per_olt=60))
    churn = ["F03-007", "F05-011", "F08-000"]
    await _go_offline(mongo_db, churn)
    counts = await detector.run()
    assert (counts["devices"], counts["affected"], counts["census_taken"]) == (600, 3, True)
    assert counts["opened"] == counts["exact_counts"] == 0
    clock[0] += timedelta(seconds=30)
    await _go_offline(mongo_db, [f"F02-{n:03d}" for n in range(30)])  # half of OLT-02 goes dark
    counts = await detector.run()
    assert (counts["affected"], counts["census_taken"], counts["opened"]) == (33, False, 1)
    assert counts["exact_counts"] >= 1, "the OLT was counted again before the incident opened"
    incident = (await mongo_db["incidents"].find({"status": "open"}).to_list())[0]
    assert incident["key"] == "olt:OLT-02" and incident["group_size"] == 60 and incident["member_count"] == 30


async def test_a_group_grown_since_the_census_is_counted_before_it_is_judged(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    clock = [NOW]
    detector = await _detector(mongo_db, clock)
    await _insert_devices(mongo_db, _fleet(olts=10, per_olt=60))
    assert (await detector.run())["census_taken"]
    # 100 devices are re-homed to a new OLT (the fleet's size does not change: the census stays),
    # then 12 of them go offline: 12 of 100, not 12 of the 0 the census knows of.
    moved = [f"F{olt:02d}-{n:03d}" for olt in range(10) for n in range(50, 60)]
    await mongo_db["devices"].update_many({"_id": {"$in": moved}}, {"$set": {"olt_id": "OLT-NEW"}})
    clock[0] += timedelta(seconds=30)
    await _go_offline(mongo_db, moved[:12])
    counts = await detector.run()
    assert not counts["census_taken"] and counts["exact_counts"] >= 1
    assert counts["opened"] == 0, "12% of the new OLT is no outage"
    await _go_offline(mongo_db, moved[:40])
    clock[0] += timedelta(seconds=30)
    assert (await detector.run())["opened"] == 1
    incident = (await mongo_db["incidents"].find({"status": "open"}).to_list())[0]
    assert incident["key"] == "olt:OLT-NEW" and incident["group_size"] == 100


async def _dark_pons(mongo_db: AsyncDatabase[MongoDocument], pons: list[str], since: datetime,
                     first: int = 0) -> None:
    """16 ONTs on each of ``pons`` of OLT-0002 that went offline at ``since``."""
    await _insert_devices(mongo_db, [
        {"_id": f"P{first + n:03}", "olt_id": "OLT-0002", "pon_port": pon, "presence": "offline",
         "offline_since": since, "offline_after": since}
        for n, pon in enumerate(pon for pon in pons for _ in range(16))])


async def test_an_outage_spreading_to_the_olts_other_pons_becomes_the_olts_incident_with_current_numbers(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    clock = [NOW]
    detector = await _detector(mongo_db, clock)
    await _insert_devices(mongo_db, [  # the OLT's third PON stays up
        {"_id": f"U{n:03}", "olt_id": "OLT-0002", "pon_port": "0/3/0", "presence": "online",
         "offline_after": NOW + timedelta(hours=1)} for n in range(12)])
    await _dark_pons(mongo_db, ["0/1/0"], NOW - timedelta(seconds=30))
    await detector.run()
    [first] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    assert (first["key"], first["dimension"], first["group_size"]) == ("olt:OLT-0002", "pon", 16)
    assert first["title"] == "Outage on OLT OLT-0002 (PON 0/1/0): 16 of 16 devices offline"

    clock[0] = NOW + timedelta(minutes=1)
    await _dark_pons(mongo_db, ["0/2/0"], clock[0] - timedelta(seconds=10), first=16)
    detector.sizes.max_age = timedelta(0)  # the census is taken again (new devices came up meanwhile)
    await detector.run()
    [grown] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    assert grown["_id"] == first["_id"] and grown["member_count"] == 32
    assert (grown["dimension"], grown["value"], grown["group_size"]) == ("olt", "OLT-0002", 44)
    assert grown["title"] == "Outage on OLT OLT-0002: 32 of 44 devices offline"
    assert grown["cause"] == "shared OLT OLT-0002"
    assert any(entry["event"] == "scope" for entry in grown["timeline"])

    # Some return: the title says how many are still offline, not the numbers it grew to.
    clock[0] = NOW + timedelta(minutes=2)
    await mongo_db["devices"].update_many({"_id": {"$in": [f"P{n:03}" for n in range(10)]}},
                                          {"$set": {"presence": "online", "offline_after": NOW + timedelta(hours=1)}})
    await detector.run()
    [now] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    assert now["title"] == "Outage on OLT OLT-0002: 22 of 44 devices offline" and now["affected_now"] == 22


async def test_a_persisting_problem_resolved_by_hand_is_followed_by_a_new_incident(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    clock = [NOW]
    detector = await _detector(mongo_db, clock)
    await _sick_firmware(mongo_db)
    await detector.run()
    [incident] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    await service.resolve(_repository(mongo_db), incident, "user:olga", "firmware rolled back", NOW)

    clock[0] = NOW + timedelta(seconds=30)  # the devices are still critical at the next run
    counts = await detector.run()
    assert counts["opened"] == 1
    [follow_up] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    assert follow_up["follows"] == incident["_id"] and follow_up["member_count"] == 6
    assert follow_up["title"] == "Software version S120 (HG8245H): 6 of 6 devices in critical health"
    assert "resolved by user:olga (firmware rolled back)" in follow_up["timeline"][0]["detail"]
    old = await mongo_db["incidents"].find_one({"_id": incident["_id"]})
    assert old is not None and old["followed_by"] == follow_up["_id"]
    assert old["resolve_reason"] == "firmware rolled back"
    assert (await detector.run())["opened"] == 0, "followed once"


async def test_a_problem_resolved_by_hand_that_is_over_stays_resolved(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    clock = [NOW]
    detector = await _detector(mongo_db, clock)
    await _sick_firmware(mongo_db)
    await detector.run()
    [incident] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    await service.resolve(_repository(mongo_db), incident, "user:olga", "firmware rolled back", NOW)
    await mongo_db["devices"].update_many({}, {"$set": {"health": {"status": "ok", "since": NOW},
                                                        "health_definite": "ok"}})
    clock[0] = NOW + timedelta(seconds=30)
    assert (await detector.run())["opened"] == 0
    assert await mongo_db["incidents"].count_documents({"status": "open"}) == 0


def _ticking() -> Callable[[], float]:
    """A monotonic clock one second further at each look: a run's census budget ends after one partition."""
    now = [0.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    return tick


async def test_a_census_spread_over_runs_of_two_processes_counts_what_one_whole_pass_counts(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """Issue 13: one run reads a bounded slice of the fleet (one partition here); the pass in progress
    is kept in the database, so the process that holds the lease next goes on with it; until the first
    pass completes, groups near a decision are counted exactly (an outage still opens, with its OLT's
    true size) and no group whose size is unknown moves its baseline."""
    clock = [NOW]
    database = Database(client=mongo_db.client, db=mongo_db)
    incidents = IncidentRepository(database)
    await incidents.ensure_indexes()
    processes = [IncidentDetector(DeviceRepository(database), DeviceEventRepository(database), incidents,
                                  Config(window=timedelta(minutes=15)), lambda: clock[0], census_budget=0.5,
                                  census=IncidentCensusRepository(database), monotonic=_ticking()) for _ in range(2)]
    fleet = _fleet(olts=10, per_olt=60)
    await _insert_devices(mongo_db, fleet)
    await _go_offline(mongo_db, [f"F02-{n:03d}" for n in range(30)])  # half of OLT-02 goes dark

    first = await processes[0].run()
    assert (first["devices"], first["census_taken"], first["opened"]) == (0, False, 1), "no census yet"
    assert 0 < first["census_read"] <= len(fleet) // 20 and first["census_partitions_left"] == search.GROUPS - 1
    [incident] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    assert incident["key"] == "olt:OLT-02" and incident["group_size"] == 60, "counted exactly, not 30 of 30"
    moved = {key: share for key, share in (await incidents.baselines()).items() if key.startswith("subnet:") and share}
    assert moved == {}, "a subnet's 4 offline of 4 seen is no share of 100%: its baseline waits for the census"

    runs = [first]
    while not runs[-1]["census_taken"]:
        clock[0] += timedelta(seconds=30)
        runs.append(await processes[len(runs) // 5 % 2].run())  # the lease changes hands every 5 runs
        assert len(runs) <= search.GROUPS
        if len(runs) == search.GROUPS // 2:  # half the fleet read: large groups are estimated from it
            estimates = processes[(len(runs) - 1) // 5 % 2].sizes.census.sizes
            assert 450 <= estimates["product_class:HG8245H"] <= 750, estimates
            assert not any(key.startswith(("subnet:", "pon:")) for key in estimates), "small groups: no guess"
    assert len(runs) == search.GROUPS and sum(run["census_read"] for run in runs) == len(fleet)
    assert runs[-1]["devices"] == len(fleet) and all(run["opened"] == 0 for run in runs[1:])
    census = processes[(len(runs) - 1) // 5 % 2].sizes.census
    assert census.sizes == grouping.census(fleet), "the same sizes as one pass over the whole fleet"
    other = processes[1 - (len(runs) - 1) // 5 % 2]
    clock[0] += timedelta(seconds=30)
    assert (await other.run())["devices"] == len(fleet), "the other process judges by the published census"
    assert other.sizes.census.sizes == census.sizes


async def test_an_incident_of_thousands_of_members_is_stored_and_found_by_member(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """An outage of a whole OLT: FerretDB 1.24 indexed ``members`` as one PostgreSQL btree key over
    the array, and an incident of 400 ONTs could no longer be opened or grown (SQLSTATE 54000)."""
    incidents = _repository(mongo_db)
    await incidents.ensure_indexes()
    await incidents.ensure_indexes()  # a restart: nothing to create or drop twice
    members = [f"00259E-HG8245H-4857544{n:05d}{(n * 7919) % 100000:05d}" for n in range(3000)]
    number = await incidents.open({**_incident(), "members": members[:300]}, NOW)
    assert number is not None
    assert await incidents.update(number, {"members": members, "member_count": len(members)})
    assert [i["_id"] for i in await incidents.for_device(members[-1])] == [number]
    assert [i["_id"] for i in await incidents.page("open", None, members[2999], None, 10)] == [number]
    assert await incidents.for_device("00259E-HG8245H-NOTAMEMBER") == []


async def test_the_census_reads_for_what_the_run_left_of_its_budget(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    """The affected devices are read first (2,000 offline of 200,000 take about 0.8 s on FerretDB);
    the census gets the rest of the run's budget, so many affected devices slow the pass, not the run.
    With a clock one second further at each look: 1 s goes on the run before the census, so a budget
    of 4 s reads 3 partitions (4 without the deduction), and a budget already spent still reads one."""
    database = Database(client=mongo_db.client, db=mongo_db)
    incidents = IncidentRepository(database)
    await incidents.ensure_indexes()
    await _insert_devices(mongo_db, _fleet(olts=10, per_olt=60))

    def detector(budget: float) -> IncidentDetector:
        return IncidentDetector(DeviceRepository(database), DeviceEventRepository(database), incidents,
                                Config(window=timedelta(minutes=15)), lambda: NOW, census_budget=budget,
                                census=IncidentCensusRepository(database), monotonic=_ticking())

    assert (await detector(4).run())["census_partitions_left"] == search.GROUPS - 3
    await mongo_db["incident_census"].delete_many({})
    assert (await detector(0.5).run())["census_partitions_left"] == search.GROUPS - 1


async def test_with_the_census_in_a_job_of_its_own_a_detection_run_reads_none_of_it(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """``acs serve``: the census is read by the ``incident_census`` job (``advance_census``), in runs of
    a third of the budget three times as often, so the detection run reads none of the fleet beyond
    the affected devices (its census read was a second of the database's attention every 30 s at
    5,000 devices, the sessions' tail). Only that job moves the pass: the detection judges by the
    census it published, in this process and in another."""
    clock = [NOW]
    database = Database(client=mongo_db.client, db=mongo_db)
    incidents = IncidentRepository(database)
    await incidents.ensure_indexes()
    processes = [IncidentDetector(DeviceRepository(database), DeviceEventRepository(database), incidents,
                                  Config(window=timedelta(minutes=15)), lambda: clock[0], census_budget=0.5,
                                  census=IncidentCensusRepository(database), monotonic=_ticking(),
                                  census_in_run=False) for _ in range(2)]
    fleet = _fleet(olts=10, per_olt=60)
    await _insert_devices(mongo_db, fleet)
    await _go_offline(mongo_db, [f"F02-{n:03d}" for n in range(30)])  # half of OLT-02 goes dark

    first = await processes[0].run()
    assert (first["census_read"], first["census_partitions_left"], first["census_taken"]) == (0, 0, False)
    # No census yet, and no estimate: the run judges no group (tests/tasks/test_incident_changes.py)
    assert (first["opened"], first["held"], first["exact_counts"]) == (0, True, 0)
    assert await mongo_db["incident_census"].count_documents({}) == 0, "the detection run moved no pass"

    steps = [await processes[0].advance_census()]
    while not steps[-1]["census_taken"]:
        steps.append(await processes[0].advance_census())
        assert len(steps) <= search.GROUPS
    assert len(steps) == search.GROUPS and sum(step["census_read"] for step in steps) == len(fleet)
    for process in processes:
        clock[0] += timedelta(seconds=30)
        judged = await process.run()
        assert (judged["devices"], judged["census_read"]) == (len(fleet), 0), "judged by the published census"
        assert process.sizes.census.sizes == grouping.census(fleet)
    [incident] = await mongo_db["incidents"].find({"status": "open"}).to_list()
    assert incident["key"] == "olt:OLT-02" and incident["group_size"] == 60
    assert (await processes[1].advance_census())["census_read"] == 0, "a fresh census is not read again"
