"""Job lease claims (``job_claims``) are pruned after an hour, job runs after a week, by indexed
equality on their hour.

Every tick that takes or renews a job lease inserts a claim (tasks/store/jobs.py), about 70,000 a
day; they were deleted with the job runs after 7 days, by a range over ``at`` that FerretDB 1.24
answers by reading the whole collection (about 500,000 claims). A claim decides a race of
seconds: the hourly prune job deletes those older than an hour, one hour at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from acs.config import Settings
from acs.jobs import register_jobs
from acs.services import build_services
from tasks.scheduler import Job, JobRunner
from tasks.store.db import Database
from tasks.store.jobs import JobRepository
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

NOW = datetime(2026, 12, 6, 12, 30, tzinfo=UTC)


class Deletes(monitoring.CommandListener):
    """The filters of the delete commands sent, by collection."""

    def __init__(self) -> None:
        self.filters: dict[str, list[MongoDocument]] = {}

    def of(self, collection: str) -> list[MongoDocument]:
        return self.filters.setdefault(collection, [])

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "delete":
            self.of(event.command["delete"]).extend(dict(statement["q"]) for statement in event.command["deletes"])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Pruning:
    db: AsyncDatabase[MongoDocument]
    jobs: JobRepository
    clock: list[datetime]
    deletes: Deletes
    runner: JobRunner
    prune: Job  # ``prune_job_runs`` as ``acs serve`` registers it


@pytest.fixture
async def pruning(mongo_server: MongoServer, tmp_path: Path) -> AsyncIterator[Pruning]:
    deletes = Deletes()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                              event_listeners=[deletes])
    name = unique_db_name("jobprune")
    clock = [NOW]
    try:
        services = build_services(Settings(data_dir=tmp_path), Database(client=client, db=client[name]),
                                  lambda: clock[0])
        jobs = services.repositories.jobs
        await jobs.ensure_indexes()
        runner = JobRunner(jobs, lambda: clock[0], holder="pruner")
        register_jobs(runner, services)
        prune = next(job for job in runner._registered if job.name == "prune_job_runs")
        yield Pruning(client[name], jobs, clock, deletes, runner, prune)
    finally:
        await client.drop_database(name)
        await client.close()


async def test_claims_older_than_an_hour_are_pruned_hour_by_hour(pruning: Pruning) -> None:
    db, jobs, clock = pruning.db, pruning.jobs, pruning.clock
    # A job ticking every 10 minutes for 6 hours, its lease renewed each tick: a claim a tick.
    for tick in range(36):
        at = NOW - timedelta(hours=6) + timedelta(minutes=10 * tick)
        assert await jobs.take_lease("poll_health", "host:1:x", at + timedelta(minutes=9), at)

    async def pruned() -> dict[str, Any]:
        assert await pruning.runner.tick(pruning.prune)
        run = await db.job_runs.find_one({"job": "prune_job_runs"}, sort=[("started_at", -1)])
        assert run is not None and run["outcome"] == "ok", run
        return dict(run["counts"])

    first = await pruned()
    ats = sorted(claim["at"] for claim in await db.job_claims.find({}).to_list())
    # 35 claims (the first tick took a free lease: no claim), 06:40 to 12:20; kept: the last hour's
    assert ats == [NOW - timedelta(minutes=60 - 10 * n) for n in range(6)], ats
    assert first["claims_pruned"] == 29

    # Later runs delete by the hour only: one indexed equality each, never a range.
    deletes = pruning.deletes.of("job_claims")
    deletes.clear()
    for hours in (1, 2, 30):
        clock[0] = NOW + timedelta(hours=hours)
        now = clock[0]
        at = now - timedelta(minutes=5)
        assert await jobs.take_lease("poll_health", "host:1:x", at + timedelta(minutes=9), at)
        await pruned()
        left = [claim["at"] for claim in await db.job_claims.find({}).to_list()]
        assert left and all(at >= now - timedelta(hours=2) for at in left), (hours, left)
    assert deletes and all(set(query) == {"hour"} and isinstance(query["hour"], int)
                           for query in deletes), deletes
    indexed = {spec["key"][0][0] for spec in (await db.job_claims.index_information()).values()}
    assert "hour" in indexed


async def test_runs_older_than_a_week_are_pruned_hour_by_hour(pruning: Pruning) -> None:
    """The same for ``job_runs`` (kept 7 days): by a range over ``started_at`` the hourly prune read
    every run of the week (about 475,000 at the jobs' intervals)."""
    db, jobs, clock = pruning.db, pruning.jobs, pruning.clock
    for n in range(36):  # a run every 6 hours for 9 days
        started = NOW - timedelta(days=9) + timedelta(hours=6 * n)
        await jobs.record_run({"job": "drift", "holder": "h", "started_at": started, "outcome": "ok"})
    deletes = pruning.deletes.of("job_runs")
    week = timedelta(days=7)
    for hours in (0, 7, 13, 60):
        clock[0] = NOW + timedelta(hours=hours)
        assert await pruning.runner.tick(pruning.prune)
        starts = [run["started_at"] async for run in db.job_runs.find({"job": "drift"})]
        assert starts and min(starts) >= clock[0] - week - timedelta(hours=1), (hours, min(starts))
        assert len(starts) == sum(1 for n in range(36)
                                  if NOW - timedelta(days=9) + timedelta(hours=6 * n) >= clock[0] - week
                                  - timedelta(seconds=(clock[0] - week).timestamp() % 3600)), hours
        if hours == 0:
            deletes.clear()  # the first prune of a database deletes by time, once
    assert deletes and all(set(query) == {"hour"} for query in deletes), deletes
