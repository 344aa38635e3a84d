"""``webhook_deliveries``: the webhook's outbox, one document per event to deliver.

``_id`` names the event (``incident-<id>-opened``), so the same event is queued once however
many runs or processes see it (a unique-``_id`` insert). A delivery stays ``pending`` until the
receiver answers 2xx (``delivered``) or the attempts run out (``failed``); each attempt's outcome
is kept. Nothing lives only in memory: a restart picks the pending ones up again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, ensure_indexes

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
INDEXES = [IndexModel([("status", ASCENDING)]), IndexModel([("created_at", DESCENDING)])]


class WebhookDeliveryRepository:
    def __init__(self, database: Database) -> None:
        self._deliveries = database.collection("webhook_deliveries")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._deliveries, INDEXES)

    async def enqueue(self, delivery_id: str, event: str, payload: Mapping[str, Any], now: datetime) -> bool:
        """Queue one event; False when it was queued before."""
        try:
            await self._deliveries.insert_one({
                "_id": delivery_id, "event": event, "payload": dict(payload), "status": PENDING, "attempts": 0,
                "created_at": now, "next_at": now, "last_error": None, "last_status": None, "delivered_at": None,
            })
        except DuplicateKeyError:
            return False
        return True

    async def due(self, now: datetime, limit: int) -> list[Document]:
        """Pending deliveries whose time has come, oldest first (``status`` by indexed equality)."""
        cursor = self._deliveries.find({"status": PENDING}).limit(limit * 10)
        pending = [doc async for doc in cursor]
        return sorted((doc for doc in pending if doc["next_at"] <= now), key=lambda doc: doc["created_at"])[:limit]

    async def settle(self, delivery_id: str, attempts_before: int, fields: Mapping[str, Any]) -> bool:
        """Record an attempt; names the attempt count it read, so two senders cannot both record one."""
        result = await self._deliveries.update_one(
            {"_id": delivery_id, "status": PENDING, "attempts": attempts_before}, {"$set": dict(fields)}
        )
        return result.modified_count == 1

    async def recent(self, limit: int) -> list[Document]:
        cursor = self._deliveries.find({}).sort("created_at", DESCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def get(self, delivery_id: str) -> Document | None:
        return await self._deliveries.find_one({"_id": delivery_id})

    async def prune(self, before: datetime) -> int:
        """Deliveries settled before ``before`` (pending ones are kept whatever their age)."""
        deleted = 0
        for status in (DELIVERED, FAILED):
            result = await self._deliveries.delete_many({"status": status, "created_at": {"$lt": before}})
            deleted += result.deleted_count
        return deleted
