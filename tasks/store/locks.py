"""The ``session_locks`` collection: at most one CWMP session per device across all ACS processes.

The lock is a lease: a document keyed by device_id holding the session id and an expiry. The
unique ``_id`` index is the lock (never "read, then write"): a free lease is taken by an insert
(sent with other sessions' writes by the group-commit writer), a held one makes it collide; only
then is it taken over by one upsert whose filter matches an expired lease or this session's own.
Releasing it is a delete, also group-committed.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database
from tasks.store.group_commit import Delete, Insert


class SessionLockRepository:
    def __init__(self, database: Database) -> None:
        self._locks = database.collection("session_locks")
        self._writer = database.writer("session_locks")

    async def ensure_indexes(self) -> None:
        """Keyed by ``_id`` only."""

    async def acquire(self, device_id: str, session_id: str, until: datetime, now: datetime) -> bool:
        lease = {"_id": device_id, "session_id": session_id, "until": until, "taken_at": now}
        try:
            await self._writer.write(Insert(lease))
        except DuplicateKeyError:
            pass  # held, expired, or ours already: the conditional upsert below decides
        else:
            return True
        try:
            await self._locks.find_one_and_update(
                {"_id": device_id, "$or": [{"until": {"$lte": now}}, {"session_id": session_id}]},
                {"$set": {"session_id": session_id, "until": until, "taken_at": now}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # another live session holds the lease
        return True

    async def renew(self, device_id: str, session_id: str, until: datetime) -> bool:
        result = await self._locks.update_one({"_id": device_id, "session_id": session_id}, {"$set": {"until": until}})
        return result.matched_count == 1

    async def release(self, device_id: str, session_id: str) -> None:
        await self._writer.write(Delete({"_id": device_id, "session_id": session_id}))

    async def holder(self, device_id: str, now: datetime) -> str | None:
        lock = await self._locks.find_one({"_id": device_id, "until": {"$gt": now}})
        return None if lock is None else str(lock["session_id"])
