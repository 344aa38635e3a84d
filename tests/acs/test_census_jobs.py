"""The jobs of ``acs serve`` that read the whole fleet a slice at a time (the fleet census, the incident
census) read it in short runs: at 5,000 devices a 2 s census run every 60 s and a 1 s one every 30 s
in the incident detection each held the database for their length, and the periodic sessions queued
behind them (the steady state's p99; docs/performance.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from acs.config import Settings
from acs.jobs import register_jobs
from acs.services import build_services
from tasks import search
from tasks.scheduler import Job, JobRunner
from tasks.store.db import Database
from tests.support.mongo import MongoDocument

SHORT_RUN = 0.5  # seconds of reading per run at most


def _jobs(mongo_client: AsyncMongoClient[MongoDocument], mongo_db: AsyncDatabase[MongoDocument],
          tmp_path: Path) -> tuple[JobRunner, dict[str, Job], Settings]:
    settings = Settings(data_dir=tmp_path)
    services = build_services(settings, Database(client=mongo_client, db=mongo_db), lambda: datetime.now(UTC))
    runner = JobRunner(services.repositories.jobs, services.clock)
    register_jobs(runner, services)
    return runner, {job.name: job for job in runner._registered}, settings


async def test_the_fleet_census_reads_in_short_runs_at_the_same_share_of_the_time(
    mongo_client: AsyncMongoClient[MongoDocument], mongo_db: AsyncDatabase[MongoDocument], tmp_path: Path
) -> None:
    _, jobs, _ = _jobs(mongo_client, mongo_db, tmp_path)
    job = jobs["fleet_census"]
    budget = job.run.__self__.budget_seconds  # type: ignore[attr-defined]
    assert budget <= SHORT_RUN, "a census run is a burst of the database's attention: keep it short"
    assert budget / job.interval <= 1 / 30 + 1e-9, "and the same share of the time as before (2 s a minute)"
    period = job.run.__self__.period_seconds  # type: ignore[attr-defined]
    assert period >= 300, "a small fleet is not read back to back: a new pass every 5 minutes at most"


async def test_the_incident_census_is_a_job_of_its_own_and_the_detection_reads_none_of_it(
    mongo_client: AsyncMongoClient[MongoDocument], mongo_db: AsyncDatabase[MongoDocument], tmp_path: Path
) -> None:
    runner, jobs, settings = _jobs(mongo_client, mongo_db, tmp_path)
    census = jobs["incident_census"]
    assert census.interval == settings.incident_check_interval / 3
    await mongo_db["devices"].insert_many([{"_id": f"D{n:04d}", "presence": "online", "olt_id": f"OLT-{n % 5}",
                                            "product_class": "HG8245H", "software_version": "V1", "tags": [],
                                            **search.search_fields(f"D{n:04d}", {})} for n in range(300)])
    assert await runner.tick(jobs["detect_incidents"])
    detection = await mongo_db["job_runs"].find_one({"job": "detect_incidents"})
    assert detection is not None and detection["outcome"] == "ok", detection
    assert detection["counts"]["census_read"] == 0, "the detection run reads no census"
    assert await mongo_db["incident_census"].count_documents({}) == 0
    read = 0
    for _ in range(search.GROUPS):  # a budget's worth a run: the pass over the 300 in a few runs at most
        assert await runner.tick(census)
        run = await mongo_db["job_runs"].find_one({"job": "incident_census"}, sort=[("started_at", -1)])
        assert run is not None and run["outcome"] == "ok", run
        read += run["counts"]["census_read"]
        if run["counts"]["census_taken"]:
            break
    assert read == 300, "the census job read the whole fleet once and published it"
