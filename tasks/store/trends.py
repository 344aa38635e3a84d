"""``trend_days``: a device's downsampled health history, one document per device and UTC day.

``_id = "<device_id>#<YYYY-MM-DD>"``; ``hours.<HH>`` holds that hour's optical RX/TX and
temperature as min, max, sum and count (``$min``/``$max``/``$inc``: several reads in one hour
fold into one point), the worst health status (a rank, ``$max``) and the boots counted in it.
A device holds at most ``retention`` such documents (30 days by default; the ``prune_trends``
job deletes older days by equality on ``day``).

The device's OLT and PON ride at the top level (``olt_day``, ``pon_day``: ``"<olt>#<day>"``,
``"<olt>/<pon>#<day>"``) so an OLT or PON chart finds its members' days by indexed equality
(FerretDB 1.24 pushes down nothing else) and adds them up when it is drawn: no shared per-PON
document is written by many sessions at once, which FerretDB's non-atomic update could lose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from tasks.store.db import Database, Document, Update, bulk_write, ensure_indexes

INDEXES = [
    IndexModel([("device_id", ASCENDING)]),
    IndexModel([("pon_day", ASCENDING)]),
    IndexModel([("olt_day", ASCENDING)]),
    IndexModel([("day", ASCENDING)]),
]
GROUP_FIELDS = frozenset({"pon_day", "olt_day"})


def day_of(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def _folded(
    device_id: str, day: str, update: Mapping[str, Any], topology: Mapping[str, Any],
) -> tuple[Document, Document]:
    change: Document = {operator: dict(fields) for operator, fields in update.items() if fields}
    change.setdefault("$set", {}).update({"device_id": device_id, "day": day, **topology})
    # device_id in the filter: one device's days live on one shard (tasks/store/shards.py)
    return {"_id": day_id(device_id, day), "device_id": device_id}, change


def day_id(device_id: str, day: str) -> str:
    return f"{device_id}#{day}"


def topology_fields(olt_id: str | None, pon_port: str | None, day: str) -> Document:
    """The top-level keys an OLT or PON chart finds this day by (empty when the device has no OLT)."""
    fields: Document = {}
    if olt_id:
        fields["olt_id"] = olt_id
        fields["olt_day"] = f"{olt_id}#{day}"
        if pon_port:
            fields["pon_port"] = pon_port
            fields["pon_day"] = f"{olt_id}/{pon_port}#{day}"
    return fields


class TrendRepository:
    def __init__(self, database: Database) -> None:
        self._days = database.collection("trend_days")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._days, INDEXES)

    async def fold(self, device_id: str, day: str, update: Mapping[str, Any], topology: Mapping[str, Any]) -> None:
        """Apply one hour's update (``$min``/``$max``/``$inc``/``$set`` of ``hours.<HH>.*``) to the device's day."""
        await self._days.update_one(*_folded(device_id, day, update, topology), upsert=True)

    async def fold_many(self, folds: Sequence[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """``fold`` for many devices (``(device_id, day, update, topology)`` each; one a device), in
        capped commands: the ends of the health reads one expiry run ended."""
        await bulk_write(self._days, [Update(*_folded(*fold), upsert=True) for fold in folds])

    async def for_device(self, device_id: str, days: list[str]) -> list[Document]:
        """The device's stored days among ``days`` (a device has at most the retention's worth)."""
        wanted = set(days)
        cursor = self._days.find({"device_id": device_id})
        return sorted([doc async for doc in cursor if doc.get("day") in wanted], key=lambda doc: doc["day"])

    async def for_group(self, field: str, key: str, days: list[str], limit: int) -> list[Document]:
        """The days of an OLT's or PON's members: one indexed equality per day, at most ``limit`` documents."""
        if field not in GROUP_FIELDS:
            raise ValueError(f"not a group field: {field}")
        found: list[Document] = []
        for day in days:
            left = limit - len(found)
            if left <= 0:
                break
            cursor = self._days.find({field: f"{key}#{day}"}, {"hours": 1, "day": 1, "device_id": 1}).limit(left)
            found += [doc async for doc in cursor]
        return found

    async def prune(self, days: list[str]) -> int:
        """Delete whole days (each by equality on ``day``, which FerretDB serves from the index)."""
        deleted = 0
        for day in days:
            deleted += (await self._days.delete_many({"day": day})).deleted_count
        return deleted
