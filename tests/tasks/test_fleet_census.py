"""The fleet census spread over runs (issue 13): each run reads partitions until its time budget is
spent, the pass in progress is kept in the database so another process can go on with it, and the
summary is published only when every partition was read, with the same counts as one whole pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from tasks import search
from tasks.fleet import GROUP_READ_MAX, SIZE_BUCKET, FleetCensus
from tasks.store.db import Database
from tasks.store.devices import DeviceRepository
from tasks.store.fleet import FleetSummaryRepository
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

FLEET = 300
NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def device(n: int) -> MongoDocument:
    document: MongoDocument = {
        "_id": f"CENSUS{n:05d}", "presence": "offline" if n % 10 == 0 else "online",
        "health_definite": ("ok", "warn", "critical")[n % 3], "product_class": ("HG8245H", "F660")[n % 2],
        "software_version": f"V{n % 3}", "olt_id": f"OLT.{n % 4}", "pon_port": f"0/1/{n % 8}",
        "tags": [f"region:r{n % 2}"], "serial_number": f"SN{n:06d}",
    }
    return {**document, **search.search_fields(document["_id"], document)}


def ticking() -> Callable[[], float]:
    """A monotonic clock one second further at each look: every run's budget ends after one read."""
    now = [0.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    return tick


async def test_a_pass_spread_over_runs_publishes_what_one_whole_pass_counts(mongo_server: MongoServer) -> None:
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("census")
    database = Database(client=client, db=client[name])
    try:
        devices = DeviceRepository(database)
        await devices.ensure_indexes()
        await client[name].devices.insert_many([device(n) for n in range(FLEET)])
        summaries = FleetSummaryRepository(database)
        whole = FleetCensus(devices, summaries, lambda: NOW)  # no budget: one run is a whole pass
        assert (await whole.run())["published"] == FLEET
        expected = await summaries.get()
        await client[name].fleet_summary.delete_many({})

        # Two processes sharing the job's lease: one run each in turn, each a budget of one read.
        processes = [FleetCensus(devices, summaries, lambda: NOW, 0.5, ticking()) for _ in range(2)]
        outcomes: list[dict[str, Any]] = []
        for turn in range(search.GROUPS):
            outcomes.append(await processes[turn // 5 % 2].run())
            if turn < search.GROUPS - 1:
                assert await summaries.get() is None, "nothing is published before the pass has read every part"
        assert [o.get("partitions_left") for o in outcomes[:-1]] == list(range(search.GROUPS - 1, 0, -1))
        assert sum(o["devices_read"] for o in outcomes) == FLEET, "each device read once in the pass"
        published = await summaries.get()
        assert published is not None and outcomes[-1]["published"] == FLEET
        for key in ("total", "online", "offline", "ok", "warn", "critical", "by_model", "by_version",
                    "by_region", "by_olt", "olts"):
            assert published[key] == expected[key], key
        assert len(await summaries.pons_of("OLT.1")) == 2

        # A first pass guesses the fleet's size from one bucket: a large one is read by bucket at once.
        await client[name].fleet_summary.delete_many({})
        crowded = [n for n in range(FLEET, FLEET + 200_000)
                   if search.page_bucket(f"CENSUS{n:05d}") == SIZE_BUCKET][: GROUP_READ_MAX // search.BUCKETS + 1]
        await client[name].devices.insert_many([device(n) for n in crowded])
        first = await FleetCensus(devices, summaries, lambda: NOW, 0.5, ticking()).run()
        assert first["partitions_left"] == search.BUCKETS - 1
        await client[name].devices.delete_many({"_id": {"$in": [f"CENSUS{n:05d}" for n in crowded]}})
        await client[name].fleet_summary.delete_many({})

        # The next pass starts over from the first partition; a fleet past GROUP_READ_MAX is read by bucket.
        await client[name].fleet_summary.insert_one({"_id": "census", "pass": None, "last_total": GROUP_READ_MAX + 1})
        first = await processes[0].run()
        assert first["devices_read"] <= FLEET // 50 and first["partitions_left"] == search.BUCKETS - 1
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_pass_begun_on_a_small_fleet_goes_on_by_bucket_once_the_fleet_is_large(
    mongo_server: MongoServer,
) -> None:
    """api200k: a pass begun on the empty database being filled read by group (step 64) for good,
    3,100 devices a run at 200,000 (2-5.7 s every 15 s, its budget 0.5 s). A run by group now
    counts the next group's first bucket and goes on by bucket when the fleet is that large."""
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("censusgrows")
    database = Database(client=client, db=client[name])
    try:
        devices = DeviceRepository(database)
        await devices.ensure_indexes()
        summaries = FleetSummaryRepository(database)
        census = FleetCensus(devices, summaries, lambda: NOW, 0.5, ticking())
        assert (await census.run())["partitions_left"] == search.GROUPS - 1  # empty: by group
        # The fleet grows: group 1 (the pass's next read) now holds 900 devices, 14 a bucket.
        grown = [n for n in range(120_000) if search.page_bucket(f"CENSUS{n:05d}") // search.GROUP_SIZE == 1][:900]
        await client[name].devices.insert_many([device(n) for n in grown])
        in_bucket = sum(1 for n in grown if search.page_bucket(f"CENSUS{n:05d}") == search.GROUP_SIZE)
        run = await census.run()
        assert run["devices_read"] == in_bucket < 40, run  # one bucket, not the group's 900
        assert run["partitions_left"] == search.BUCKETS - search.GROUP_SIZE - 1
        progress = await summaries.progress()
        assert progress is not None and (progress["step"], progress["next"]) == (1, search.GROUP_SIZE + 1)
        # another process goes on by bucket too, from the saved pass
        other = await FleetCensus(devices, summaries, lambda: NOW, 0.5, ticking()).run()
        assert other["partitions_left"] == search.BUCKETS - search.GROUP_SIZE - 2
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_new_pass_begins_a_period_after_the_last_one_began(mongo_server: MongoServer) -> None:
    """A fleet read in less than the period is not read again at once: the runs between read nothing
    and say when the next pass begins; then a new pass counts the fleet as it is now."""
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = unique_db_name("censusperiod")
    database = Database(client=client, db=client[name])
    clock = [NOW]
    try:
        devices = DeviceRepository(database)
        await devices.ensure_indexes()
        await client[name].devices.insert_many([device(n) for n in range(FLEET)])
        summaries = FleetSummaryRepository(database)
        census = FleetCensus(devices, summaries, lambda: clock[0], period_seconds=300)
        assert (await census.run())["published"] == FLEET
        await client[name].devices.insert_many([device(n) for n in range(FLEET, FLEET + 10)])
        clock[0] = NOW + timedelta(seconds=120)
        assert await census.run() == {"devices_read": 0, "next_pass_in": 180.0}
        published = await summaries.get()
        assert published is not None and published["total"] == FLEET
        # another process (the job's lease moved) waits for the same pass's period
        other = FleetCensus(devices, summaries, lambda: clock[0], period_seconds=300)
        assert (await other.run())["devices_read"] == 0
        clock[0] = NOW + timedelta(seconds=301)
        assert (await other.run())["published"] == FLEET + 10
    finally:
        await client.drop_database(name)
        await client.close()
