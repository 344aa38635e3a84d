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

A claim matters only while a racer may still have read the lease it names: seconds. Every tick
that takes or renews a lease makes one (about 70,000 a day), so they are pruned after an hour,
by the hour they were made in (``hour``, one indexed equality per hour: FerretDB 1.24 reads a
whole collection for a range, and a week of claims was about 500,000 documents). Runs, one per
tick that ran, are kept a week and pruned the same way, by the hour they started in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, ensure_indexes, upsert_one

RUN_INDEXES = [
    IndexModel([("job", ASCENDING), ("started_at", DESCENDING)]),
    IndexModel([("started_at", ASCENDING)]),
    IndexModel([("hour", ASCENDING)]),
]
CLAIM_INDEXES = [IndexModel([("hour", ASCENDING)])]
CLAIMS_KEPT = timedelta(hours=1)  # far longer than a take's race (seconds), however slow the database
CLAIMS_PRUNED = "job_claims_pruned"  # job_state: the first claim hour not pruned yet
RUNS_PRUNED = "job_runs_pruned"  # job_state: the first run hour not pruned yet
HOURS_PER_PRUNE = 48  # a prune after a long stop deletes at most this many hours (one delete each)


def hour_of(at: datetime) -> int:
    """The hour ``at`` falls in, as hours since the epoch: what a claim or a run is pruned by."""
    return int(at.timestamp() // 3600)


class JobRepository:
    def __init__(self, database: Database) -> None:
        self._leases = database.collection("job_leases")
        self._claims = database.collection("job_claims")
        self._runs = database.collection("job_runs")
        self._state = database.collection("job_state")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._runs, RUN_INDEXES)
        await ensure_indexes(self._claims, CLAIM_INDEXES)

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
        claim = {"_id": f"{job}@{before.get('until')}", "holder": holder, "at": now, "hour": hour_of(now)}
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
        hour = {"hour": hour_of(run["started_at"])} if isinstance(run.get("started_at"), datetime) else {}
        await self._runs.insert_one({**run, **hour})

    async def runs(self, job: str | None, limit: int, before: tuple[datetime, Any] | None = None) -> list[Document]:
        query: Document = {} if job is None else {"job": job}
        if before is not None:
            started_at, run_id = before
            query["$or"] = [{"started_at": {"$lt": started_at}}, {"started_at": started_at, "_id": {"$lt": run_id}}]
        cursor = self._runs.find(query).sort([("started_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [run async for run in cursor]

    async def prune_runs(self, before: datetime) -> int:
        """Runs started before ``before`` deleted (how many), hour by hour as the claims."""
        return await self._prune_hours(self._runs, RUNS_PRUNED, "started_at", before)

    async def prune_claims(self, now: datetime) -> int:
        """Lease claims older than CLAIMS_KEPT deleted (how many)."""
        return await self._prune_hours(self._claims, CLAIMS_PRUNED, "at", now - CLAIMS_KEPT)

    async def _prune_hours(self, collection: Any, position: str, at: str, before: datetime) -> int:
        """The documents of every hour that ended before ``before`` deleted, hour by hour from where
        the last prune stopped (``job_state`` ``position``): one delete by indexed equality on
        ``hour`` each, at most HOURS_PER_PRUNE a run. FerretDB 1.24 answers a range over ``at`` by
        reading the whole collection."""
        last = hour_of(before) - 1  # the last hour wholly before ``before``
        state = await self.state(position)
        deleted = 0
        if state is None:
            # The first prune of this version: documents written before it carry no ``hour``. One
            # pass by their time (a scan, once), then hour by hour.
            deleted += (await collection.delete_many({at: {"$lt": before}})).deleted_count
            first = last + 1
        else:
            first = int(state["next"])
        end = min(last + 1, first + HOURS_PER_PRUNE)
        for hour in range(first, end):
            deleted += (await collection.delete_many({"hour": hour})).deleted_count
        if state is None or end > first:
            await self.save_state(position, {"next": end})
        return deleted
