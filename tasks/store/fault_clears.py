"""The ``fault_clears`` collection: when an operator cleared a fault group of the faults page.

A group is a fault code and message (``tasks/faults.py``); failures of the group up to the clear
leave the page, later ones bring it back. One document per group, keyed by the group's key.
"""

from __future__ import annotations

from datetime import datetime

from tasks.store.db import Database, upsert_one


class FaultClearRepository:
    def __init__(self, database: Database) -> None:
        self._clears = database.collection("fault_clears")

    async def ensure_indexes(self) -> None:
        """Read by ``_id`` and whole (one document per fault group ever cleared)."""

    async def clear(self, key: str, at: datetime, by: str) -> None:
        await upsert_one(self._clears, {"_id": key}, {"$set": {"cleared_at": at, "cleared_by": by}})

    async def all(self) -> dict[str, datetime]:
        return {str(clear["_id"]): clear["cleared_at"] async for clear in self._clears.find({}).limit(10000)}
