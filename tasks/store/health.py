"""``health_results``: a bounded time series of health reads per device.

A ring: result ``n`` of a device is stored at ``_id = "<device_id>#<n mod kept>"``, replacing
the one ``kept`` reads older, so a device never holds more than ``kept`` documents and no
pruning query is needed. One CWMP session per device writes it at a time (the session lease).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [IndexModel([("device_id", ASCENDING), ("at", DESCENDING)])]


class HealthRepository:
    def __init__(self, database: Database) -> None:
        self._results = database.collection("health_results")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._results, INDEXES)

    async def record(self, device_id: str, seq: int, kept: int, result: Mapping[str, Any]) -> None:
        slot = f"{device_id}#{seq % kept}"
        # device_id in the filter: the shard key (tasks/store/shards.py), so the upsert goes to one shard
        await self._results.replace_one(
            {"_id": slot, "device_id": device_id}, {**result, "device_id": device_id, "seq": seq}, upsert=True
        )

    async def for_device(self, device_id: str, before: datetime | None = None, limit: int = 50) -> list[Document]:
        query: Document = {"device_id": device_id}
        if before is not None:
            query["at"] = {"$lt": before}
        cursor = self._results.find(query).sort("at", DESCENDING).limit(limit)
        return [result async for result in cursor]
