"""The ``fleet_summary`` collection: the last fleet census (``tasks/fleet.py``): one document of
totals and breakdowns (what the landing page reads), and one per OLT with its PON ports
(``olt:<id>``), so no page reads every OLT's ports; and the pass in progress (``census``: where it
stands and its counts so far), written by the job's lease holder only. An OLT gone from the fleet keeps its last
document; the summary no longer lists it, and the console shows only OLTs the summary lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.store.db import Database, Document, Update, bulk_write

SUMMARY_ID = "fleet"
PROGRESS_ID = "census"


class FleetSummaryRepository:
    def __init__(self, database: Database) -> None:
        self._summaries = database.collection("fleet_summary")

    async def ensure_indexes(self) -> None:
        """Read by ``_id`` only."""

    async def save(self, summary: Mapping[str, Any], pons: Mapping[str, list[Document]]) -> None:
        writes = [Update({"_id": f"olt:{olt}"}, {"_id": f"olt:{olt}", "olt": olt, "pons": ports}, upsert=True)
                  for olt, ports in pons.items()]
        await bulk_write(self._summaries, writes)
        await self._summaries.replace_one({"_id": SUMMARY_ID}, {**summary, "_id": SUMMARY_ID}, upsert=True)

    async def progress(self) -> Document | None:
        """Where the census pass in progress stands, without its counts."""
        return await self._summaries.find_one({"_id": PROGRESS_ID}, {"rows": 0})

    async def progress_rows(self) -> list[Document]:
        found = await self._summaries.find_one({"_id": PROGRESS_ID}, {"rows": 1})
        return list((found or {}).get("rows") or [])

    async def save_progress(self, progress: Mapping[str, Any], rows: list[Document]) -> None:
        fields = {key: value for key, value in progress.items() if key != "_id"}
        await self._summaries.replace_one({"_id": PROGRESS_ID}, {**fields, "rows": rows, "_id": PROGRESS_ID},
                                          upsert=True)

    async def pons_of(self, olt: str) -> list[Document]:
        found = await self._summaries.find_one({"_id": f"olt:{olt}"})
        return list((found or {}).get("pons") or [])

    async def get(self) -> Document | None:
        return await self._summaries.find_one({"_id": SUMMARY_ID})
