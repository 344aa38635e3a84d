"""The task queue as operators see it: create, read, cancel, retry, wait, expire.

The session side (sending tasks in a CWMP session) is ``tasks.dispatch``; both share the task
repository and keep the invariants in ARCHITECTURE.md: an accepted task is stored before the API
answers, moves out of ``queued`` at most once, and always reaches a final status.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bson import ObjectId

from schemas.tasks import FINAL_STATUSES, TaskRequest, TaskStatus
from tasks import params as task_params
from tasks.kinds import kind_of
from tasks.notify import TaskNotifier
from tasks.records import Document, TaskRecord
from tasks.secretbox import SecretBox
from tasks.store.tasks import OPEN, TaskRepository, expiry_slice

log = logging.getLogger("acs.tasks")
FINAL_VALUES = [status.value for status in FINAL_STATUSES]


class TaskError(Exception):
    """An operator asked for something the task's state does not allow."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Expired tasks whose final hooks run together: a health read's end is 5 writes one after the other
# alone, and in a batch each kind of write is one capped command for 8 of them (docs/performance.md).
EXPIRY_ENDS = 32
EXPIRY_READ = 50  # expired tasks one budgeted call reads (a run ends within its budget, each read decoded whole)


def new_task_id() -> str:
    return str(ObjectId())


class TaskQueue:
    def __init__(
        self,
        repository: TaskRepository,
        box: SecretBox,
        notifier: TaskNotifier,
        clock: Callable[[], datetime],
        default_expiry: int,
    ) -> None:
        self.repository = repository
        self.box = box
        self.notifier = notifier
        self.clock = clock
        self.default_expiry = default_expiry
        # What learns of a task's end (provisioning's credentials put back, a profile's pending list,
        # the health summary): ``acs serve`` shares the dispatcher's list, so a task cancelled or
        # expired here runs the same hooks as one a session finishes.
        self.final_hooks: list[Callable[[TaskRecord], Awaitable[None]]] = []
        # A hook's form for many tasks ended together (the expiry job's ends, EXPIRY_ENDS at a time):
        # called once with them instead of the hook once a task (the health reads' ends batched).
        self.final_hooks_many: dict[
            Callable[[TaskRecord], Awaitable[None]], Callable[[list[TaskRecord]], Awaitable[None]]] = {}

    def new_document(
        self, device_id: str, request: TaskRequest, created_by: str, batch_id: str | None = None,
        task_id: str | None = None,
    ) -> TaskRecord:
        now = self.clock()
        task_id = task_id or new_task_id()
        body = request.model_dump(exclude={"kind", "expires_in", "idempotency_key"}, exclude_none=True)
        expires_in = request.expires_in or self.default_expiry
        return {
            "_id": task_id,
            "device_id": device_id,
            "kind": request.kind,
            "params": task_params.seal(body, self.box),
            "status": TaskStatus.QUEUED.value,
            "created_at": now,
            "created_by": created_by,
            "attempts": 0,
            "result": None,
            "fault": None,
            "reason": None,
            "expires_at": now + timedelta(seconds=expires_in),
            # TR-069 A.3.2: CommandKey and ParameterKey are string(32); an ObjectId hex is 24.
            "command_key": task_id,
            "batch_id": batch_id,
            "idempotency_key": request.idempotency_key,
            "session_id": None,
        }

    async def create(
        self, device_id: str, request: TaskRequest, created_by: str, batch_id: str | None = None,
        task_id: str | None = None, as_sent: TaskRequest | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Store a new task; with an idempotency key already used, return that task instead.

        ``task_id`` (from :func:`new_task_id`) when the request's params name the task already
        (an upload to the ACS's own URL); ``as_sent``: the request as the client sent it, before
        the ACS filled anything in, for comparing a repeated idempotency key. A key repeated with
        a different request raises ``TaskError("idempotency_conflict")``.
        """
        task = self.new_document(device_id, request, created_by, batch_id, task_id)
        if request.idempotency_key is not None:
            # Hashed: a fixed-size _id whatever the client sends (and no NUL, which jsonb refuses).
            key = hashlib.sha256(json.dumps([created_by, device_id, request.idempotency_key]).encode()).hexdigest()
            fingerprint = self.fingerprint(as_sent or request)
            bound = await self.repository.reserve_key(key, task["_id"], fingerprint, task["created_at"])
            if bound is not None:
                if bound.get("request_hash", fingerprint) != fingerprint:
                    raise TaskError(
                        "idempotency_conflict",
                        f"idempotency key {request.idempotency_key!r} was used for task {bound['task_id']} "
                        "with a different request; use a new key for a different task",
                    )
                existing = await self.repository.get(str(bound["task_id"]))
                if existing is not None:
                    return existing, False
        await self.repository.insert(task)
        log.info("task %s %s queued for %s by %s", task["_id"], task["kind"], device_id, created_by)
        return task, True

    async def create_many(
        self, requests: list[tuple[str, TaskRequest]], created_by: str, task_ids: list[str] | None = None
    ) -> list[TaskRecord]:
        """Store one new task per (device id, request) in one write: for a job queueing many
        (health reads). No idempotency keys: the caller queues each once. ``task_ids`` (from
        :func:`new_task_id`, one a request): ids the caller noted before."""
        ids: list[str | None] = list(task_ids) if task_ids is not None else [None] * len(requests)
        if len(ids) != len(requests):
            raise ValueError(f"{len(ids)} task ids for {len(requests)} requests")
        tasks = [self.new_document(device_id, request, created_by, task_id=task_id)
                 for (device_id, request), task_id in zip(requests, ids, strict=True)]
        await self.repository.insert_all(tasks)
        for task in tasks:
            log.info("task %s %s queued for %s by %s", task["_id"], task["kind"], task["device_id"], created_by)
        return tasks

    def fingerprint(self, request: TaskRequest) -> str:
        """The request's identity for idempotency: an HMAC (keyed by the secret key), so the
        stored value says nothing about secrets inside it."""
        canonical = json.dumps(request.model_dump(mode="json", exclude={"idempotency_key"}), sort_keys=True)
        return hmac.new(self.box.derive_key(b"task-idempotency"), canonical.encode(), hashlib.sha256).hexdigest()

    async def get(self, task_id: str) -> TaskRecord | None:
        return await self.repository.get(task_id)

    async def cancel(self, task_id: str, by: str) -> TaskRecord:
        now = self.clock()
        fields = {"finished_at": now, "reason": f"cancelled by {by}"}
        cancelled = await self.repository.finish(task_id, [TaskStatus.QUEUED.value], TaskStatus.CANCELLED, fields)
        if cancelled is not None:
            self.notifier.notify(task_id)
            await self._ended(cancelled)
            return cancelled
        task = await self.repository.get(task_id)
        if task is None:
            raise TaskError("not_found", f"no task {task_id}")
        raise TaskError("conflict", f"task {task_id} is {task['status']}; only a queued task can be cancelled")

    async def retry(self, task_id: str, by: str) -> TaskRecord:
        """A new task with the same kind and parameters; the original keeps its history."""
        task = await self.repository.get(task_id)
        if task is None:
            raise TaskError("not_found", f"no task {task_id}")
        if task["status"] in OPEN:
            raise TaskError("conflict", f"task {task_id} is still {task['status']}")
        now = self.clock()
        lifetime = task["expires_at"] - task["created_at"]
        new_id = str(ObjectId())
        copy: TaskRecord = {
            "device_id": task["device_id"],
            "kind": task["kind"],
            "params": task.get("params") or {},
            "batch_id": task.get("batch_id"),
            "_id": new_id,
            "status": TaskStatus.QUEUED.value,
            "created_at": now,
            "created_by": by,
            "attempts": 0,
            "result": None,
            "fault": None,
            "reason": None,
            "expires_at": now + lifetime,
            "command_key": new_id,
            "retry_of": task_id,
            "idempotency_key": None,
            "session_id": None,
        }
        await self.repository.insert(copy)
        return copy

    async def wait_final(self, task_id: str, timeout: float) -> TaskRecord | None:
        """Wait until the task is final or ``timeout`` passes, woken by the notifier.

        A task finished by another ACS process does not notify this one, so the database is
        re-read on a slow backoff as well (never a tight loop).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.2
        while True:
            task = await self.repository.get(task_id)
            if task is None or task["status"] in FINAL_VALUES:
                return task
            remaining = deadline - loop.time()
            if remaining <= 0:
                return task
            await self.notifier.wait(task_id, min(delay, remaining))
            delay = min(delay * 2, 2.0)

    async def expire_due(self, budget_seconds: float | None = None) -> int:
        """Expire open tasks past ``expires_at`` (the scheduled job; devices may never come back).

        ``budget_seconds``: stop once they are spent (at least one task a call, so a backlog always
        drains), the rest left to the next call. Each expiry runs the final hooks (a health read's
        judged and stored: several commands), so after a long stop, with every health read queued
        before it expired, one unbounded run took 76.7 s at 200,000 devices (every 15 s). A task
        left past its expiry meanwhile is harmless: a session claiming it expires it instead of
        sending it (``Dispatcher._claim``).

        The tasks are found minute by minute of their expiry (``expiry_due``, one indexed equality
        each) from the first minute not passed yet (``job_state``), the last minute and this one
        read again each call (a writer names a minute from its own clock and commits later). The
        first call on a database does one read of every open task by status (what every call did
        before: tasks that expired before the scan existed)."""
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        now = self.clock()
        position = await self.repository.expiry_scan()
        if position is None:
            return await self._expire_stored_before(now, deadline)
        current = expiry_slice(now)
        expired, passed = 0, position
        for minute in range(position, current + 1):
            if deadline is not None and minute > position and time.monotonic() >= deadline:
                break
            ended, whole = await self._expire(await self.repository.expiring(minute), now, deadline, expired)
            expired += ended
            if not whole:
                break
            if minute == passed and minute < current - 1:
                passed = minute + 1
        if passed != position:
            await self.repository.set_expiry_scan(passed)
        return expired

    async def _expire_stored_before(self, now: datetime, deadline: float | None) -> int:
        found = await self.repository.expired(now, EXPIRY_READ if deadline is not None else 500)
        expired, whole = await self._expire(found, now, deadline, 0)
        if whole and len(found) < (EXPIRY_READ if deadline is not None else 500):
            await self.repository.set_expiry_scan(expiry_slice(now) - 1)  # from now on, minute by minute
        return expired

    async def _expire(
        self, tasks: list[TaskRecord], now: datetime, deadline: float | None, before: int
    ) -> tuple[int, bool]:
        """Expire those of ``tasks`` past their expiry until the deadline (one task at least in a
        call: ``before`` ended so far); how many, and whether none was left for lack of time.

        By chunks: each task of a chunk is ended by its own conditional write (so it ends once),
        then the final hooks run for the chunk's ended tasks together (``_ended_many``), and the
        clock is looked at before the next. With a deadline a chunk holds what the time left allows
        at this call's pace so far (one task first), at most EXPIRY_ENDS."""
        due = [task for task in tasks if task["expires_at"] <= now]
        expired = handled = 0
        started = time.monotonic()
        while handled < len(due):
            size = EXPIRY_ENDS
            if deadline is not None:
                left = deadline - time.monotonic()
                if before + expired and left <= 0:
                    return expired, False
                pace = (time.monotonic() - started) / handled if handled else None
                size = 1 if pace is None else max(1, min(EXPIRY_ENDS, int(left / max(pace, 1e-6))))
            chunk, handled = due[handled:handled + size], handled + size
            ended = [done for task in chunk if (done := await self._end_expired(task, now)) is not None]
            expired += len(ended)
            await self._ended_many(ended)
        return expired, True

    async def _end_expired(self, task: TaskRecord, now: datetime) -> TaskRecord | None:
        reason = "expired before the device was reached"
        if task["status"] == TaskStatus.DISPATCHED.value:
            reason = "expired while waiting for the device to confirm"
        fields = {"finished_at": now, "reason": reason}
        done = await self.repository.finish(task["_id"], OPEN, TaskStatus.EXPIRED, fields)
        if done is not None:
            self.notifier.notify(task["_id"])
        return done

    async def _ended_many(self, tasks: list[TaskRecord]) -> None:
        """``_ended`` for tasks ended together: a hook with a form for many (``final_hooks_many``)
        is called once with them all, the others once a task."""
        if len(tasks) <= 1:
            for task in tasks:
                await self._ended(task)
            return
        for hook in self.final_hooks:
            many = self.final_hooks_many.get(hook)
            if many is None:
                for task in tasks:
                    await self._run_hook(hook, task)
                continue
            try:
                await many(tasks)
            except Exception:
                log.exception("final hook %s failed for %d tasks (%s...)", getattr(many, "__qualname__", many),
                              len(tasks), tasks[0]["_id"])

    async def _ended(self, task: TaskRecord) -> None:
        """Run the final hooks for a task ended here. Its end is stored already; a hook that fails
        is logged with the task and does not keep the others (or the next task's end) from running."""
        for hook in self.final_hooks:
            await self._run_hook(hook, task)

    @staticmethod
    async def _run_hook(hook: Callable[[TaskRecord], Awaitable[None]], task: TaskRecord) -> None:
        try:
            await hook(task)
        except Exception:
            log.exception("final hook %s failed for task %s (%s)", getattr(hook, "__qualname__", hook),
                          task["_id"], task["status"])

    def to_api(self, task: TaskRecord) -> Document:
        """The task as ``GET /api/v1/tasks/{id}`` shows it: secrets redacted."""
        shown = {key: task.get(key) for key in API_FIELDS}
        shown["id"] = task["_id"]
        shown["params"] = task_params.redact(task.get("params") or {}, self.box)
        shown["result"] = task_params.redact_result(task.get("result"))
        return shown


API_FIELDS = (
    "device_id",
    "kind",
    "status",
    "created_at",
    "created_by",
    "attempts",
    "result",
    "fault",
    "reason",
    "expires_at",
    "dispatched_at",
    "finished_at",
    "batch_id",
    "idempotency_key",
    "retry_of",
)


def is_read(kind: str) -> bool:
    return kind_of(kind).read
