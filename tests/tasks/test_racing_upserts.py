"""Upserts that several ACS processes run at once, on the real database: FerretDB 1.24 runs an
upsert as "find, then insert", so the writers that lose the race hit the unique ``_id``. None of
them may fail: ``acs serve --workers 2`` on a fresh database lost a worker to it at start-up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from tasks.store.db import Database
from tasks.store.fault_clears import FaultClearRepository
from tasks.store.jobs import JobRepository
from tests.support.mongo import MongoDocument
from tests.tasks.test_offline import T0

WRITERS = 8


async def test_every_process_records_a_start_up_pass_without_an_error(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    jobs = JobRepository(Database(client=mongo_db.client, db=mongo_db))
    for round_ in range(5):  # a few fresh documents: the race is lost on some of them, not all
        job = f"start-up-pass-{round_}"
        await asyncio.gather(*(jobs.save_state(job, {"written": n}) for n in range(WRITERS)))
        state = await jobs.state(job)
        assert state is not None and state["written"] in range(WRITERS)


async def test_two_operators_clearing_one_fault_both_succeed(mongo_db: AsyncDatabase[MongoDocument]) -> None:
    clears = FaultClearRepository(Database(client=mongo_db.client, db=mongo_db))
    for round_ in range(5):
        await asyncio.gather(*(clears.clear(f"fault-{round_}", T0, f"operator-{n}") for n in range(WRITERS)))
    assert set(await clears.all()) == {f"fault-{n}" for n in range(5)}


async def test_processes_whose_ticks_meet_take_an_expired_job_lease_once(
    mongo_db: AsyncDatabase[MongoDocument],
) -> None:
    # FerretDB 1.24's findAndModify reads, then writes, in two transactions: several processes
    # ticking at once all read the expired lease and all wrote it, so the job ran more than once
    # (two poll_health runs 11 ms apart in tests/e2e/test_jobs_two_processes.py). Each round
    # expires the lease and lets WRITERS processes take it at once: exactly one may run the job.
    jobs = JobRepository(Database(client=mongo_db.client, db=mongo_db))
    doubled = []
    for round_ in range(20):
        now = T0 + timedelta(seconds=10 * round_)
        await mongo_db.job_leases.update_one(
            {"_id": "poll_health"}, {"$set": {"holder": "gone", "until": now - timedelta(seconds=1)}}, upsert=True
        )
        taken = await asyncio.gather(
            *(jobs.take_lease("poll_health", f"host:{n}:x", now + timedelta(seconds=9), now) for n in range(WRITERS))
        )
        if sum(taken) != 1:
            doubled.append((round_, sum(taken)))
    assert doubled == []
