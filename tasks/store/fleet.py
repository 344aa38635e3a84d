"""The ``fleet_summary`` collection: the last fleet census (``tasks/fleet.py``), one document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.store.db import Database, Document

SUMMARY_ID = "fleet"


class FleetSummaryRepository:
    def __init__(self, database: Database) -> None:
        self._summaries = database.collection("fleet_summary")

    async def ensure_indexes(self) -> None:
        """Read by ``_id`` only."""

    async def save(self, summary: Mapping[str, Any]) -> None:
        await self._summaries.replace_one({"_id": SUMMARY_ID}, {**summary, "_id": SUMMARY_ID}, upsert=True)

    async def get(self) -> Document | None:
        return await self._summaries.find_one({"_id": SUMMARY_ID})
