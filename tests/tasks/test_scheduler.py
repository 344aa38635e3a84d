"""The scheduler's job leases against the real database: once per interval, taken over, held while running."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tasks import scheduler
from tasks.scheduler import Job, JobRunner
from tasks.store.db import Database
from tasks.store.jobs import JobRepository
from tests.support.mongo import MongoDocument
from tests.support.processes import wait_until

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)


def _runners(mongo_db: AsyncDatabase[MongoDocument], clock: Any) -> tuple[JobRunner, JobRunner]:
    jobs = JobRepository(Database(client=mongo_db.client, db=mongo_db))
    return JobRunner(jobs, clock, holder="host-a:1"), JobRunner(jobs, clock, holder="host-b:2")


async def test_one_holder_per_interval_and_a_dead_holder_is_taken_over(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    clock = [NOW]
    first, second = _runners(mongo_db, lambda: clock[0])
    ran: list[str] = []

    def job(runner: JobRunner) -> Job:
        async def run() -> dict[str, Any]:
            ran.append(runner.holder)
            return {"n": len(ran)}
        return Job("detect_incidents", 10.0, run)

    assert await first.tick(job(first))
    clock[0] = NOW + timedelta(seconds=5)
    assert not await second.tick(job(second)), "the lease is held for this interval"
    clock[0] = NOW + timedelta(seconds=10)
    assert await first.tick(job(first)), "the holder's next tick renews its own lease"
    # The first process dies. Its lease ends 9 s after its last tick; the other takes over then.
    clock[0] = NOW + timedelta(seconds=18)
    assert not await second.tick(job(second))
    clock[0] = NOW + timedelta(seconds=19.5)
    assert await second.tick(job(second))
    clock[0] = NOW + timedelta(seconds=20)
    assert not await first.tick(job(first)), "back again, it finds the job taken"
    assert ran == ["host-a:1", "host-a:1", "host-b:2"]
    runs = await mongo_db["job_runs"].find({}).sort("started_at", 1).to_list()
    assert [(run["holder"], run["outcome"], run["counts"]) for run in runs] == [
        ("host-a:1", "ok", {"n": 1}), ("host-a:1", "ok", {"n": 2}), ("host-b:2", "ok", {"n": 3})]


async def test_a_run_longer_than_its_lease_keeps_it_until_it_ends(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    first, second = _runners(mongo_db, lambda: datetime.now(UTC))
    release = asyncio.Event()
    started = asyncio.Event()
    interval = 0.6  # the lease lasts 0.54 s; the run below lasts several of them

    async def slow() -> dict[str, Any]:
        started.set()
        await release.wait()
        return {}

    async def quick() -> dict[str, Any]:
        raise AssertionError("a second run started while the first was still running")

    running = asyncio.create_task(first.tick(Job("poll_health", interval, slow)))
    await asyncio.wait_for(started.wait(), timeout=10)
    began = time.monotonic()

    async def three_leases_later() -> bool:
        assert not await second.tick(Job("poll_health", interval, quick))
        return time.monotonic() - began > 3 * interval

    await wait_until(three_leases_later, timeout=30, interval=0.05)
    release.set()
    assert await asyncio.wait_for(running, timeout=10)
    runs = await mongo_db["job_runs"].find({"job": "poll_health"}).to_list()
    assert len(runs) == 1 and runs[0]["outcome"] == "ok" and runs[0]["duration_ms"] >= 3 * interval * 1000


async def test_a_failing_run_is_recorded_and_the_next_tick_runs_again(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    clock = [NOW]
    runner, _ = _runners(mongo_db, lambda: clock[0])

    async def broken() -> dict[str, Any]:
        raise RuntimeError("database went away")

    assert await runner.tick(Job("expire_tasks", 15.0, broken))
    clock[0] += timedelta(seconds=15)
    assert await runner.tick(Job("expire_tasks", 15.0, broken))
    runs = await mongo_db["job_runs"].find({}).to_list()
    assert [(run["outcome"], run["error"]) for run in runs] == [("error", "RuntimeError: database went away")] * 2


async def test_a_run_far_beyond_its_interval_is_logged_with_where_it_waits(
    mongo_db: AsyncDatabase[MongoDocument], caplog: Any
) -> None:
    """A job stuck on an await (seen as a 5-second job overrunning for ten minutes in a CI run, with
    nothing in the log to say which) is named in a warning, with the coroutine it waits in."""
    jobs = JobRepository(Database(client=mongo_db.client, db=mongo_db))
    runner = JobRunner(jobs, lambda: datetime.now(UTC), holder="host-a:1", overrun_after=0.3)
    release = asyncio.Event()

    async def waits_for_the_release() -> None:
        await release.wait()

    async def stuck() -> dict[str, Any]:
        await waits_for_the_release()
        return {}

    caplog.set_level("WARNING", logger="acs.scheduler")
    running = asyncio.create_task(runner.tick(Job("detect_offline", 0.5, stuck)))

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]

    messages = await wait_until(warned, timeout=10, interval=0.05)
    release.set()
    assert await asyncio.wait_for(running, timeout=10)
    assert "scheduled job detect_offline still running after" in messages[0], messages
    assert "stuck" in messages[0] and "waits_for_the_release" in messages[0], messages


async def test_a_run_whose_database_work_outlasts_its_time_limit_fails_and_is_recorded(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    """Every database operation of a run shares one deadline: a run that never gets its answers
    ends as an error (recorded; the next tick runs the job again) instead of holding the job."""
    jobs = JobRepository(Database(client=mongo_db.client, db=mongo_db))
    runner = JobRunner(jobs, lambda: datetime.now(UTC), holder="host-a:1", run_limit=0.5)
    began = time.monotonic()

    async def endless() -> dict[str, Any]:
        while True:  # database work that never ends (each command checks the run's deadline)
            await mongo_db.command("ping")

    assert await asyncio.wait_for(runner.tick(Job("detect_incidents", 5.0, endless)), timeout=30)
    run = await mongo_db["job_runs"].find_one({"job": "detect_incidents"})
    assert run is not None and run["outcome"] == "error", run
    assert "Timeout" in run["error"] or "timed out" in run["error"], run["error"]
    assert time.monotonic() - began < 20


class CancelLosingJobs(JobRepository):
    """The heartbeat's first renewal loses a cancel, as the driver's pool checkout can on Python
    3.11 under contention (a cancel that meets the end of an ``asyncio.wait_for`` is dropped) and
    the call returns normally. Seen in the outage e2e under load: the heartbeats of poll_health,
    detect_offline, detect_incidents and incident_census renewed their leases for ten minutes after
    their runs ended, each run waiting for its heartbeat, and none of the four ran again."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.calls = 0
        self.renewing = asyncio.Event()

    async def take_lease(self, job: str, holder: str, until: datetime, now: datetime) -> bool:
        self.calls += 1
        if self.calls == 2:  # the first renewal by the heartbeat (the first call is the tick's take)
            self.renewing.set()
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()  # lost for good, as the heartbeat in the e2e lost it
        return await super().take_lease(job, holder, until, now)


async def test_a_heartbeat_that_loses_its_cancel_still_ends_with_its_run(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    jobs = CancelLosingJobs(Database(client=mongo_db.client, db=mongo_db))
    runner = JobRunner(jobs, lambda: datetime.now(UTC), holder="host-a:1")

    async def until_the_lease_is_renewed() -> dict[str, Any]:
        await jobs.renewing.wait()
        return {"ran": 1}

    job = Job("poll_health", 0.5, until_the_lease_is_renewed)
    for _ in range(2):  # the run ends, and the next tick runs the job again
        # Not asyncio.wait_for: its cancel at the deadline would end the wait for the heartbeat.
        ticking = asyncio.create_task(runner.tick(job))
        done, _pending = await asyncio.wait({ticking}, timeout=10)
        assert done, "the tick did not end: it waits for a heartbeat that lost its cancel"
        assert ticking.result()
    runs = [run async for run in mongo_db.job_runs.find({"job": "poll_health"})]
    assert [run["counts"] for run in runs] == [{"ran": 1}, {"ran": 1}]


async def test_jobs_are_phased_so_that_no_two_tick_at_once(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    """Jobs every 10, 15, 30 and 60 s all ticked together once a minute (the burst behind a steady
    state's p99): each now ticks at its own phase, within one interval of the start."""
    runner = JobRunner(JobRepository(Database(client=mongo_db.client, db=mongo_db)), lambda: datetime.now(UTC))

    async def nothing() -> dict[str, Any]:
        return {}

    intervals = [5.0, 15.0, 15.0, 10.0, 30.0, 10.0, 60.0, 60.0, 15.0, 3600.0]
    started = datetime.now(UTC)
    for n, interval in enumerate(intervals):
        runner.add(Job(f"job{n}", interval, nothing))
    runner.add(Job("at_start", 600.0, nothing, at_start=True))
    ticks = runner.next_ticks()
    assert ticks["at_start"] - started < timedelta(seconds=1)
    offsets = {}
    for n, interval in enumerate(intervals):
        first = (ticks[f"job{n}"] - started).total_seconds()
        assert interval - scheduler.PHASE_SPREAD - 1 < first <= interval + 1, (n, first)
        offsets[n] = first % scheduler.PHASE_SPREAD  # every interval here is a multiple of it
    # Within the minute every job ticks in, two jobs tick at least a few tenths of a second apart.
    moments = sorted(offsets.values())
    gaps = [b - a for a, b in zip(moments, [*moments[1:], moments[0] + scheduler.PHASE_SPREAD], strict=True)]
    assert min(gaps) > 0.2, moments
