"""``job_leases`` and ``job_runs``: each scheduled job runs once per interval across all processes.

A job's lease is a document keyed by job name; a process runs the job only when its upsert
takes the lease (free, expired, or already its own). A process that dies mid-run loses the
lease at expiry and another takes the job over.

FerretDB 1.24 runs a findAndModify as a read, then a write, in two PostgreSQL transactions: two
processes whose ticks meet read the same expired lease and both write it, and the job ran twice
(two ``poll_health`` runs 11 ms apart in ``tests/e2e/test_jobs_two_processes.py``). So a take of
a stored lease is decided by an insert, which the unique ``_id`` makes atomic: the claim of the
lease as it was read (``job_claims``, ``<job>@<its until>``), which both racers name alike and
only one inserts. A free lease needs none: the upsert's own insert collides for the second.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, ensure_indexes, upsert_one

RUN_INDEXES = [IndexModel([("job", ASCENDING), ("started_at", DESCENDING)]), IndexModel([("started_at", ASCENDING)])]


class JobRepository:
    def __init__(self, database: Database) -> None:
        self._leases = database.collection("job_leases")
        self._claims = database.collection("job_claims")
        self._runs = database.collection("job_runs")
        self._state = database.collection("job_state")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._runs, RUN_INDEXES)

    async def take_lease(self, job: str, holder: str, until: datetime, now: datetime) -> bool:
        try:
            before = await self._leases.find_one_and_update(
                {"_id": job, "$or": [{"until": {"$lte": now}}, {"holder": holder}]},
                {"$set": {"holder": holder, "until": until}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        if before is None:
            return True  # the lease was free: this upsert's insert took it (a second one collides)
        # Two takes of one stored lease both pass on FerretDB 1.24 (module docstring): the claim of
        # the lease as both read it decides. A renewal claims too (a racer may read it expired).
        claim = {"_id": f"{job}@{before.get('until')}", "holder": holder, "at": now}
        try:
            await self._claims.insert_one(claim)
        except DuplicateKeyError:
            return False
        return True

    async def state(self, job: str) -> Document | None:
        """What a job keeps between runs (a finished one-off pass, a watermark), by job name."""
        return await self._state.find_one({"_id": job})

    async def save_state(self, job: str, fields: Mapping[str, Any]) -> None:
        await upsert_one(self._state, {"_id": job}, {"$set": dict(fields)})

    async def record_run(self, run: Mapping[str, Any]) -> None:
        await self._runs.insert_one(dict(run))

    async def runs(self, job: str | None, limit: int, before: tuple[datetime, Any] | None = None) -> list[Document]:
        query: Document = {} if job is None else {"job": job}
        if before is not None:
            started_at, run_id = before
            query["$or"] = [{"started_at": {"$lt": started_at}}, {"started_at": started_at, "_id": {"$lt": run_id}}]
        cursor = self._runs.find(query).sort([("started_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [run async for run in cursor]

    async def prune_runs(self, before: datetime) -> int:
        """Runs started before ``before`` deleted (how many), and the lease claims made before it."""
        result = await self._runs.delete_many({"started_at": {"$lt": before}})
        await self._claims.delete_many({"at": {"$lt": before}})
        return result.deleted_count
