"""The ``configuration_drift`` collection: the latest drift report (one document, ``_id: latest``)."""

from __future__ import annotations

from typing import Any

from tasks.store.db import Database, Document

LATEST = "latest"


class DriftRepository:
    def __init__(self, database: Database) -> None:
        self._reports = database.collection("configuration_drift")

    async def ensure_indexes(self) -> None:
        """Read by ``_id`` only."""

    async def save(self, report: dict[str, Any]) -> None:
        await self._reports.replace_one({"_id": LATEST}, {**report, "_id": LATEST}, upsert=True)

    async def latest(self) -> Document | None:
        report = await self._reports.find_one({"_id": LATEST})
        if report is not None:
            report.pop("_id", None)
        return report
