"""The ``tasks`` collection: every task ever accepted, with its whole outcome.

State changes are single-document atomic updates whose filter names the expected status, so a
task moves ``queued -> dispatched`` exactly once whoever races for it (STYLE: claim with
``find_one_and_update`` on the expected state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from schemas.tasks import TaskStatus
from tasks.lifecycle import TaskMove, TaskPhase, advance, stored
from tasks.records import TaskRecord
from tasks.store.db import Database, Document, bulk_write, ensure_indexes, read_few, upsert_one
from tasks.store.group_commit import Insert, Update

INDEXES = [
    IndexModel([("device_id", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("device_id", ASCENDING), ("created_at", DESCENDING)]),
    IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)]),
    IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
    IndexModel([("session_id", ASCENDING)]),
    IndexModel([("batch_id", ASCENDING), ("status", ASCENDING)]),
    IndexModel([("params.file_id", ASCENDING), ("status", ASCENDING)]),
    # The console's task queue filtered by kind or by who queued (status is the other equality).
    IndexModel([("kind", ASCENDING), ("status", ASCENDING)]),
    IndexModel([("created_by", ASCENDING), ("status", ASCENDING)]),
    # A session's read of its device's open tasks (``OPEN_ON``).
    IndexModel([("open_on", ASCENDING)]),
    # The expiry job's read of the tasks expiring in one minute (``EXPIRY_DUE``).
    IndexModel([("expiry_due", ASCENDING)]),
]
OPEN = [TaskStatus.QUEUED.value, TaskStatus.DISPATCHED.value]
# The device id of a task while it is open (queued or dispatched), removed when it reaches a final
# status. Every session reads its device's open tasks, and FerretDB 1.24 pushes down no ``$in``:
# by ``device_id`` alone PostgreSQL would read every task the device ever had (a health read an
# hour is 8,760 a year). One top-level equality on this field, served by its own index, reads the
# open ones only, on FerretDB and MongoDB alike. Set by every insert here, removed by ``finish``.
OPEN_ON = "open_on"
# The job-state record of the one pass that gave ``OPEN_ON`` to tasks stored before it existed.
OPEN_ON_BACKFILL = "tasks_open_on"
# The minute a task's ``expires_at`` falls in, set by every insert: the expiry job reads the tasks
# expiring in a minute by this one equality (its own index). By ``{status, expires_at <= now}`` it
# read every open task each run (FerretDB 1.24 pushes the status down, not the range): a bulk task
# of 100,000 queued tasks would be 100,000 documents decoded every 15 s.
EXPIRY_DUE = "expiry_due"
EXPIRY_SLICE_SECONDS = 60
EXPIRY_SCAN = "task_expiry_scan"  # job_state: the first minute the expiry job has not passed yet
EXPIRY_DUE_BACKFILL = "tasks_expiry_due"  # job_state: the one pass that gave open tasks ``EXPIRY_DUE``
# What a task drops when it becomes final: its lease, and its entries in the open-task indexes. A
# finished task kept its ``EXPIRY_DUE`` before: the expiry job's read of a minute then returned every
# task queued in that minute, finished or not (about 3,300 a minute while 5,000 devices came up, 0.7 s a
# run in the steady state), to keep the few still open.
_FINISHED_UNSET = {"lease_until": "", OPEN_ON: "", EXPIRY_DUE: ""}


def expiry_slice(at: datetime) -> int:
    """The minute ``at`` falls in (minutes since the epoch)."""
    return int(at.timestamp()) // EXPIRY_SLICE_SECONDS


@dataclass(frozen=True)
class OpenTasks:
    """A device's open tasks that no session holds, as its session reads them at the Inform.

    Read from the tasks themselves, never from a counter on the device document: on FerretDB 1.24
    every device update is "read the document, write it whole by ``_id``", so any concurrent
    device write could put back an old counter and hide a task until it expires.
    """

    queued: list[TaskRecord]  # oldest first: the order the session claims them in
    awaiting_proof: list[TaskRecord]  # detached, waiting for an Inform (oldest dispatch first)
    # Still held by a session of the device that is gone (the reader holds the device's lease, so
    # no other session of it runs): settled as that session's broken tasks.
    orphaned: list[TaskRecord] = field(default_factory=list)


def claimed_fields(session_id: str, lease_until: datetime, now: datetime) -> Document:
    """What a task claimed by a session stores (besides ``attempts`` one more): marked sent in the
    claim itself, which settles the same way if the session breaks before the send."""
    return {
        "status": TaskStatus.DISPATCHED.value,
        "session_id": session_id,
        "dispatched_at": now,
        "lease_until": lease_until,
        "step": 0,
        "phase": stored(advance(None, TaskMove.CLAIM)),
    }


def by_id(task_id: str, device_id: str | None) -> Document:
    """One task by id; with its device id, a sharded cluster sends the query to one shard
    (``tasks`` is sharded by ``device_id``: docs/scaling.md)."""
    return {"_id": task_id} if device_id is None else {"_id": task_id, "device_id": device_id}


class TaskRepository:
    def __init__(self, database: Database) -> None:
        self._documents = database.collection("tasks")
        # The one place a stored task gets its type: the driver decodes each document as a TaskRecord.
        self._tasks = cast("AsyncCollection[TaskRecord]", self._documents)
        # Idempotency keys live in their own collection so a unique _id enforces them
        # (FerretDB has no partial or sparse unique indexes; MongoDB needs none this way).
        self._keys = database.collection("task_idempotency")
        # One document per RPC sent for a task attempt, keyed by (task, attempt, step): the unique
        # _id makes "sent at most once" hold even where findAndModify is not atomic (FerretDB 1.24
        # reads, then writes by _id), and it is the record of every send.
        self._sends = database.collection("task_sends")
        self._writer = database.writer("tasks")
        self._send_writer = database.writer("task_sends")
        self._state = database.collection("job_state")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._tasks, INDEXES)

    async def reserve_key(self, key: str, task_id: str, request_hash: str, now: datetime) -> Document | None:
        """Bind an idempotency key to task_id and the request's fingerprint.

        Returns the binding already there (``task_id``, ``request_hash``: absent on keys stored
        before fingerprints were), if any.
        """
        try:
            await self._keys.insert_one(
                {"_id": key, "task_id": task_id, "request_hash": request_hash, "created_at": now}
            )
        except DuplicateKeyError:
            return await self._keys.find_one({"_id": key})
        return None

    async def record_send(self, task_id: str, attempt: int, step: int, session_id: str, now: datetime) -> bool:
        """True when this session is the first and only one to send this step of this attempt."""
        key = _send_key(task_id, attempt, step)
        try:
            await self._send_writer.write(
                Insert({"_id": key, "task_id": task_id, "session_id": session_id, "at": now})
            )
        except DuplicateKeyError:
            return False
        return True

    async def insert(self, task: TaskRecord) -> None:
        """Store a queued task (group-committed)."""
        await self._writer.write(Insert(_opened(task)))

    async def insert_claimed(
        self, task: TaskRecord, session_id: str, lease_until: datetime, now: datetime
    ) -> TaskRecord:
        """Store a new task already claimed by the session that creates it (one insert, no claim:
        the provisioning of a BOOTSTRAP, sent in that session); the task as stored."""
        claimed = _opened(cast(TaskRecord, {**task, **claimed_fields(session_id, lease_until, now), "attempts": 1}))
        await self._writer.write(Insert(claimed))
        return claimed

    async def was_sent(self, task: TaskRecord) -> bool:
        """Whether the current step of this attempt was recorded as sent (``record_send``)."""
        key = _send_key(task["_id"], int(task.get("attempts", 0)), int(task.get("step", 0)))
        return await self._sends.find_one({"_id": key}, {"_id": 1}) is not None

    async def insert_all(self, tasks: list[TaskRecord]) -> None:
        """Store queued tasks in capped unordered commands (a job queueing many, a profile's plan)."""
        if tasks:
            await bulk_write(self._documents, [Insert(_opened(task)) for task in tasks])

    async def open_for_device(self, device_id: str) -> OpenTasks:
        """The device's open tasks (queued, waiting for its next Inform, held by a gone session), in
        one query, for the session that holds the device's lease: top-level equalities only
        (``OPEN_ON``, served by its own index, so the device's finished tasks are not read).
        """
        # ``device_id`` too: the shard key, so a sharded cluster asks one shard (docs/scaling.md).
        stored = await read_few(self._documents, {OPEN_ON: device_id, "device_id": device_id})
        found = [cast(TaskRecord, task) for task in stored if task["status"] in OPEN]
        queued = [task for task in found if task["status"] == TaskStatus.QUEUED.value]
        dispatched = [task for task in found if task["status"] == TaskStatus.DISPATCHED.value]
        queued.sort(key=lambda task: (task["created_at"], task["_id"]))
        dispatched.sort(key=lambda task: (task.get("dispatched_at") or task["created_at"], task["_id"]))
        waiting = [task for task in dispatched if task.get("session_id") is None]
        orphaned = [task for task in dispatched if task.get("session_id") is not None]
        return OpenTasks(queued, waiting, orphaned)

    async def open_of_kind(self, device_id: str, kind: str) -> TaskRecord | None:
        """One open task of this kind for the device (by its open-task index), if any."""
        return await self._tasks.find_one({OPEN_ON: device_id, "device_id": device_id, "kind": kind})

    async def get(self, task_id: str, device_id: str | None = None) -> TaskRecord | None:
        return await self._tasks.find_one(by_id(task_id, device_id))

    async def claim_next(
        self, device_id: str, session_id: str, lease_until: datetime, now: datetime
    ) -> TaskRecord | None:
        """Oldest queued task of the device becomes dispatched in this session (at most once)."""
        return await self._tasks.find_one_and_update(
            {OPEN_ON: device_id, "device_id": device_id, "status": TaskStatus.QUEUED.value},
            # The caller sends it next (or finishes it).
            {"$set": claimed_fields(session_id, lease_until, now), "$inc": {"attempts": 1}},
            sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def resume(self, device_id: str, session_id: str, lease_until: datetime) -> TaskRecord | None:
        """A task whose awaited Inform event arrived continues in this session (its next step)."""
        return await self._tasks.find_one_and_update(
            {
                OPEN_ON: device_id,
                "device_id": device_id,
                "status": TaskStatus.DISPATCHED.value,
                "session_id": None,
                "phase": TaskPhase.RESUME.value,
            },
            {
                "$set": {
                    "session_id": session_id,
                    "lease_until": lease_until,
                    "phase": stored(advance(TaskPhase.RESUME, TaskMove.RESUME)),
                }
            },
            sort=[("dispatched_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def update_dispatched(
        self, task_id: str, session_id: str | None, fields: Mapping[str, Any], device_id: str | None = None
    ) -> bool:
        """Change a dispatched task still owned by ``session_id`` (None: owned by no session)."""
        result = await self._tasks.update_one(
            {**by_id(task_id, device_id), "status": TaskStatus.DISPATCHED.value, "session_id": session_id},
            {"$set": dict(fields)},
        )
        return result.matched_count == 1

    async def finish(
        self, task_id: str, expected: list[str], status: TaskStatus, fields: Mapping[str, Any],
        device_id: str | None = None,
    ) -> TaskRecord | None:
        """Move to a final status from one of ``expected``; None if it was not in one of them."""
        return await self._tasks.find_one_and_update(
            {**by_id(task_id, device_id), "status": {"$in": expected}},
            {"$set": {**fields, "status": status.value}, "$unset": _FINISHED_UNSET},
            return_document=ReturnDocument.AFTER,
        )

    async def finish_known(
        self, task: TaskRecord, expected: list[str], status: TaskStatus, fields: Mapping[str, Any]
    ) -> TaskRecord | None:
        """:meth:`finish` for a task the caller holds whole (a session's own task): group-committed,
        and the task as finished is built from it instead of read back. None if the task was no
        longer in one of ``expected`` (the upsert then collides on ``_id``: ``group_commit.py``)."""
        update = {"$set": {**fields, "status": status.value}, "$unset": _FINISHED_UNSET}
        query = {**by_id(task["_id"], task["device_id"]), "status": {"$in": expected}}
        try:
            applied = {**by_id(task["_id"], task["device_id"]), "status": status.value}
            await self._writer.write(Update(query, update, upsert=True, applied=applied))
        except DuplicateKeyError:
            return None
        finished: Document = {**task, **fields, "status": status.value}
        for name in _FINISHED_UNSET:
            finished.pop(name, None)
        return cast(TaskRecord, finished)

    async def requeue(
        self, task_id: str, session_id: str, fields: Mapping[str, Any], device_id: str | None = None
    ) -> bool:
        result = await self._tasks.update_one(
            {**by_id(task_id, device_id), "status": TaskStatus.DISPATCHED.value, "session_id": session_id},
            {
                # Queued again: no phase (tasks/lifecycle.py), as before its first claim.
                "$set": {
                    **fields,
                    "status": TaskStatus.QUEUED.value,
                    "session_id": None,
                    "phase": stored(advance(TaskPhase.SENT, TaskMove.REQUEUE)),
                },
                "$unset": {"lease_until": "", "step": "", "state": ""},
            },
        )
        return result.matched_count == 1

    async def in_session(self, session_id: str) -> list[TaskRecord]:
        cursor = self._tasks.find({"session_id": session_id, "status": TaskStatus.DISPATCHED.value})
        return [task async for task in cursor]

    async def by_command_key(self, device_id: str, command_key: str) -> TaskRecord | None:
        return await self._tasks.find_one({"device_id": device_id, "command_key": command_key})

    async def expired(self, now: datetime, limit: int = 500) -> list[TaskRecord]:
        # One equality query per status rather than $in: both use the (status, expires_at) index,
        # and FerretDB pushes equality down to its backend but evaluates $in by scanning.
        found: list[TaskRecord] = []
        for status in OPEN:
            cursor = self._tasks.find({"status": status, "expires_at": {"$lte": now}}).limit(limit - len(found))
            found += [task async for task in cursor]
            if len(found) >= limit:
                break
        return found

    async def lease_lost(self, now: datetime, limit: int = 500) -> list[TaskRecord]:
        cursor = self._tasks.find({"status": TaskStatus.DISPATCHED.value, "lease_until": {"$lte": now}}).limit(limit)
        return [task async for task in cursor]

    async def for_device(
        self, device_id: str, before: tuple[datetime, str] | None, limit: int, status: str | None = None
    ) -> list[TaskRecord]:
        query: Document = {"device_id": device_id}
        if status is not None:
            query["status"] = status
        if before is not None:
            created_at, task_id = before
            query["$or"] = [
                {"created_at": {"$lt": created_at}},
                {"created_at": created_at, "_id": {"$lt": task_id}},
            ]
        cursor = self._tasks.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [task async for task in cursor]

    async def count_open_by(self, created_by: str) -> int:
        """Open tasks one creator has (the health poll's reads in flight): equalities only, read per
        status (FerretDB evaluates ``$in`` and counts by scanning); open tasks are bounded by work in flight."""
        total = 0
        for status in OPEN:
            cursor = self._tasks.find({"status": status, "created_by": created_by}, {"_id": 1})
            total += len([task async for task in cursor])
        return total

    async def open_download_of(self, file_id: str) -> TaskRecord | None:
        """A queued or dispatched download of a stored file (which must not be deleted meanwhile)."""
        return await self._tasks.find_one({"params.file_id": file_id, "status": {"$in": OPEN}})

    async def count_by_status(self, batch_id: str) -> dict[str, int]:
        pipeline: list[Document] = [
            {"$match": {"batch_id": batch_id}},
            {"$group": {"_id": "$status", "n": {"$sum": 1}}},
        ]
        cursor = await self._documents.aggregate(pipeline)
        return {str(row["_id"]): int(row["n"]) async for row in cursor}

    async def queued_in_batch(self, batch_id: str, limit: int) -> list[TaskRecord]:
        cursor = self._tasks.find({"batch_id": batch_id, "status": TaskStatus.QUEUED.value}).limit(limit)
        return [task async for task in cursor]

    async def listing(
        self, equal: Mapping[str, Any], before: tuple[datetime, str] | None, limit: int
    ) -> list[TaskRecord]:
        """Newest first, by top-level equalities only (``status``, ``device_id``, ``kind``,
        ``created_by``, ``batch_id``: each leads an index); ``before``: the last task of the previous page."""
        query: Document = dict(equal)
        if before is not None:
            created_at, task_id = before
            query["$or"] = [{"created_at": {"$lt": created_at}}, {"created_at": created_at, "_id": {"$lt": task_id}}]
        cursor = self._tasks.find(query, {"params": 0}).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return [task async for task in cursor.limit(limit)]

    async def failures(self, limit: int) -> list[TaskRecord]:
        """Failed tasks (the faults page), by the ``status`` equality; what grouping them needs."""
        projection = {"device_id": 1, "kind": 1, "fault": 1, "reason": 1, "finished_at": 1, "created_at": 1}
        cursor = self._tasks.find({"status": TaskStatus.FAILED.value}, projection).batch_size(5000).limit(limit)
        return [task async for task in cursor]

    async def backfill_open_on(self) -> int:
        """Give ``OPEN_ON`` to the open tasks stored before it existed (once: the caller records the
        pass). One read per open status, then capped writes; each write names the status it read,
        so a task finished meanwhile is left as it is. The tasks written."""
        writes: list[Update] = []
        for status in OPEN:  # one equality each: FerretDB pushes it down (``$in`` it would scan)
            cursor = self._tasks.find({"status": status}, {"device_id": 1, OPEN_ON: 1})
            async for task in cursor:
                if OPEN_ON not in task:
                    query = {"_id": task["_id"], "device_id": task["device_id"], "status": status}
                    writes.append(Update(query, {"$set": {OPEN_ON: task["device_id"]}}))
        if writes:
            await bulk_write(self._documents, writes)
        return len(writes)


    async def backfill_expiry_due(self, not_before: int | None = None) -> int:
        """Give ``EXPIRY_DUE`` to the open tasks stored without it: before it existed (once, at
        start-up, as ``backfill_open_on``), or by a process of the version before it during a
        rolling upgrade (the hourly ``backfill_expiry_due`` job). Without it the expiry job would
        never find them. ``not_before``: the first minute the expiry scan has not passed (a task
        whose minute it passed already is given that one). The tasks written."""
        writes: list[Update] = []
        for status in OPEN:
            cursor = self._tasks.find({"status": status}, {"device_id": 1, "expires_at": 1, EXPIRY_DUE: 1})
            async for task in cursor:
                if EXPIRY_DUE not in task and task.get("expires_at") is not None:
                    query = {"_id": task["_id"], "device_id": task["device_id"], "status": status}
                    minute = max(expiry_slice(task["expires_at"]), not_before or 0)
                    writes.append(Update(query, {"$set": {EXPIRY_DUE: minute}}))
        if writes:
            await bulk_write(self._documents, writes)
        return len(writes)

    async def expiring(self, minute: int) -> list[TaskRecord]:
        """The open tasks whose expiry falls in ``minute`` (``expiry_slice``), soonest first: one
        indexed equality, which reads that minute's tasks only."""
        found = [task async for task in self._tasks.find({EXPIRY_DUE: minute}) if task["status"] in OPEN]
        return sorted(found, key=lambda task: task["expires_at"])

    async def expiry_scan(self) -> int | None:
        """The first minute the expiry job has not passed yet; None before its first pass."""
        state = await self._state.find_one({"_id": EXPIRY_SCAN})
        return None if state is None else int(state["next"])

    async def set_expiry_scan(self, minute: int) -> None:
        await upsert_one(self._state, {"_id": EXPIRY_SCAN}, {"$set": {"next": minute}})


def _opened(task: TaskRecord) -> TaskRecord:
    """The task as stored while open: its device id in ``OPEN_ON`` (every insert is of an open task)
    and the minute it expires in (``EXPIRY_DUE``)."""
    opened = cast(TaskRecord, {**task, OPEN_ON: task["device_id"]})
    if "expires_at" in task:
        opened["expiry_due"] = expiry_slice(task["expires_at"])
    return opened


def _send_key(task_id: str, attempt: int, step: int) -> str:
    """The ``task_sends`` ``_id`` of one step of one attempt: its unique index is "sent at most once"."""
    return f"{task_id}/{attempt}/{step}"
