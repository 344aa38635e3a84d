"""The ``incident_census`` collection: the incident job's group sizes (``tasks/incidents/sizes.py``).

Two documents, read and written by ``_id`` only, by the holder of the job's lease: ``sizes``, the
last complete census (each group's size, the devices counted, when its pass began), and ``pass``,
the pass in progress (its position, its counts so far) so that whichever process holds the lease
next goes on with it. Counts are kept as ``{k: group key, n: size}`` rows, not as field names:
group keys hold dots (subnets, OLT ids).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from tasks.store.db import Database, Document

SIZES_ID = "sizes"
PROGRESS_ID = "pass"


def rows_of(sizes: Mapping[str, int]) -> list[Document]:
    return [{"k": key, "n": count} for key, count in sizes.items()]


def sizes_of(rows: list[Document]) -> Counter[str]:
    return Counter({str(row["k"]): int(row["n"]) for row in rows})


class IncidentCensusRepository:
    def __init__(self, database: Database) -> None:
        self._census = database.collection("incident_census")

    async def ensure_indexes(self) -> None:
        """Read by ``_id`` only."""

    async def published(self, with_sizes: bool) -> Document | None:
        """The last complete census; without its rows when ``with_sizes`` is False (to see whether it moved)."""
        return await self._census.find_one({"_id": SIZES_ID}, None if with_sizes else {"rows": 0})

    async def publish(self, census: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
        await self._census.replace_one({"_id": SIZES_ID}, {**census, "rows": rows_of(sizes), "_id": SIZES_ID},
                                       upsert=True)

    async def progress(self) -> Document | None:
        """The pass in progress, without its counts."""
        return await self._census.find_one({"_id": PROGRESS_ID}, {"rows": 0})

    async def progress_sizes(self) -> Counter[str]:
        found = await self._census.find_one({"_id": PROGRESS_ID}, {"rows": 1})
        return sizes_of(list((found or {}).get("rows") or []))

    async def save_progress(self, progress: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
        fields = {key: value for key, value in progress.items() if key != "_id"}
        await self._census.replace_one({"_id": PROGRESS_ID}, {**fields, "rows": rows_of(sizes), "_id": PROGRESS_ID},
                                       upsert=True)
