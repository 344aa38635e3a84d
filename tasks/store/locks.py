"""The ``session_locks`` collection: at most one CWMP session per device across all ACS processes.

The lock is a lease: a document keyed by device_id holding the session id and an expiry. The
unique ``_id`` index is the lock (never "read, then write"): taking it is one upsert whose filter
only matches a free or expired lease, so a held lease makes the upsert's insert collide.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database


class SessionLockRepository:
    def __init__(self, database: Database) -> None:
        self._locks = database.collection("session_locks")

    async def ensure_indexes(self) -> None:
        """Keyed by ``_id`` only."""

    async def acquire(self, device_id: str, session_id: str, until: datetime, now: datetime) -> bool:
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
        await self._locks.delete_one({"_id": device_id, "session_id": session_id})

    async def holder(self, device_id: str, now: datetime) -> str | None:
        lock = await self._locks.find_one({"_id": device_id, "until": {"$gt": now}})
        return None if lock is None else str(lock["session_id"])
