"""The ``session_locks`` collection: at most one CWMP session per device across all ACS processes,
and the running session's state as its Inform left it.

The lock is a lease: a document keyed by device_id holding the session id and an expiry. The
unique ``_id`` index is the lock (never "read, then write"): a free lease is taken by an insert
(sent with other sessions' inserts by the group-commit writer: one insert command is one
PostgreSQL transaction on FerretDB 1.24), a held one makes it collide; the holder is then ended
(superseded, or timed out) and the insert tried again (``CwmpService._take_lease``). The insert
carries the session's live state as the Inform left it (``session``, packed as one BSON value by
``live_blob.py``: what another worker needs to continue it) and its idle expiry (``expires_at``,
for the reaper); later states are the session's steps (``tasks/store/sessions.py``). Releasing it
is a delete, group-committed with other sessions' releases into one statement; after a clean end
it is deferred (``release_later``: the 204 does not wait for it, and a second of
releases leave together). Until it leaves, the lease still names the ended session: a new session
of the device in this process waits for the release, one in another process ends it as a session
whose history is written (``SessionRepository.load_live`` reads None for it).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from tasks.records import Document
from tasks.store import live_blob
from tasks.store.db import Database
from tasks.store.group_commit import Delete, Insert


class SessionLockRepository:
    def __init__(self, database: Database) -> None:
        self._locks = database.collection("session_locks")
        self._writer = database.writer("session_locks")
        self._releasing: dict[str, asyncio.Future[None]] = {}  # device id: its deferred release

    async def ensure_indexes(self) -> None:
        """Keyed by ``_id`` only (the reaper's range over ``expires_at`` reads the leases of the
        sessions in flight, a small collection)."""

    async def acquire(
        self, device_id: str, session_id: str, until: datetime, now: datetime, live: dict[str, Any] | None = None
    ) -> bool:
        """Take the device's free lease, carrying ``live`` (the session's state); False when held."""
        releasing = self._releasing.get(device_id)
        if releasing is not None:  # its last session's deferred release first, sent now
            await self._writer.flush_later()
            await asyncio.wait([releasing])
        lease: Document = {"_id": device_id, "session_id": session_id, "until": until, "taken_at": now}
        if live is not None:
            lease["expires_at"] = live["expires_at"]
            lease["session"] = live_blob.pack(live)  # one value for FerretDB to decode (live_blob.py)
        try:
            await self._writer.write(Insert(lease))
        except DuplicateKeyError:
            return False  # held (live, or expired and not yet reaped): the caller ends the holder
        return True

    async def renew(self, device_id: str, session_id: str, until: datetime) -> bool:
        result = await self._locks.update_one({"_id": device_id, "session_id": session_id}, {"$set": {"until": until}})
        return result.matched_count == 1

    async def release(self, device_id: str, session_id: str) -> None:
        await self._writer.write(Delete({"_id": device_id, "session_id": session_id}))

    def release_later(self, device_id: str, session_id: str) -> None:
        """Free the lease of a session that ended cleanly, with the other releases of the next
        moment (``GroupWriter.write_later``)."""
        done = self._writer.write_later(Delete({"_id": device_id, "session_id": session_id}))
        self._releasing[device_id] = done

        def forget(_: asyncio.Future[None]) -> None:
            if self._releasing.get(device_id) is done:
                del self._releasing[device_id]

        done.add_done_callback(forget)

    async def holder(self, device_id: str, now: datetime) -> str | None:
        lock = await self._locks.find_one({"_id": device_id, "until": {"$gt": now}})
        return None if lock is None else str(lock["session_id"])

    async def lease(self, device_id: str) -> Document | None:
        """The device's lease, live or expired."""
        return await self._locks.find_one({"_id": device_id})

    async def of_session(self, device_id: str, session_id: str) -> Document | None:
        """The device's lease if this session holds it."""
        return await self._locks.find_one({"_id": device_id, "session_id": session_id})

    async def idle_past(self, now: datetime, limit: int = 500) -> list[Document]:
        """Leases whose session was idle past its timeout as of its Inform (later steps may have
        moved the expiry on: the caller checks the latest state)."""
        cursor = self._locks.find({"expires_at": {"$lte": now}}).limit(limit)
        return [lease async for lease in cursor]
