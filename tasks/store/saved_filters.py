"""The ``console_saved_filters`` collection: device-list filters a console user saved by name.

Each holds the list's query string (filters, columns, sort) as the list page takes it; read by
``username`` (an equality served by its index), at most ``PER_USER`` per user.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [IndexModel([("username", ASCENDING)])]
PER_USER = 50


class SavedFilterRepository:
    def __init__(self, database: Database) -> None:
        self._filters = database.collection("console_saved_filters")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._filters, INDEXES)

    async def for_user(self, username: str) -> list[Document]:
        cursor = self._filters.find({"username": username}).limit(PER_USER)
        return sorted([saved async for saved in cursor], key=lambda saved: str(saved["name"]).lower())

    async def save(self, username: str, name: str, query: str, now: datetime) -> bool:
        """Save (or replace, by name) one filter; False when the user has ``PER_USER`` already."""
        existing = await self.for_user(username)
        same = [saved for saved in existing if saved["name"] == name]
        if same:
            await self._filters.update_one({"_id": same[0]["_id"], "username": username},
                                           {"$set": {"query": query, "saved_at": now}})
            return True
        if len(existing) >= PER_USER:
            return False
        await self._filters.insert_one({"_id": str(ObjectId()), "username": username, "name": name,
                                        "query": query, "saved_at": now})
        return True

    async def delete(self, username: str, filter_id: str) -> bool:
        result = await self._filters.delete_one({"_id": filter_id, "username": username})
        return result.deleted_count == 1
