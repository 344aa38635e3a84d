"""The ``audit`` collection: one entry per write made through the operator API.

Who (token name and id, role, remote address), what (method, route, summary, target device,
task or batch ids), when, and the outcome status. Entries are never updated; the device's
history reads them back by ``(device_id, at)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [
    IndexModel([("device_id", ASCENDING), ("at", DESCENDING)]),
    IndexModel([("at", DESCENDING), ("_id", DESCENDING)]),
    # The console's audit page, filtered by who and by action (top-level equalities).
    IndexModel([("token_name", ASCENDING), ("at", DESCENDING)]),
    IndexModel([("route", ASCENDING), ("at", DESCENDING)]),
]


class AuditRepository:
    def __init__(self, database: Database) -> None:
        self._audit = database.collection("audit")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._audit, INDEXES)

    async def record(self, entry: Mapping[str, Any]) -> str:
        entry_id = str(ObjectId())
        await self._audit.insert_one({"_id": entry_id, **entry})
        return entry_id

    async def for_device(self, device_id: str, before: datetime | None, limit: int) -> list[Document]:
        query: Document = {"device_id": device_id}
        if before is not None:
            query["at"] = {"$lt": before}
        cursor = self._audit.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [entry async for entry in cursor]

    async def page(self, before: tuple[datetime, str] | None, limit: int,
                   equal: Mapping[str, Any] | None = None) -> list[Document]:
        """Newest first; ``equal``: top-level equalities (``token_name``, ``route``, ``method``)."""
        query: Document = dict(equal or {})
        if before is not None:
            at, entry_id = before
            query["$or"] = [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": entry_id}}]
        cursor = self._audit.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [entry async for entry in cursor]
