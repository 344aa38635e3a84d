"""``device_events``: what happened to a device besides sessions and tasks.

Online/offline transitions, boots (for "reboots in the last 24 hours"), health state changes and
failed tasks, one small document each. The incident job reads the recent ones by type; a
device's history and diagnosis read them by device. Old events are pruned by a scheduled job
(FerretDB has no TTL index).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from tasks.store.db import Database, Document, bulk_write, ensure_indexes
from tasks.store.group_commit import Insert

ONLINE = "online"
OFFLINE = "offline"
BOOT = "boot"
HEALTH = "health"  # the health status changed (ok / warn / critical / unknown)
TASK_FAILED = "task_failed"

INDEXES = [
    IndexModel([("device_id", ASCENDING), ("at", DESCENDING)]),
    IndexModel([("type", ASCENDING), ("at", DESCENDING)]),
    IndexModel([("at", ASCENDING)]),
    IndexModel([("hour", ASCENDING), ("type", ASCENDING)]),
    IndexModel([("minute", ASCENDING), ("type", ASCENDING)]),
]


def hour_of(at: datetime) -> str:
    """The UTC hour an event falls in (``2026-12-04T23``): a top-level key an hour's events are found by."""
    moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def minute_of(at: datetime) -> str:
    """The UTC minute an event was noticed in (``2026-12-04T23:59``): the incident job reads the
    changes of its window minute by minute, one indexed equality each (``noticed_in``)."""
    moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


class DeviceEventRepository:
    def __init__(self, database: Database) -> None:
        self._events = database.collection("device_events")
        self._writer = database.writer("device_events")  # a boot per BOOTSTRAP: group commit

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._events, INDEXES)

    async def record(
        self, device_id: str, event_type: str, at: datetime, detail: Mapping[str, Any] | None = None,
        noticed: datetime | None = None,
    ) -> None:
        """``at``: when it happened; ``noticed``: when it was seen, if later (an offline transition is
        dated at the deadline the device missed, and noticed when the offline job ran): its ``minute``."""
        await self._writer.write(Insert(self._document(device_id, event_type, at, detail, noticed)))

    async def record_many(
        self, event_type: str, events: Sequence[tuple[str, datetime, Mapping[str, Any]]], noticed: datetime,
    ) -> None:
        """``record`` for many devices at once (``(device_id, at, detail)`` each), in capped commands
        (a job's bulk transitions: the offline job's marks of one command)."""
        await bulk_write(self._events, [Insert(self._document(device_id, event_type, at, detail, noticed))
                                        for device_id, at, detail in events])

    @staticmethod
    def _document(
        device_id: str, event_type: str, at: datetime, detail: Mapping[str, Any] | None, noticed: datetime | None,
    ) -> Document:
        return {"_id": str(ObjectId()), "device_id": device_id, "type": event_type, "at": at, "hour": hour_of(at),
                "minute": minute_of(noticed or at), "detail": dict(detail or {})}

    async def for_device(
        self, device_id: str, before: datetime | None = None, limit: int = 50, types: list[str] | None = None
    ) -> list[Document]:
        query: Document = {"device_id": device_id}
        if before is not None:
            query["at"] = {"$lt": before}
        if types is not None:
            query["type"] = {"$in": types}
        cursor = self._events.find(query).sort("at", DESCENDING).limit(limit)
        return [event async for event in cursor]

    async def count_since(self, device_id: str, event_type: str, since: datetime) -> int:
        return await self._events.count_documents({"device_id": device_id, "type": event_type, "at": {"$gte": since}})

    async def reboots_since(self, device_id: str, since: datetime) -> int:
        """Boots since ``since`` that were reboots: the device's first contact is not one.

        The one count of "reboots in 24 h" (the health judgement and the diagnosis both use it).
        """
        return await self._events.count_documents({"device_id": device_id, "type": BOOT, "at": {"$gte": since},
                                                   "detail.first_contact": {"$ne": True}})

    async def in_hour(self, event_type: str, hour: str, limit: int = 100_000) -> list[Document]:
        """Events of one type in one UTC hour (``hour_of``), by indexed equality on both."""
        cursor = self._events.find({"hour": hour, "type": event_type}).limit(limit)
        return [event async for event in cursor]

    async def noticed_in(self, event_type: str, minute: str, limit: int = 100_000) -> list[Document]:
        """Events of one type noticed in one UTC minute (``minute_of``), by indexed equality on both;
        their ids, devices and, for a change of status, the new one (``detail.to``) only."""
        query = {"minute": minute, "type": event_type}
        cursor = self._events.find(query, {"device_id": 1, "detail.to": 1}).limit(limit)
        return [event async for event in cursor]

    async def devices_with(self, event_type: str, since: datetime, limit: int = 100_000) -> dict[str, int]:
        """device_id -> how many ``event_type`` events it had since ``since``."""
        pipeline: list[Document] = [
            {"$match": {"type": event_type, "at": {"$gte": since}}},
            {"$group": {"_id": "$device_id", "n": {"$sum": 1}}},
            {"$limit": limit},
        ]
        cursor = await self._events.aggregate(pipeline)
        return {str(row["_id"]): int(row["n"]) async for row in cursor}

    async def prune(self, before: datetime) -> int:
        result = await self._events.delete_many({"at": {"$lt": before}})
        return result.deleted_count
