"""``health_results``: a bounded time series of health reads per device.

A ring: result ``n`` of a device is stored at ``_id = "<device_id>#<n mod kept>"``, replacing
the one ``kept`` reads older, so a device never holds more than ``kept`` documents and no
pruning query is needed. One CWMP session per device writes it at a time (the session lease).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from tasks.store.db import Database, Document, Update, bulk_write, ensure_indexes

INDEXES = [IndexModel([("device_id", ASCENDING), ("at", DESCENDING)])]


def _slot(device_id: str, seq: int, kept: int, result: Mapping[str, Any]) -> tuple[Document, Document]:
    """The filter and the replacement of read ``seq``'s slot in the device's ring."""
    # device_id in the filter: the shard key (tasks/store/shards.py), so the upsert goes to one shard
    return {"_id": f"{device_id}#{seq % kept}", "device_id": device_id}, {**result, "device_id": device_id, "seq": seq}


class HealthRepository:
    def __init__(self, database: Database) -> None:
        self._results = database.collection("health_results")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._results, INDEXES)

    async def record(self, device_id: str, seq: int, kept: int, result: Mapping[str, Any]) -> None:
        await self._results.replace_one(*_slot(device_id, seq, kept, result), upsert=True)

    async def record_many(self, reads: Sequence[tuple[str, int, Mapping[str, Any]]], kept: int) -> None:
        """``record`` for many devices' reads (``(device_id, seq, result)`` each; one read a device),
        in capped commands: the ends of the health reads one expiry run ended."""
        await bulk_write(self._results, [Update(*_slot(device_id, seq, kept, result), upsert=True)
                                         for device_id, seq, result in reads])

    async def for_device(self, device_id: str, before: datetime | None = None, limit: int = 50) -> list[Document]:
        query: Document = {"device_id": device_id}
        if before is not None:
            query["at"] = {"$lt": before}
        cursor = self._results.find(query).sort("at", DESCENDING).limit(limit)
        return [result async for result in cursor]
