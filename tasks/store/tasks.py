"""The ``tasks`` collection: every task ever accepted, with its whole outcome.

State changes are single-document atomic updates whose filter names the expected status, so a
task moves ``queued -> dispatched`` exactly once whoever races for it (STYLE: claim with
``find_one_and_update`` on the expected state).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from schemas.tasks import TaskStatus
from tasks.lifecycle import TaskMove, TaskPhase, advance, stored
from tasks.records import TaskRecord
from tasks.store.db import Database, Document, bulk_write, ensure_indexes
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
]
OPEN = [TaskStatus.QUEUED.value, TaskStatus.DISPATCHED.value]
# Marks on the device document that tell its next Inform whether the session must look for tasks
# (``TaskMarks``): each task queued (created or re-queued) adds one to ``tasks_mark``, each task that
# detaches from a session to wait for a later Inform adds one to ``proof_mark``. A session that
# found nothing left stores the marks it read as ``tasks_drained`` / ``proof_drained``.
TASKS_MARK, TASKS_DRAINED = "tasks_mark", "tasks_drained"
PROOF_MARK, PROOF_DRAINED = "proof_mark", "proof_drained"


@dataclass(frozen=True)
class TaskMarks:
    """What the device document (read by the Inform's upsert) says about the device's tasks.

    ``queued`` is an upper bound of the tasks that may be queued (tasks queued since a session last
    found none; None: unknown, a device stored before the marks); ``proof`` whether some task may
    wait for this Inform's proof. A task is always stored before its mark moves, so a session that
    reads a mark sees every task it counts.
    """

    tasks: int
    proof: int
    queued: int | None
    proof_pending: bool

    @classmethod
    def of(cls, device: Mapping[str, Any]) -> TaskMarks:
        tasks, proof = int(device.get(TASKS_MARK, 0)), int(device.get(PROOF_MARK, 0))
        drained = device.get(TASKS_DRAINED)
        queued = None if drained is None else max(tasks - int(drained), 0)
        proof_drained = device.get(PROOF_DRAINED)
        return cls(tasks, proof, queued, proof_drained is None or int(proof_drained) != proof)


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
        # The device's task marks (``TaskMarks``), moved after the task itself is written.
        self._devices = database.writer("devices")
        self._device_marks = database.collection("devices")
        self._writer = database.writer("tasks")
        self._send_writer = database.writer("task_sends")

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
        key = f"{task_id}/{attempt}/{step}"
        try:
            await self._send_writer.write(
                Insert({"_id": key, "task_id": task_id, "session_id": session_id, "at": now})
            )
        except DuplicateKeyError:
            return False
        return True

    async def insert(self, task: TaskRecord, *, marked: bool = False) -> None:
        """Store a queued task, then move its device's ``tasks_mark`` (``marked``: the caller
        moved it already, in the Inform's device upsert)."""
        await self._writer.write(Insert(task))
        if not marked:
            await self._mark(task["device_id"], TASKS_MARK)

    async def _mark(self, device_id: str, mark: str) -> None:
        await self._devices.write(Update({"_id": device_id}, {"$inc": {mark: 1}}))

    async def drained(self, device_id: str, marks: Mapping[str, int]) -> None:
        """A session ended with nothing left: its device's next Inform skips the task queries while
        the marks stay as the session read them (``PROOF_DRAINED``; ``TASKS_DRAINED``: see
        :meth:`drain_tasks`)."""
        if marks:
            await self._devices.write(Update({"_id": device_id}, {"$set": dict(marks)}))

    async def drain_tasks(self, device_id: str, mark: int) -> bool:
        """Store ``mark`` as the device's ``tasks_drained`` if ``tasks_mark`` is still ``mark``; False
        when it moved (a task was queued meanwhile). Group-committed, the condition told by the
        upsert colliding (``group_commit.py``)."""
        current: Any = mark if mark else {"$in": [0, None]}  # a device stored before the marks has none
        try:
            await self._devices.write(
                Update({"_id": device_id, TASKS_MARK: current}, {"$set": {TASKS_DRAINED: mark}}, upsert=True)
            )
        except DuplicateKeyError:
            return False
        return True

    async def task_mark(self, device_id: str) -> int:
        """The device's ``tasks_mark`` as stored now (read after it moved during a session)."""
        device = await self._device_marks.find_one({"_id": device_id}, {TASKS_MARK: 1})
        return int((device or {}).get(TASKS_MARK, 0))

    async def detach(self, task_id: str, session_id: str | None, fields: Mapping[str, Any], device_id: str) -> bool:
        """A dispatched task leaves its session to wait for a later Inform (``session_id`` None in
        ``fields``): its device's ``proof_mark`` moves, so that Inform looks for it."""
        moved = await self.update_dispatched(task_id, session_id, fields, device_id)
        if moved:
            await self._mark(device_id, PROOF_MARK)
        return moved

    async def insert_all(self, tasks: list[TaskRecord], mark_devices: bool = True) -> None:
        """Store queued tasks in capped unordered commands, then move each device's ``tasks_mark``
        (group-committed), unless the caller moves it in its own write to the devices right after
        (``mark_devices=False``: the health poll's bookkeeping)."""
        if tasks:
            await bulk_write(self._documents, [Insert(task) for task in tasks])
            if mark_devices:
                await asyncio.gather(*(self._mark(task["device_id"], TASKS_MARK) for task in tasks))

    async def get(self, task_id: str, device_id: str | None = None) -> TaskRecord | None:
        return await self._tasks.find_one(by_id(task_id, device_id))

    async def claim_next(
        self, device_id: str, session_id: str, lease_until: datetime, now: datetime
    ) -> TaskRecord | None:
        """Oldest queued task of the device becomes dispatched in this session (at most once)."""
        return await self._tasks.find_one_and_update(
            {"device_id": device_id, "status": TaskStatus.QUEUED.value},
            {
                "$set": {
                    "status": TaskStatus.DISPATCHED.value,
                    "session_id": session_id,
                    "dispatched_at": now,
                    "lease_until": lease_until,
                    "step": 0,
                    # The caller sends it next (or finishes it): marked sent in the claim itself,
                    # which settles the same way if the session breaks before the send.
                    "phase": stored(advance(None, TaskMove.CLAIM)),
                },
                "$inc": {"attempts": 1},
            },
            sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def resume(self, device_id: str, session_id: str, lease_until: datetime) -> TaskRecord | None:
        """A task whose awaited Inform event arrived continues in this session (its next step)."""
        return await self._tasks.find_one_and_update(
            {
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
            {"$set": {**fields, "status": status.value}, "$unset": {"lease_until": ""}},
            return_document=ReturnDocument.AFTER,
        )

    async def finish_known(
        self, task: TaskRecord, expected: list[str], status: TaskStatus, fields: Mapping[str, Any]
    ) -> TaskRecord | None:
        """:meth:`finish` for a task the caller holds whole (a session's own task): group-committed,
        and the task as finished is built from it instead of read back. None if the task was no
        longer in one of ``expected`` (the upsert then collides on ``_id``: ``group_commit.py``)."""
        update = {"$set": {**fields, "status": status.value}, "$unset": {"lease_until": ""}}
        query = {**by_id(task["_id"], task["device_id"]), "status": {"$in": expected}}
        try:
            applied = {**by_id(task["_id"], task["device_id"]), "status": status.value}
            await self._writer.write(Update(query, update, upsert=True, applied=applied))
        except DuplicateKeyError:
            return None
        finished: Document = {**task, **fields, "status": status.value}
        finished.pop("lease_until", None)
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
        if result.matched_count == 1 and device_id is not None:
            await self._mark(device_id, TASKS_MARK)
        return result.matched_count == 1

    async def in_session(self, session_id: str) -> list[TaskRecord]:
        cursor = self._tasks.find({"session_id": session_id, "status": TaskStatus.DISPATCHED.value})
        return [task async for task in cursor]

    async def awaiting_proof(self, device_id: str) -> list[TaskRecord]:
        """Dispatched tasks waiting for the device's next Inform (reboots, unconfirmed writes)."""
        cursor = self._tasks.find(
            {"device_id": device_id, "status": TaskStatus.DISPATCHED.value, "session_id": None}
        ).sort("dispatched_at", ASCENDING)
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

