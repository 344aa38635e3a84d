"""Offline detection against the real database: overdue devices go offline, an Inform brings them back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from cwmp import CwmpVersion, DeviceIdStruct, EventStruct, Inform, ParameterValue
from tasks import search
from tasks.incidents.grouping import Config
from tasks.incidents.job import IncidentDetector
from tasks.offline import OfflineCount, OfflineDetector
from tasks.registry import DeviceRegistry, OfflineMargin, summarize_inform
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository, due_slice
from tasks.store.incident_census import IncidentCensusRepository
from tasks.store.incidents import IncidentRepository
from tasks.store.jobs import JobRepository
from tasks.store.parameters import ParameterRepository
from tests.support.mongo import MongoDocument, MongoServer, StartedCommands

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _inform(serial: str, *events: str) -> Inform:
    return Inform(
        device_id=DeviceIdStruct(manufacturer="T", oui="00E0FC", product_class="HG8245H", serial_number=serial),
        events=tuple(EventStruct(event_code=code, command_key="") for code in events),
        max_envelopes=1,
        current_time=None,
        retry_count=0,
        parameters=(ParameterValue(name="InternetGatewayDevice.DeviceInfo.SoftwareVersion", value="V1"),),
    )


async def test_missed_informs_mark_offline_once_and_an_inform_brings_it_back(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    database = Database(client=mongo_db.client, db=mongo_db)
    devices, events = DeviceRepository(database), DeviceEventRepository(database)
    await devices.ensure_indexes()
    await events.ensure_indexes()
    registry = DeviceRegistry(devices, ParameterRepository(database), events, OfflineMargin(60, 2.0, 10.0))
    seen: list[tuple[str, str]] = []
    registry.transition_hooks.append(lambda device_id, to: seen.append((device_id, to)))
    now = [T0]
    detector = OfflineDetector(devices, events, lambda: now[0], registry.transition_hooks)

    async def inform(serial: str, *codes: str) -> str:
        message = _inform(serial, *codes)
        summary = summarize_inform(message, CwmpVersion.V1_0, "10.0.0.1", 60, now[0])
        await registry.record_inform(summary, message, now[0])
        return summary.device_id

    quiet = await inform("QUIET", "1 BOOT")
    chatty = await inform("CHATTY", "1 BOOT")
    now[0] = T0 + timedelta(seconds=129)
    assert await detector.run() == 0, "2 x 60 s + 10 s grace not yet passed"
    await inform("CHATTY", "2 PERIODIC")
    now[0] = T0 + timedelta(seconds=131)
    assert await detector.run() == 1
    assert await detector.run() == 0, "a transition is recorded once"
    device = await devices.get(quiet)
    assert device is not None and device["presence"] == "offline"
    assert device["offline_since"] == T0 + timedelta(seconds=130)
    now[0] = T0 + timedelta(seconds=300)
    await inform("QUIET", "1 BOOT")
    device = await devices.get(quiet)
    assert device is not None and device["presence"] == "online" and "offline_since" not in device
    # the health read a new device got due at once falls due again on its return (the poll skips offline ones)
    assert device["health_due"] == due_slice(now[0])
    back = await devices.get(chatty)
    assert back is not None and back["health_due"] == due_slice(T0)
    assert seen == [(quiet, "offline"), (quiet, "online")]
    history = sorted((e["at"], e["type"]) for e in await events.for_device(quiet))
    assert history == [(T0, "boot"), (T0 + timedelta(seconds=130), "offline"), (now[0], "boot"), (now[0], "online")]
    assert await events.for_device(chatty, types=["offline"]) == []


async def test_the_deadline_follows_a_changed_periodic_inform_interval_and_a_bulk_change_opens_no_incident(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """20 ONTs on the default 60 s are set to 600 s in bulk; their Informs do not carry the interval."""
    database = Database(client=mongo_db.client, db=mongo_db)
    devices, events = DeviceRepository(database), DeviceEventRepository(database)
    incidents = IncidentRepository(database)
    for repository in (devices, events, incidents):
        await repository.ensure_indexes()
    registry = DeviceRegistry(devices, ParameterRepository(database), events, OfflineMargin(60, 2.0, 10.0))
    now = [T0]
    offline = OfflineDetector(devices, events, lambda: now[0])
    detector = IncidentDetector(devices, events, incidents, Config(window=timedelta(minutes=15), min_devices=5),
                                lambda: now[0], census=IncidentCensusRepository(database))

    async def inform(serial: str, *codes: str) -> str:
        message = _inform(serial, *codes)
        summary = summarize_inform(message, CwmpVersion.V1_0, "10.0.0.1", 60, now[0])
        await registry.record_inform(summary, message, now[0])
        return summary.device_id

    fleet = [await inform(f"S{n:02}", "1 BOOT") for n in range(20)]
    await mongo_db["devices"].update_many({}, {"$set": {"olt_id": "OLT-0001", "pon_port": "0/1/0"}})
    now[0] = T0 + timedelta(seconds=5)
    for device_id in fleet:  # the bulk SetParameterValues each device applied (its task done)
        await registry.on_task_final({
            "device_id": device_id, "kind": "set_parameter_values", "status": "done", "finished_at": now[0],
            "params": {"values": [{"name": "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
                                   "value": 600, "type": "xsd:unsignedInt"}]}})
    now[0] = T0 + timedelta(seconds=300)  # long past 2 x 60 s + 10 s, well inside 2 x 600 s + 10 s
    assert await offline.run() == 0
    assert (await detector.run())["opened"] == 0
    # Their next Informs, 600 s later, still without the interval: the deadline keeps the 600 s.
    now[0] = T0 + timedelta(seconds=605)
    for n in range(20):
        await inform(f"S{n:02}", "2 PERIODIC")
    device = await devices.get(fleet[0])
    assert device is not None and device["periodic_inform_interval"] == 600
    assert device["offline_after"] == now[0] + timedelta(seconds=1210)
    now[0] = T0 + timedelta(seconds=605 + 300)
    assert await offline.run() == 0
    assert (await detector.run())["opened"] == 0
    assert await incidents.open_incidents() == []
    # A read that says 3600 s (set on the device by other means) moves it too.
    await registry.on_task_final({
        "device_id": fleet[1], "kind": "get_parameter_values", "status": "done", "finished_at": now[0],
        "result": {"values": [{"name": "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
                               "value": "3600"}]}})
    device = await devices.get(fleet[1])
    assert device is not None and device["periodic_inform_interval"] == 3600
    assert device["offline_after"] == now[0] + timedelta(seconds=7210)
    # A device that goes silent at 600 s is still found offline.
    now[0] = T0 + timedelta(seconds=605 + 1211)
    assert await offline.run() == 19



async def test_the_offline_count_reads_group_by_group_and_a_pass_spans_runs(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """Issue 13 item 2: a count of every offline device read them all in one run (23.5 s at 200,000
    devices after a long stop, every 60 s); it is now read by ``page_group``, as many groups a run as
    the budget allows, the pass kept in ``job_state``, the gauge's count the last complete pass's."""
    database = Database(client=mongo_db.client, db=mongo_db)
    devices = DeviceRepository(database)
    await devices.ensure_indexes()
    fleet = []
    for n in range(300):
        device_id = f"00E0FC-HG8245H-CNT{n:04d}"
        fleet.append({"_id": device_id, "serial_number": f"CNT{n:04d}", "tags": [],
                      "presence": "offline" if n % 7 == 0 else "online",
                      **search.search_fields(device_id, {"serial_number": f"CNT{n:04d}"})})
    await mongo_db.devices.insert_many(fleet)
    offline = sum(1 for device in fleet if device["presence"] == "offline")
    jobs = JobRepository(database)
    cut = OfflineCount(devices, jobs, budget_seconds=0.0)  # one group a run
    runs = [await cut.run()]
    assert runs[0] == {"groups_left": search.GROUPS - 1} and await cut.last() is None
    while "offline" not in runs[-1]:
        runs.append(await OfflineCount(devices, jobs, budget_seconds=0.0).run())  # any process goes on
    assert len(runs) == search.GROUPS and runs[-1] == {"offline": offline} and await cut.last() == offline
    await mongo_db.devices.update_one({"_id": fleet[1]["_id"]}, {"$set": {"presence": "offline"}})
    assert await OfflineCount(devices, jobs, budget_seconds=60.0).run() == {"offline": offline + 1}, "one run"


async def test_the_offline_count_reads_dense_groups_by_bucket(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    """After a long stop every device is offline: a group's count read 3,100 devices at 200,000,
    3.1-3.6 s a run against its 3 s budget (the api200k catch-up). A run by group counts the next
    group's first bucket first and goes on by bucket when the groups are that full."""
    database = Database(client=mongo_db.client, db=mongo_db)
    devices = DeviceRepository(database)
    await devices.ensure_indexes()
    ids = [f"00E0FC-HG8245H-DNS{n:06d}" for n in range(120_000)]
    group = [device_id for device_id in ids if search.page_bucket(device_id) // search.GROUP_SIZE == 0][:900]
    await mongo_db.devices.insert_many([{"_id": device_id, "presence": "offline", "tags": [],
                                         **search.search_fields(device_id, {})} for device_id in group])
    jobs = JobRepository(database)
    first = await OfflineCount(devices, jobs, budget_seconds=0.0).run()
    state = await jobs.state("count_offline")
    assert state is not None and (state.get("bucket"), state.get("step")) == (1, 1), state  # not group 0
    in_bucket = sum(1 for device_id in group if search.page_bucket(device_id) == 0)
    assert state["counted"] == in_bucket < 40 and first["buckets_left"] == search.BUCKETS - 1
    assert (await OfflineCount(devices, jobs, budget_seconds=0.0).run())["buckets_left"] == search.BUCKETS - 2


async def test_a_catch_up_marks_offline_within_the_budget_and_the_next_run_goes_on(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """Issue 13 item 2: after a long stop every device is overdue, and one unbounded run marked the
    whole fleet (200,000) offline in 450 s. A run now marks devices until its budget is spent (one at
    least) and the next run goes on from the slice of the first device it left, each device marked
    once, with one event each."""
    database = Database(client=mongo_db.client, db=mongo_db)
    devices, events = DeviceRepository(database), DeviceEventRepository(database)
    await devices.ensure_indexes()
    await events.ensure_indexes()
    now = T0 + timedelta(hours=3)
    late = [T0 + timedelta(seconds=7 * n) for n in range(30)]  # 30 deadlines over 42 slices, hours back
    await mongo_db.devices.insert_many([
        {"_id": f"LATE{n:02d}", "presence": "online", "tags": [], "offline_after": at, "offline_due": due_slice(at)}
        for n, at in enumerate(late)])
    await devices.set_scan_position("offline_scan", due_slice(T0) - 1)
    ticks = [0.0]

    def monotonic() -> float:  # each look at the clock: 0.1 s later
        ticks[0] += 0.1
        return ticks[0]

    runs = []
    while True:
        runs.append(await OfflineDetector(devices, events, lambda: now, budget_seconds=0.35,
                                          monotonic=monotonic).run())
        if runs[-1] == 0 or len(runs) > 30:
            break
    assert 1 <= runs[0] <= 4, runs  # within the budget, not the whole backlog
    assert sum(runs) == 30 and len(runs) > 5, runs
    marked = [device async for device in mongo_db.devices.find({"presence": "offline"})]
    assert sorted((device["_id"], device["offline_since"]) for device in marked) == [
        (f"LATE{n:02d}", at) for n, at in enumerate(late)]
    assert len([event async for event in mongo_db.device_events.find({"type": "offline"})]) == 30
    # without a budget, one run marks them all (the tests and tools that build the detector alone)
    await mongo_db.devices.update_many({}, {"$set": {"presence": "online"}})
    await devices.set_scan_position("offline_scan", due_slice(T0) - 1)
    assert await OfflineDetector(devices, events, lambda: now).run() == 30


class _InformsAfterTheScan(DeviceRepository):
    """The devices as the offline job sees them, with one device's Inform committed between the job's
    read of the overdue devices and its marks (a real Inform, by another client): the race the marks'
    filter must settle."""

    def __init__(self, database: Database, late_inform: Callable[[], Awaitable[object]]) -> None:
        super().__init__(database)
        self.late_inform: Callable[[], Awaitable[object]] | None = late_inform

    async def overdue(self, now: datetime, limit: int) -> tuple[list[MongoDocument], int | None]:
        found = await super().overdue(now, limit)
        if self.late_inform is not None:
            inform, self.late_inform = self.late_inform, None
            await inform()
        return found


async def test_a_mass_outage_is_marked_offline_in_bulk_and_a_late_inform_still_wins(
    mongo_db: AsyncDatabase[MongoDocument], mongo_server: MongoServer,
) -> None:
    """Issue 13 item 2: one update and one event insert a device cost about 10 ms a mark at 200,000
    devices, so a mass outage of 10,000 devices took minutes to be marked. The devices of a slice are
    marked by commands of at most 8 statements (one per deadline: ``offline_since`` is each device's
    own), their events inserted 8 to a command; a device that informed after the scan read it is
    left online (the statement's filter re-checks presence and deadline), and each marked device
    gets one event and one hook call."""
    database = Database(client=mongo_db.client, db=mongo_db)
    devices, events = DeviceRepository(database), DeviceEventRepository(database)
    await devices.ensure_indexes()
    await events.ensure_indexes()
    registry = DeviceRegistry(devices, ParameterRepository(database), events, OfflineMargin(60, 2.0, 10.0))

    async def inform(serial: str, at: datetime) -> str:
        message = _inform(serial, "2 PERIODIC")
        summary = summarize_inform(message, CwmpVersion.V1_0, "10.0.0.1", 60, at)
        await registry.record_inform(summary, message, at)
        return summary.device_id

    olt = [await inform(f"OLT{n:02d}", T0) for n in range(20)]  # one deadline: T0 + 130 s
    spread = [await inform(f"SPR{n:02d}", T0 + timedelta(seconds=10, milliseconds=200 * n)) for n in range(20)]
    assert len({due_slice(T0 + timedelta(seconds=140, milliseconds=200 * n)) for n in range(20)}) == 1
    now = T0 + timedelta(seconds=200)
    late = spread[7]
    listener = StartedCommands()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                               event_listeners=[listener])
    seen: list[str] = []
    try:
        watched = Database(client=client, db=client[mongo_db.name])
        scanning = _InformsAfterTheScan(watched, lambda: inform("SPR07", now))
        await scanning.set_scan_position("offline_scan", due_slice(T0))
        detector = OfflineDetector(scanning, DeviceEventRepository(watched), lambda: now,
                                   [lambda device_id, to: seen.append(device_id)])
        assert await detector.run() == 39
        assert await detector.run() == 0, "marked once"
    finally:
        await client.close()
    updates = [command for name, command in listener.started_commands if name == "update"
               and command["update"] == "devices"]
    statements = [statement for command in updates for statement in command["updates"]]
    assert len(updates) == 4, [len(command["updates"]) for command in updates]  # one per device before
    assert len(statements) == 21 and all(
        statement["q"]["presence"] == "online" and statement["q"]["offline_after"] == {"$lte": now}
        for statement in statements), statements
    inserts = [command for name, command in listener.started_commands if name == "insert"]
    assert sorted(len(command["documents"]) for command in inserts) == [4, 4, 7, 8, 8, 8], inserts
    assert sorted(seen) == sorted(device_id for device_id in olt + spread if device_id != late)
    gone = {device["_id"]: device async for device in mongo_db.devices.find({"presence": "offline"})}
    assert set(gone) == set(seen)
    assert all(gone[device_id]["offline_since"] == T0 + timedelta(seconds=130) for device_id in olt)
    assert [gone[device_id]["offline_since"] for device_id in spread if device_id != late] == [
        T0 + timedelta(seconds=140, milliseconds=200 * n) for n in range(20) if n != 7]
    stayed = await devices.get(late)
    assert stayed is not None and stayed["presence"] == "online" and "offline_since" not in stayed
    offline_events = [event async for event in mongo_db.device_events.find({"type": "offline"})]
    assert sorted(event["device_id"] for event in offline_events) == sorted(seen)
    assert all(event["at"] == gone[event["device_id"]]["offline_since"] for event in offline_events)
