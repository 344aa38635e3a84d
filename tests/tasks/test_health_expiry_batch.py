"""Issue 13 item 2: the health reads one expiry run ends have their ends written in batches.

A health read's end by expiry cost 6 commands one after the other (the task's end, the device's read,
the result, the trend hour, the device's update, a ``health`` event: docs/performance.md, twelfth
step). The expiry job ends each task by itself (so it ends once), then the health poller's hook for
many (``TaskQueue.final_hooks_many``) reads the devices and writes the results, trend hours, device
updates and events of them all in capped commands. Built as ``acs serve`` builds it
(``build_services``), with the real database and a command listener.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pymongo import AsyncMongoClient

from acs.config import Settings
from acs.services import build_services
from schemas.tasks import GetParameterValuesTask
from tasks.health.poll import HEALTH_USER
from tasks.store.db import Database
from tasks.store.devices import due_slice
from tasks.trends import hour_key
from tests.support.mongo import MongoDocument, MongoServer, StartedCommands, unique_db_name

NOW = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)
READS = 20


async def test_the_health_reads_an_expiry_run_ends_are_stored_in_capped_commands(
    mongo_server: MongoServer, tmp_path: Path,
) -> None:
    listener = StartedCommands()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                               event_listeners=[listener])
    name = unique_db_name("healthexpiry")
    clock = [NOW]
    try:
        database = Database(client=client, db=client[name])
        services = build_services(Settings(data_dir=tmp_path), database, clock=lambda: clock[0])
        await services.repositories.ensure_indexes()
        ids = [f"00E0FC-HG8245H-EXP{n:03d}" for n in range(READS)]
        # Half were read ok before (a change to unknown); the others never read (a change too).
        await database.db.devices.insert_many([
            {"_id": device_id, "presence": "online", "tags": [], "offline_after": NOW + timedelta(hours=1),
             "olt_id": "OLT-7", "health_seq": 3 if n % 2 else 0,
             **({"health": {"status": "ok", "since": NOW - timedelta(days=1)}} if n % 2 else {})}
            for n, device_id in enumerate(ids)])
        request = GetParameterValuesTask(kind="get_parameter_values", names=["Device.DeviceInfo.UpTime"],
                                         expires_in=60)
        await services.queue.create_many([(device_id, request) for device_id in ids], HEALTH_USER)
        clock[0] = NOW + timedelta(seconds=61)
        listener.started_commands.clear()
        assert await services.queue.expire_due() == READS
        ran = list(listener.started_commands)
        assert await services.queue.expire_due() == 0, "each read ends once"
        stored = {entry["device_id"]: entry async for entry in database.db.health_results.find()}
        days = [day async for day in database.db.trend_days.find()]
        devices = {device["_id"]: device async for device in database.db.devices.find()}
        events = [event async for event in database.db.device_events.find()]
    finally:
        await client.drop_database(name)
        await client.close()

    def commands(command_name: str, collection: str) -> list[MongoDocument]:
        return [command for found, command in ran if found == command_name and command[command_name] == collection]

    assert len(commands("findAndModify", "tasks")) == READS  # each end by itself
    assert len(commands("find", "devices")) == READS
    # The writes, 8 to a command (before: one command each, 4 x READS).
    for written, collection, key in (("update", "health_results", "updates"), ("update", "trend_days", "updates"),
                                     ("update", "devices", "updates"), ("insert", "device_events", "documents")):
        sent = commands(written, collection)
        assert sorted(len(command[key]) for command in sent) == [4, 8, 8], (collection, sent)
    # What each device got, once: its result, its trend hour, its summary, its event.
    assert set(stored) == set(ids) and all(entry["status"] == "unknown" for entry in stored.values())
    assert [stored[device_id]["seq"] for device_id in ids] == [3 if n % 2 else 0 for n in range(READS)]
    hour = hour_key(clock[0])
    assert sorted(day["device_id"] for day in days) == ids
    assert all(day["hours"][hour]["reads"] == 1 and day["olt_day"].startswith("OLT-7#") for day in days), days[0]
    for n, device_id in enumerate(ids):
        device = devices[device_id]
        assert device["health"]["status"] == "unknown" and device["health_seq"] == (4 if n % 2 else 1), device
        assert device["health_due"] == due_slice(clock[0]) and device["health_task_until"] is None
    assert sorted((event["device_id"], event["detail"]["from"], event["detail"]["to"]) for event in events) == [
        (device_id, "ok" if n % 2 else None, "unknown") for n, device_id in enumerate(ids)]
