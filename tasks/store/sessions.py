"""A CWMP session's records: its live state while it runs, its history once it ended.

Every write of a session is an insert or a delete (FerretDB 1.24 runs an insert command as one
PostgreSQL transaction whatever it carries, and the group-commit writer merges the deletes of a
batch into one statement; an update costs one per statement and document: docs/performance.md):

- the state as the Inform left it rides in the device's lease (``session_locks``, ``locks.py``);
- each save before an RPC goes out inserts a *step* (``session_steps``, ``_id`` =
  ``<session id>.<seq>``, keyed by the device id): the whole live record as of that save (packed
  as one BSON value, ``live_blob.py``, as in the lease). Two
  requests racing on one session both try the same next ``_id``: one insert collides (the loser
  learns it lost, as a sequence check would tell it). A session ended by someone else (the reaper,
  a newer Inform) gets an *end step* at its next sequence first, so a request still in flight on it
  collides too (``seal``);
- the history record is inserted in ``sessions`` once, complete, when the session ends (a second
  end of one session collides on ``_id``); the lease and the steps are then deleted (after a
  clean end, after its 204, with the other sessions' releases of a second).

A session's id names its device (``tasks/session_ids.py``), so all of this is found by the device
id, the shard key of both live collections.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from tasks.records import SessionRecord
from tasks.session_ids import device_of
from tasks.store import live_blob
from tasks.store.db import Database, Document, ensure_indexes
from tasks.store.group_commit import Delete, Insert
from tasks.store.locks import SessionLockRepository

# A running session's state only (never in its history); the last two are kept in its worker only.
LIVE_ONLY = (
    "snapshot", "resumable", "lease_until", "claims_left", "claimed_task", "sent_task", "claimed_record", "lazy"
)
MAX_RPCS_PER_SESSION = 500  # bounded document; later exchanges are counted, not listed
# Seconds a lazy session's history record waits for others before it leaves (``record_end_later``):
# at 40 periodic sessions a second per worker, about 8 records an insert; the device's history shows
# the session this much later.
HISTORY_LINGER = 0.2
INDEXES = [
    IndexModel([("device_id", ASCENDING), ("started_at", DESCENDING)]),
    IndexModel([("started_at", DESCENDING)]),
]
STEP_INDEXES = [IndexModel([("device_id", ASCENDING), ("session_id", ASCENDING), ("seq", DESCENDING)])]


def step_id(session_id: str, seq: int) -> str:
    return f"{session_id}.{seq}"


class SessionRepository:
    def __init__(self, database: Database) -> None:
        # The one place a stored session gets its type: the driver decodes each document as a SessionRecord.
        self._sessions = cast("AsyncCollection[SessionRecord]", database.collection("sessions"))
        self._writer = database.writer("sessions")
        self._writer.linger = HISTORY_LINGER  # its deferred writes: lazy sessions' history (``record_end_later``)
        self._steps = database.collection("session_steps")
        self._step_writer = database.writer("session_steps")
        self._locks = SessionLockRepository(database)

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._sessions, INDEXES)
        await ensure_indexes(self._steps, STEP_INDEXES)

    # -- live --------------------------------------------------------------------------------------

    async def load_live(self, session_id: str) -> SessionRecord | None:
        """The running session's newest state: its latest step, else the state its lease carries;
        None when it ended (an end step, its history written, or the lease no longer names it) or
        never was. The history is read too because a clean end frees the lease after its 204
        (``SessionLockRepository.release_later``): until then the lease still names the session."""
        device_id = device_of(session_id)
        if device_id is None:
            return None
        step, lease, ended = await asyncio.gather(
            self._latest_step(device_id, session_id),
            self._locks.of_session(device_id, session_id),
            self._sessions.find_one({"_id": session_id, "device_id": device_id}, {"_id": 1}),
        )
        if lease is None or "session" not in lease or ended is not None or (step is not None and step.get("ended")):
            return None
        if step is not None:
            return _live(live_blob.unpack(step["session"]), int(step["seq"]))
        return _live(live_blob.unpack(lease["session"]), 0)

    async def _latest_step(self, device_id: str, session_id: str) -> Document | None:
        cursor = self._steps.find({"device_id": device_id, "session_id": session_id}).sort("seq", DESCENDING).limit(1)
        found = [step async for step in cursor]
        return found[0] if found else None

    async def save(self, record: SessionRecord, seq: int) -> bool:
        """Store ``record`` as the session's state ``seq`` (one more than the one it was loaded as);
        False when that sequence is taken: another request saved first, or the session ended."""
        kept_here = ("sent_task", "claimed_record", "live", "seq")  # the worker's own, or the step's
        state = {name: value for name, value in record.items() if name not in kept_here}
        state["rpcs"] = list(record.get("rpcs", []))[:MAX_RPCS_PER_SESSION]
        step: Document = {
            "_id": step_id(record["_id"], seq),
            "device_id": record["device_id"],
            "session_id": record["_id"],
            "seq": seq,
            "expires_at": record.get("expires_at"),
            "session": live_blob.pack(state),  # one value for FerretDB to decode (live_blob.py)
        }
        try:
            await self._step_writer.write(Insert(step))
        except DuplicateKeyError:
            return False
        return True

    async def seal(self, session_id: str, device_id: str, seq: int, now: datetime) -> bool:
        """The end step at ``seq``: a request that loaded the session before it ended fails its save
        (kept until the reaper deletes the steps of sessions over, ``stray_steps``)."""
        ended: Document = {
            "_id": step_id(session_id, seq),
            "device_id": device_id,
            "session_id": session_id,
            "seq": seq,
            "expires_at": now,
            "ended": True,
        }
        try:
            await self._step_writer.write(Insert(ended))
        except DuplicateKeyError:
            return False
        return True

    async def forget_steps(self, session_id: str, device_id: str) -> None:
        """The ended session's steps deleted (merged with other sessions' into one statement)."""
        await self._step_writer.write(Delete({"device_id": device_id, "session_id": session_id}, every_match=True))

    def forget_steps_later(self, session_id: str, device_id: str) -> None:
        """The same after a clean end, deferred (``GroupWriter.write_later``): its history is
        written, so ``load_live`` no longer reads the steps as a running session's."""
        self._step_writer.write_later(Delete({"device_id": device_id, "session_id": session_id}, every_match=True))

    async def stale(self, now: datetime, limit: int = 500) -> list[SessionRecord]:
        """Running sessions whose device went silent past the session timeout (their leases first,
        then the newest state of those whose Inform is that old)."""
        found: list[SessionRecord] = []
        for lease in await self._locks.idle_past(now, limit):
            record = await self.load_live(str(lease["session_id"]))
            if record is None:  # an ended session's lease left behind (a crash before its release)
                found.append(_leftover(lease))
            elif record["expires_at"] <= now:
                found.append(record)
        return found

    async def stray_steps(self, before: datetime, limit: int = 500) -> list[Document]:
        """Steps of sessions over long ago: an aborted session's (with its end step), or saved by a
        request racing a session's normal end (its task is then settled by the caller)."""
        cursor = self._steps.find({"expires_at": {"$lte": before}}, {"device_id": 1, "session_id": 1}).limit(limit)
        return [step async for step in cursor]

    # -- history -----------------------------------------------------------------------------------

    async def record_end(self, record: SessionRecord) -> bool:
        """The history record, inserted once; False when the session was ended already."""
        try:
            await self._writer.write(Insert(_history(record)))
        except DuplicateKeyError:
            return False
        return True

    def record_end_later(self, record: SessionRecord) -> None:
        """The history record of a session no other request or process can end (a lazy session its
        worker ended: it has no lease), inserted with the other such ends of the next
        ``HISTORY_LINGER`` seconds in one command, after its 204: a periodic session with nothing
        to do then costs the device's write and the read of its tasks (issue 10). A crash within
        the linger loses the record, as a crash loses a lazy session still running (no task with it)."""
        self._writer.write_later(Insert(_history(record)))

    async def get(self, session_id: str) -> SessionRecord | None:
        """An ended session's record, else the running one's (without its protocol state)."""
        found = await self._sessions.find_one({"_id": session_id}, {"snapshot": 0})
        if found is not None:
            return found
        live = await self.load_live(session_id)
        if live is not None:
            return _shown(live)
        # It may have ended between the two reads: its history is written before its live state
        # stops being read as running (``load_live``), so a second look finds it.
        return await self._sessions.find_one({"_id": session_id}, {"snapshot": 0})

    async def for_device(
        self, device_id: str, before: datetime | None = None, limit: int = 50
    ) -> list[SessionRecord]:
        """The device's sessions, newest first: the running one (from its lease and steps), then
        the history.

        The running one is read first: a session that ends meanwhile has its history inserted
        before ``load_live`` stops reading it as running, so the history read after finds it (read
        the other way round, a session ending between the two reads was in neither)."""
        lease = await self._locks.lease(device_id)
        live = None if lease is None else await self.load_live(str(lease["session_id"]))
        if live is not None and before is not None and live["started_at"] >= before:
            live = None
        query: Document = {"device_id": device_id}
        if before is not None:
            query["started_at"] = {"$lt": before}
        cursor = self._sessions.find(query, {"snapshot": 0}).sort("started_at", DESCENDING).limit(limit)
        ended = [record async for record in cursor]
        if live is None or any(record["_id"] == live["_id"] for record in ended):
            return ended
        return [_shown(live), *ended][:limit]

    async def last_for_device(self, device_id: str) -> SessionRecord | None:
        found = await self.for_device(device_id, limit=1)
        return found[0] if found else None


def _live(state: dict[str, Any], seq: int) -> SessionRecord:
    record = cast(SessionRecord, dict(state))
    record["live"] = True
    record["seq"] = seq
    record.setdefault("rpc_count", len(record.get("rpcs", [])))
    return record


def _history(record: SessionRecord) -> Document:
    """A session's history record: its state without what only a running session has."""
    history: Document = dict(_shown(record))
    rpcs = list(record.get("rpcs", []))
    count = max(record.get("rpc_count", 0), len(rpcs))
    history.update(live=False, rpcs=rpcs[:MAX_RPCS_PER_SESSION], rpc_count=count)
    return history


def _shown(record: SessionRecord) -> SessionRecord:
    shown = cast(SessionRecord, {name: value for name, value in record.items() if name not in LIVE_ONLY})
    return shown


def _leftover(lease: Document) -> SessionRecord:
    """A lease whose session has no live state (ended, or taken before sessions carried it)."""
    return cast(
        SessionRecord,
        {
            "_id": str(lease["session_id"]),
            "device_id": str(lease["_id"]),
            "started_at": lease.get("taken_at"),
            "expires_at": lease.get("expires_at") or lease.get("until"),
            "live": False,
            "seq": 0,
        },
    )
