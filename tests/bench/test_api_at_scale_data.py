"""The API benchmark's data is data the ACS wrote: its open incident has the shape the incident job stores.

An incident written by hand without ``title`` or ``selector`` answered the console's page of each of its
members with a 500 (the device's history names its incidents by title: one console search in every
``bench/api_at_scale.py`` run at 20,000 devices landed on such a member), and failed every run of
the incident job in the benchmark's ACS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from bench import api_at_scale
from tasks.history import incident_entry
from tasks.incidents.grouping import Config
from tasks.incidents.job import IncidentDetector
from tasks.store.db import Database
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.incident_census import IncidentCensusRepository
from tasks.store.incidents import IncidentRepository
from tests.support.mongo import MongoDocument

DEVICES = 1500


async def test_the_benchmarks_incident_is_one_the_device_history_and_the_incident_job_read(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    database = Database(client=mongo_db.client, db=mongo_db)
    incidents = IncidentRepository(database)
    await incidents.ensure_indexes()
    await mongo_db["devices"].insert_many([api_at_scale.device_document(i, now) for i in range(DEVICES)])
    number = await api_at_scale.open_incident(database, DEVICES, now)

    [incident] = await mongo_db["incidents"].find({"_id": number}).to_list()
    assert incident["status"] == "open" and incident["member_count"] == DEVICES // 100
    entry = incident_entry(incident)  # what a member's device page lists in its history
    assert entry.summary == f"incident #{number} (open): {incident['title']}"

    detector = IncidentDetector(DeviceRepository(database), DeviceEventRepository(database), incidents,
                                Config(window=timedelta(minutes=15)), lambda: now + timedelta(seconds=30),
                                census=IncidentCensusRepository(database))
    counts = await detector.run()
    assert counts["affected"] == DEVICES // 100
    [still] = await mongo_db["incidents"].find({"_id": number}).to_list()
    assert still["status"] == "open" and still["affected_now"] == DEVICES // 100, "its members are offline"
