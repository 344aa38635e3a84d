"""Job lease claims (``job_claims``) are pruned after an hour, job runs after a week, by indexed
equality on their hour.

Every tick that takes or renews a job lease inserts a claim (tasks/store/jobs.py), about 70,000 a
day; they were deleted with the job runs after 7 days, by a range over ``at`` that FerretDB 1.24
answers by reading the whole collection (about 500,000 claims). A claim decides a race of
seconds: the hourly prune job deletes those older than an hour, one hour at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from acs.config import Settings
from acs.jobs import register_jobs
from acs.services import build_services
from tasks.scheduler import JobRunner
from tasks.store.db import Database
from tests.support.mongo import MongoDocument, MongoServer, unique_db_name

NOW = datetime(2026, 12, 6, 12, 30, tzinfo=UTC)


class Deletes(monitoring.CommandListener):
    def __init__(self, collection: str = "job_claims") -> None:
        self.collection = collection
        self.filters: list[MongoDocument] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "delete" and event.command["delete"] == self.collection:
            self.filters.extend(dict(statement["q"]) for statement in event.command["deletes"])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_claims_older_than_an_hour_are_pruned_hour_by_hour(mongo_server: MongoServer, tmp_path: Path) -> None:
    deletes = Deletes()
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                              event_listeners=[deletes])
    name = unique_db_name("jobclaims")
    clock = [NOW]
    try:
        services = build_services(Settings(data_dir=tmp_path), Database(client=client, db=client[name]),
                                  lambda: clock[0])
        jobs = services.repositories.jobs
        await jobs.ensure_indexes()
        # A job ticking every 10 minutes for 6 hours, its lease renewed each tick: a claim a tick.
        for tick in range(36):
            at = NOW - timedelta(hours=6) + timedelta(minutes=10 * tick)
            assert await jobs.take_lease("poll_health", "host:1:x", at + timedelta(minutes=9), at)
        runner = JobRunner(jobs, lambda: clock[0], holder="pruner")
        register_jobs(runner, services)
        prune = next(job for job in runner._registered if job.name == "prune_job_runs")

        async def pruned() -> dict[str, Any]:
            assert await runner.tick(prune)
            run = await client[name].job_runs.find_one({"job": "prune_job_runs"}, sort=[("started_at", -1)])
            assert run is not None and run["outcome"] == "ok", run
            return dict(run["counts"])

        first = await pruned()
        ats = sorted(claim["at"] for claim in await client[name].job_claims.find({}).to_list())
        # 35 claims (the first tick took a free lease: no claim), 06:40 to 12:20; kept: the last hour's
        assert ats == [NOW - timedelta(minutes=60 - 10 * n) for n in range(6)], ats
        assert first["claims_pruned"] == 29

        # Later runs delete by the hour only: one indexed equality each, never a range.
        deletes.filters.clear()
        for hours in (1, 2, 30):
            clock[0] = NOW + timedelta(hours=hours)
            now = clock[0]
            at = now - timedelta(minutes=5)
            assert await jobs.take_lease("poll_health", "host:1:x", at + timedelta(minutes=9), at)
            await pruned()
            left = [claim["at"] for claim in await client[name].job_claims.find({}).to_list()]
            assert left and all(at >= now - timedelta(hours=2) for at in left), (hours, left)
        assert deletes.filters and all(set(query) == {"hour"} and isinstance(query["hour"], int)
                                       for query in deletes.filters), deletes.filters
        indexed = {spec["key"][0][0] for spec in (await client[name].job_claims.index_information()).values()}
        assert "hour" in indexed
    finally:
        await client.drop_database(name)
        await client.close()


async def test_runs_older_than_a_week_are_pruned_hour_by_hour(mongo_server: MongoServer, tmp_path: Path) -> None:
    """The same for ``job_runs`` (kept 7 days): by a range over ``started_at`` the hourly prune read
    every run of the week (about 475,000 at the jobs' intervals)."""
    deletes = Deletes("job_runs")
    client: AsyncMongoClient[MongoDocument] = AsyncMongoClient(mongo_server.uri, tz_aware=True,
                                                              event_listeners=[deletes])
    name = unique_db_name("jobruns")
    clock = [NOW]
    try:
        services = build_services(Settings(data_dir=tmp_path), Database(client=client, db=client[name]),
                                  lambda: clock[0])
        jobs = services.repositories.jobs
        await jobs.ensure_indexes()
        for n in range(36):  # a run every 6 hours for 9 days
            started = NOW - timedelta(days=9) + timedelta(hours=6 * n)
            await jobs.record_run({"job": "drift", "holder": "h", "started_at": started, "outcome": "ok"})
        runner = JobRunner(jobs, lambda: clock[0], holder="pruner")
        register_jobs(runner, services)
        prune = next(job for job in runner._registered if job.name == "prune_job_runs")
        week = timedelta(days=7)
        for hours in (0, 7, 13, 60):
            clock[0] = NOW + timedelta(hours=hours)
            assert await runner.tick(prune)
            starts = [run["started_at"] async for run in client[name].job_runs.find({"job": "drift"})]
            assert starts and min(starts) >= clock[0] - week - timedelta(hours=1), (hours, min(starts))
            assert len(starts) == sum(1 for n in range(36)
                                      if NOW - timedelta(days=9) + timedelta(hours=6 * n) >= clock[0] - week
                                      - timedelta(seconds=(clock[0] - week).timestamp() % 3600)), hours
            if hours == 0:
                deletes.filters.clear()  # the first prune of a database deletes by time, once
        assert deletes.filters and all(set(query) == {"hour"} for query in deletes.filters), deletes.filters
    finally:
        await client.drop_database(name)
        await client.close()
