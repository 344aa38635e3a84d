"""Issue 13 item 2: the drift report without a fleet scan when no profile is enabled.

``configuration_drift`` read all 200,000 devices every hour (63-118 s a run) to check none, since
no profile was defined. With no profile enabled only devices with overrides can differ: a device's
``has_overrides`` is written with its overrides (``ProfileEngine.set_overrides``), devices stored
before it get it from the search fields' backfill (version 6), and once that pass is complete the
report reads them by that one indexed equality. With a profile enabled the fleet is read as before.
The report is the same either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from acs.config import Settings
from acs.services import build_services
from schemas.profiles import ProfileSpec
from tasks import search
from tasks.profiles.drift_report import DriftReporter
from tasks.profiles.service import ProfileService
from tasks.search_backfill import SearchBackfill
from tasks.store.db import Database
from tasks.store.devices import SEARCH_BACKFILL, DeviceRepository
from tests.support.mongo import MongoDocument, MongoServer, StartedCommands, unique_db_name

FLEET = 40


def _device(n: int) -> MongoDocument:
    device_id = f"00259E-HG8245H-DRF{n:04d}"
    facts = {"serial_number": f"DRF{n:04d}", "tags": []}
    document: MongoDocument = {"_id": device_id, "oui": "00259E", "product_class": "HG8245H",
                               "root": "InternetGatewayDevice.", "presence": "online", **facts}
    if n % 10 == 3:  # stored with overrides before the marker existed
        document["configuration_overrides"] = [{"name": "wifi.ssid", "value": f"home-{n}"}]
    return {**document, **search.search_fields(device_id, facts)}


def _report(document: MongoDocument | None) -> MongoDocument:
    assert document is not None
    return {key: value for key, value in document.items() if key not in {"_id", "at", "finished_at"}}


async def test_with_no_profile_enabled_the_drift_report_reads_the_devices_with_overrides_only(
    mongo_server: MongoServer, tmp_path: Path,
) -> None:
    listener = StartedCommands()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                               event_listeners=[listener])
    name = unique_db_name("driftreport")
    try:
        database = Database(client=client, db=client[name])
        services = build_services(Settings(data_dir=tmp_path), database)
        await services.repositories.ensure_indexes()
        await database.db.devices.insert_many([_device(n) for n in range(FLEET)])
        reports, jobs = services.repositories.drift, services.repositories.jobs

        def reporter() -> DriftReporter:  # a process of its own: the backfill's state read afresh
            return DriftReporter(services.profiles, DeviceRepository(database), reports, services.clock, 1000)

        async def device_reads(run: Any) -> tuple[dict[str, Any], list[MongoDocument]]:
            listener.started_commands.clear()
            counts = await run()
            return counts, [command["filter"] for found, command in listener.started_commands
                            if found == "find" and command["find"] == "devices"]

        # Before the backfill's pass: the fleet is read (a device stored before the marker has none).
        counts, reads = await device_reads(reporter().run)
        assert reads == [{}] and counts["checked"] == 4, (counts, reads)
        assert await SearchBackfill(services.repositories.devices, jobs, 60.0).run()
        assert (await jobs.state(SEARCH_BACKFILL) or {}).get("version") == search.VERSION == 7
        assert await database.db.devices.count_documents({"has_overrides": True}) == 4
        # Overrides set since are marked with them, and unmarked when emptied.
        ids = [_device(n)["_id"] for n in range(FLEET)]
        assert await services.profiles.set_overrides(ids[5], [("wifi.ssid", "mine")])
        assert await services.profiles.set_overrides(ids[13], [])

        counts, reads = await device_reads(reporter().run)
        assert reads == [{"has_overrides": True}], reads  # before: [{}], the whole fleet
        assert counts["checked"] == 4 and counts["read"] == "overrides", counts
        by_marker = _report(await reports.latest())
        if mongo_server.kind == "ferretdb-postgresql":
            explained = await database.db.command({"explain": {"find": "devices", "filter": {"has_overrides": True}}})
            assert explained.get("filterPushdown") is True, explained
        # The same data read whole gives the same report (the backfill's state as before its pass).
        await database.db.job_state.update_one({"_id": SEARCH_BACKFILL}, {"$set": {"version": 5}})
        counts, reads = await device_reads(reporter().run)
        assert reads == [{}] and counts.get("read") == "fleet", (counts, reads)
        assert _report(await reports.latest()) == by_marker
        assert by_marker["devices_checked"] == 4 and by_marker["devices_out_of_sync"] == 4, by_marker
        await database.db.job_state.update_one({"_id": SEARCH_BACKFILL}, {"$set": {"version": 6}})

        # A profile enabled: every device may be selected, the fleet is read.
        profiles = ProfileService(services.repositories.profiles, services.profiles, services.repositories.devices,
                                  services.box, services.clock)
        await profiles.save(ProfileSpec.model_validate({"name": "wifi", "parameters": {"wifi.ssid": "isp"}}), "test")
        counts, reads = await device_reads(reporter().run)
        assert reads == [{}] and counts["checked"] == FLEET, (counts, reads)
    finally:
        await client.drop_database(name)
        await client.close()
