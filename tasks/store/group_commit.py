"""Group commit: one writer per collection and process sends many sessions' writes as one command.

On FerretDB every command is at least one PostgreSQL transaction (about 2 ms of database CPU), so
the number of commands, not their size, bounds sessions per second. Writes that need no answer
but "done" or "that ``_id`` exists already" (a session's history, its lease, the parameter cache,
the record of a send) are queued here; while one bulk command of a collection is in flight, the
next writes wait and leave together in the next one (``write_command`` of ``tasks/store/db.py``,
unordered: ``insert``, ``update`` and ``delete`` commands, each of at most MAX_BATCH statements).
A write someone waits for never waits on a timer: alone, it is sent after one turn of the event
loop. A write nobody waits for (``write_later``: the lease and steps of a session that ended
cleanly, freed after its 204) waits up to ``LINGER`` for others of its kind, so the releases of a
second leave as one statement. The deletes sent together that name an ``_id`` or delete every match
leave as ONE statement (``coalesced``, up to MERGED_DELETES of them): FerretDB 1.24 runs an insert
command as one PostgreSQL transaction whatever its documents, but each delete statement as two.

Durability: :meth:`GroupWriter.write` returns only when the database acknowledged the
command that carried the write, so a caller replies to the CPE after its writes are stored, as
before. A write whose statement failed gets its own error (``DuplicateKeyError`` for a taken
``_id``); an error of the whole command (the database gone, past the time limit) goes to every
write it carried, each caller answering 503 as for a write of its own. A deferred write may be lost with its
process (a crash within ``LINGER``): only cleanup is deferred, which the reaper and the next
session of the device redo (``CwmpService._take_lease``); ``Database.close`` sends what is pending.

A conditional update whose caller must know whether it matched is written as an upsert whose
filter names the ``_id``: when the condition fails the server tries to insert that ``_id`` and the
statement fails with a duplicate key (what the session lease does too), so the caller learns it
from its own statement. Bulk results give totals only.

FerretDB 1.24 runs an unordered ``update`` command only up to its first failing statement and
reports that failure as index 0, without counts (MongoDB goes on and names the statement): such a
reply makes each statement of the command checked alone (``GroupWriter._one_by_one``). An
``insert`` reply names its failing statements correctly on both.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pymongo
from pymongo import _csot  # the time limit ``pymongo.timeout`` set for the caller (no public reader)
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import NetworkTimeout, WriteConcernError

from tasks.records import Document

# The statements are the capped writer's (``tasks/store/db.py``), re-exported for the session path.
from tasks.store.db import COMMANDS_IN_FLIGHT, capped, statement_error, write_command
from tasks.store.db import Delete as Delete
from tasks.store.db import Insert as Insert
from tasks.store.db import Update as Update
from tasks.store.db import WriteOp as WriteOp

# Each command has the time limit of a CWMP request's database operations (cwmp_db_timeout).
TIME_LIMIT = 30.0
# Seconds a deferred write (``write_later``) waits for others before it leaves.
LINGER = 1.0
# Deletes merged into one statement (``coalesced``), and the deferred writes that leave before the
# linger is over: a merged delete is ONE statement whatever it names (two PostgreSQL transactions on
# FerretDB 1.24), so at 40 clean ends a second a worker's releases of that second leave as one, not
# as five commands of eight (MAX_BATCH). Its SELECT reads the whole (small) collection and tries each filter.
MERGED_DELETES = 32

log = logging.getLogger("acs.group_commit")


@dataclass
class _Queued:
    op: WriteOp
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupWriter:
    """The writes of one collection, sent in bulk: at most one batch in flight at a time."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        time_limit: float = TIME_LIMIT,
        in_flight: asyncio.Semaphore | None = None,
    ) -> None:
        self._collection = collection
        self._time_limit = time_limit
        # Shared by the writers of one process (``Database.writer``): commands running at once.
        self._in_flight = in_flight or asyncio.Semaphore(COMMANDS_IN_FLIGHT)
        self._pending: list[_Queued] = []
        self._flushing = False
        self.linger = LINGER
        self._later: list[_Queued] = []  # deferred writes, sent when the linger is over
        self._timer: asyncio.TimerHandle | None = None
        self.commands = 0  # commands sent
        self.statements = 0  # writes they carried

    async def write(self, op: WriteOp) -> None:
        """Queue one write and wait until the database acknowledged it (or raise its error)."""
        queued = _Queued(op)
        # A caller that stopped waiting (time limit, cancelled) leaves its outcome unread: read it here.
        queued.done.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._pending.append(queued)
        self._start_flush()
        # The caller's own time limit (``pymongo.timeout`` of its CWMP request) bounds its wait: past
        # it the request answers 503 as for a write of its own (the write may still be made).
        limit = _csot.remaining()
        if limit is None:
            await queued.done
            return
        try:
            async with asyncio.timeout(max(limit, 0)):
                await asyncio.shield(queued.done)
        except TimeoutError:
            raise NetworkTimeout("the database did not acknowledge the write within the time limit") from None

    def write_later(self, op: WriteOp) -> asyncio.Future[None]:
        """Queue a write nobody waits for: it leaves with the other deferred writes of the next
        ``linger`` seconds (or at once when they fill a batch). Its failure is logged, not raised;
        the future returned says when it was made, for a caller that must not overtake it."""
        queued = _Queued(op)
        queued.done.add_done_callback(self._report_deferred)
        self._later.append(queued)
        if len(self._later) >= MERGED_DELETES:
            self._send_later()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._send_later)
        return queued.done

    def _report_deferred(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and (exc := done.exception()) is not None:
            log.warning("a deferred write to %s failed (%s: %s); the reaper or the device's next session redoes it",
                        self._collection.name, type(exc).__name__, exc)

    def _send_later(self) -> None:
        """The deferred writes join the next command (started now if none is being sent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        later, self._later = self._later, []
        if not later:
            return
        self._pending.extend(later)
        self._start_flush()

    def _start_flush(self) -> None:
        """Send what is pending, unless a flush is running already (it sends it next)."""
        if not self._flushing:
            self._flushing = True
            # A fresh context: the flush must not inherit one request's time limit (pymongo.timeout).
            asyncio.get_running_loop().create_task(self._flush(), context=contextvars.Context())

    async def flush_later(self) -> None:
        """Send the deferred writes now and wait until each was made or failed (shutdown, tests)."""
        waiting = [queued.done for queued in self._later]
        self._send_later()
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            # One turn of the event loop first: the requests already runnable add their writes to
            # this command instead of the next one (no timer: nothing waits longer than that turn).
            await asyncio.sleep(0)
            while self._pending:
                pending, self._pending = self._pending, []
                for kind in (Insert, Update):
                    same: list[tuple[WriteOp, list[_Queued]]] = [
                        (queued.op, [queued]) for queued in pending if isinstance(queued.op, kind)
                    ]
                    for statements in capped(same):
                        await self._send(statements)
                deletes = [queued for queued in pending if isinstance(queued.op, Delete)]
                for start in range(0, len(deletes), MERGED_DELETES):
                    for merged in capped(coalesced(deletes[start:start + MERGED_DELETES])):
                        await self._send(merged)
        finally:
            self._flushing = False

    async def _send(self, statements: list[tuple[WriteOp, list[_Queued]]]) -> None:
        """One ``insert``, ``update`` or ``delete`` command (unordered, ``write_command``) carrying
        ``statements``, each with the writes whose callers learn its fate."""
        first = statements[0][0]
        self.commands += 1
        self.statements += sum(len(waiting) for _, waiting in statements)
        try:
            async with self._in_flight:
                with pymongo.timeout(self._time_limit):
                    reply = await write_command(self._collection, [op for op, _ in statements])
        except Exception as exc:  # the whole command failed: every write it carried did
            for _, waiting in statements:
                for queued in waiting:
                    if not queued.done.done():
                        queued.done.set_exception(exc)
            return
        errors = reply.get("writeErrors", [])
        if errors and isinstance(first, Update) and "n" not in reply and len(statements) > 1:
            await self._one_by_one([queued for _, waiting in statements for queued in waiting])
            return
        failed = {int(error["index"]): statement_error(error) for error in errors}
        concern = reply.get("writeConcernError")
        for index, (_, waiting) in enumerate(statements):
            for queued in waiting:
                if queued.done.done():  # its caller was cancelled; the write was made all the same
                    continue
                if index in failed:
                    queued.done.set_exception(failed[index])
                elif concern is not None:
                    error = WriteConcernError(str(concern.get("errmsg")), concern.get("code"), concern)
                    queued.done.set_exception(error)
                else:
                    queued.done.set_result(None)


    async def _one_by_one(self, batch: list[_Queued]) -> None:
        """An ``update`` reply that cannot say which statement failed. FerretDB 1.24 applies the
        statements in order up to the first that fails, leaves the rest, and reports index 0 with
        no counts: each statement is then checked (``applied``) or sent again alone."""
        for queued in batch:
            op = queued.op
            assert isinstance(op, Update)
            if op.applied is not None:
                try:
                    with pymongo.timeout(self._time_limit):
                        found = await self._collection.find_one(dict(op.applied), {"_id": 1})
                except Exception as exc:
                    if not queued.done.done():
                        queued.done.set_exception(exc)
                    continue
                if found is not None:
                    if not queued.done.done():
                        queued.done.set_result(None)
                    continue
            await self._send([(op, [queued])])


def coalesced(deletes: list[_Queued]) -> list[tuple[WriteOp, list[_Queued]]]:
    """The statements of one ``delete`` command for ``deletes``: those that may be merged (a filter
    naming one ``_id``, such as a lease's release, or a plain-equality filter meant to delete every
    match, such as an ended session's steps) as ONE statement, the ``$or`` of their filters with no
    limit; any other (a delete of the first match only) as its own statement (limit 1).

    FerretDB 1.24 runs a delete statement as two PostgreSQL transactions (a SELECT, then a DELETE)
    however many documents it matches, so N deletes cost 2 instead of 2N (docs/performance.md). Its
    SELECT reads the whole collection, as FerretDB pushes no ``$or`` down: meant for small
    collections of documents in flight (``session_locks``, ``session_steps``). Every caller of the
    statement gets its outcome; none learns a count (the writer gives none).
    """
    merged = [queued for queued in deletes if _mergeable(queued.op)]
    statements: list[tuple[WriteOp, list[_Queued]]] = [
        (queued.op, [queued]) for queued in deletes if not _mergeable(queued.op)
    ]
    filters = [dict(queued.op.filter) for queued in merged if isinstance(queued.op, Delete)]
    if len(merged) == 1:
        statements.insert(0, (merged[0].op, merged))
    elif merged:
        statements.insert(0, (Delete({"$or": filters}, every_match=True), merged))
    return statements


def _mergeable(op: WriteOp) -> bool:
    """A delete whose ``$or`` with others deletes what it alone would: a plain-equality filter (no
    operator at its top) that either deletes every match or names one ``_id`` (a plain value)."""
    if not isinstance(op, Delete):
        return False
    found: Mapping[str, Any] = op.filter
    if any(key.startswith("$") for key in found):
        return False
    return op.every_match or ("_id" in found and not isinstance(found["_id"], Mapping))
