"""Console login attempts (``console_login_attempts``): one inserted document per attempt.

A counter read and then written (or ``findAndModify`` with ``$inc``, which FerretDB 1.24 runs as
a read and a write) lets a parallel burst check far more passwords than the limit allows. Here
each attempt inserts its own document, then counts the documents of its key: the k-th insert to
commit counts at least k, so at most ``limit`` attempts of one key can see a count within it,
however many race.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from tasks.store.db import Database, ensure_indexes

INDEXES = [IndexModel([("key", ASCENDING)]), IndexModel([("at", ASCENDING)])]


class LoginAttemptRepository:
    def __init__(self, database: Database) -> None:
        self._attempts = database.collection("console_login_attempts")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._attempts, INDEXES)

    async def record(self, key: str, now: datetime, limit: int) -> int:
        """Record one attempt under ``key``; returns how many attempts the key has, this one
        included, counted up to ``limit + 1`` (enough to tell "over the limit").

        A key already over its limit gets no more documents: a flood cannot grow the collection.
        Counting is a bounded ``find`` on the top-level ``key`` (FerretDB pushes that down to an
        index; its ``count`` would read the whole collection)."""
        if await self._count(key, limit) > limit:
            return limit + 1
        await self._attempts.insert_one({"_id": ObjectId(), "key": key, "at": now})
        return await self._count(key, limit)

    async def _count(self, key: str, limit: int) -> int:
        cursor = self._attempts.find({"key": key}, {"_id": 1}).limit(limit + 1)
        return len([attempt async for attempt in cursor])

    async def prune(self, before: datetime) -> int:
        result = await self._attempts.delete_many({"at": {"$lt": before}})
        return result.deleted_count
