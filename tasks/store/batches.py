"""The ``task_batches`` collection: bulk tasks (one task for every device matching a filter).

The batch document holds the request and the runner's own progress (devices matched, tasks
created, devices woken); per-status task counts come from the tasks themselves
(``TaskRepository.count_by_status``), so they are never stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ReturnDocument

from tasks.store.db import Database, Document

RUNNING = "running"
FINISHED = "finished"
CANCELLED = "cancelled"


class BatchRepository:
    def __init__(self, database: Database) -> None:
        self._batches = database.collection("task_batches")

    async def ensure_indexes(self) -> None:
        """Read by ``_id`` only."""

    async def insert(self, batch: Mapping[str, Any]) -> None:
        await self._batches.insert_one(dict(batch))

    async def get(self, batch_id: str) -> Document | None:
        return await self._batches.find_one({"_id": batch_id})

    async def add_progress(self, batch_id: str, counts: Mapping[str, int], fields: Mapping[str, Any]) -> None:
        update: Document = {"$inc": {f"progress.{name}": count for name, count in counts.items()}}
        if fields:
            update["$set"] = dict(fields)
        await self._batches.update_one({"_id": batch_id}, update)

    async def finish(self, batch_id: str, fields: Mapping[str, Any]) -> bool:
        """Mark a running batch finished; False when it was cancelled meanwhile."""
        result = await self._batches.update_one(
            {"_id": batch_id, "state": RUNNING}, {"$set": {**fields, "state": FINISHED}}
        )
        return result.matched_count == 1

    async def cancel(self, batch_id: str, fields: Mapping[str, Any]) -> Document | None:
        return await self._batches.find_one_and_update(
            {"_id": batch_id, "state": {"$in": [RUNNING, FINISHED]}},
            {"$set": {**fields, "state": CANCELLED}},
            return_document=ReturnDocument.AFTER,
        )
