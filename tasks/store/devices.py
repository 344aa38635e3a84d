"""The ``devices`` collection: one bounded document per device (identity, state, summary, tags)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [
    IndexModel([("serial_number", ASCENDING)]),
    IndexModel([("oui", ASCENDING), ("product_class", ASCENDING)]),
    IndexModel([("product_class", ASCENDING)]),
    IndexModel([("software_version", ASCENDING)]),
    IndexModel([("tags", ASCENDING)]),
    IndexModel([("remote_ip", ASCENDING)]),
    IndexModel([("offline_after", ASCENDING)]),
    IndexModel([("last_inform", DESCENDING)]),
    IndexModel([("cpe_username", ASCENDING)]),
    IndexModel([("presence", ASCENDING), ("offline_after", ASCENDING)]),
    IndexModel([("health_polled_at", ASCENDING)]),  # the health poll: devices due for a read
    IndexModel([("watch_until", ASCENDING)]),
    # The incident job: critical devices (offline ones by the compound index above), and its
    # exact group counts (product class, version and tags are indexed above).
    IndexModel([("health_definite", ASCENDING)]),
    IndexModel([("olt_id", ASCENDING)]),
    IndexModel([("wan_ip", ASCENDING)]),
]


READ_BATCH = 5000  # documents per reply of a large read


def is_online(device: Document, now: datetime) -> bool:
    """Online while its next periodic inform is not overdue (``offline_after``, set by each Inform)."""
    offline_after = device.get("offline_after")
    return offline_after is not None and bool(offline_after > now)


@dataclass(frozen=True)
class DeviceFilter:
    """The device filters of ``GET /api/v1/devices``, shared by bulk tasks and health policies."""

    q: str | None = None
    oui: str | None = None
    product_class: str | None = None
    software_version: str | None = None
    tag: str | None = None
    online: bool | None = None
    device_ids: tuple[str, ...] | None = None  # only these devices (an incident's members)

    def to_query(self, now: datetime) -> Document:
        query: Document = {}
        if self.q:
            # Substring of device_id / serial / IP / WAN IP / WAN MAC / a tag (a subscriber's account number);
            # anchored prefix matches would use the indexes, but line 2 types fragments of serials,
            # so this is a scan bounded by the other filters.
            pattern = {"$regex": re.escape(self.q), "$options": "i"}
            query["$or"] = [{"_id": pattern}, {"serial_number": pattern}, {"remote_ip": pattern},
                            {"wan_ip": pattern}, {"wan_mac": pattern}, {"tags": pattern}]
        for field in ("oui", "product_class", "software_version"):
            value = getattr(self, field)
            if value is not None:
                query[field] = value
        if self.tag is not None:
            query["tags"] = self.tag
        if self.device_ids is not None:
            query["_id"] = {"$in": list(self.device_ids)}
        if self.online is True:
            query["offline_after"] = {"$gt": now}
        elif self.online is False:
            query["offline_after"] = {"$lte": now}
        return query


class DeviceRepository:
    def __init__(self, database: Database) -> None:
        self._devices = database.collection("devices")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._devices, INDEXES)

    async def record_inform(
        self, device_id: str, identity: Mapping[str, Any], state: Mapping[str, Any], now: datetime
    ) -> tuple[Document, bool]:
        """Upsert identity and session-time state; returns the device and whether it is new."""
        updated = await self._devices.find_one_and_update(
            {"_id": device_id},
            {
                "$set": {**identity, **state, "last_inform": now},
                "$setOnInsert": {"first_inform": now, "tags": []},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert updated is not None  # upsert always returns a document
        return updated, updated.get("first_inform") == now

    async def get(self, device_id: str, projection: Mapping[str, Any] | None = None) -> Document | None:
        return await self._devices.find_one({"_id": device_id}, projection)

    async def find_by_cpe_username(self, username: str) -> Document | None:
        return await self._devices.find_one({"cpe_username": username}, {"cpe_password": 1})

    async def set_fields(self, device_id: str, fields: Mapping[str, Any]) -> bool:
        result = await self._devices.update_one({"_id": device_id}, {"$set": dict(fields)})
        return result.matched_count == 1

    async def update_if(
        self, device_id: str, condition: Mapping[str, Any], fields: Mapping[str, Any], unset: list[str]
    ) -> bool:
        """Set ``fields`` and drop ``unset`` in one write, only while the device matches ``condition``."""
        update: Document = {"$set": dict(fields)}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        result = await self._devices.update_one({**condition, "_id": device_id}, update)
        return result.matched_count == 1

    async def unset_fields(self, device_id: str, fields: list[str]) -> None:
        await self._devices.update_one({"_id": device_id}, {"$unset": dict.fromkeys(fields, "")})

    async def add_tags(self, device_id: str, tags: list[str]) -> bool:
        result = await self._devices.update_one({"_id": device_id}, {"$addToSet": {"tags": {"$each": tags}}})
        return result.matched_count == 1

    async def remove_tags(self, device_id: str, tags: list[str]) -> bool:
        # $pullAll, not $pull with $in: FerretDB ignores the latter.
        result = await self._devices.update_one({"_id": device_id}, {"$pullAll": {"tags": tags}})
        return result.matched_count == 1

    async def watches_ended(self, now: datetime, limit: int) -> list[Document]:
        """Devices whose "watch for N hours" (``watch_until``) has passed."""
        cursor = self._devices.find({"watch_until": {"$lte": now}}, {"_id": 1, "watch_until": 1}).limit(limit)
        return [device async for device in cursor]

    async def end_watch(self, device_id: str, tag: str, until: datetime) -> bool:
        """Drop the watch tag and ``watch_until``, unless the watch was extended meanwhile."""
        result = await self._devices.update_one(
            {"_id": device_id, "watch_until": until}, {"$pullAll": {"tags": [tag]}, "$unset": {"watch_until": ""}}
        )
        return result.modified_count == 1

    async def page(self, device_filter: DeviceFilter, now: datetime, after: str | None, limit: int) -> list[Document]:
        """Devices in device_id order, keyset-paginated (``after`` is the last id of the previous page)."""
        query = device_filter.to_query(now)
        if after is not None:
            query = {"$and": [query, {"_id": {"$gt": after}}]} if query else {"_id": {"$gt": after}}
        cursor = self._devices.find(query).sort("_id", ASCENDING).limit(limit)
        return [device async for device in cursor]

    async def ids(self, device_filter: DeviceFilter, now: datetime, limit: int) -> list[str]:
        cursor = self._devices.find(device_filter.to_query(now), {"_id": 1}).sort("_id", ASCENDING).limit(limit)
        return [device["_id"] async for device in cursor]

    async def count(self, device_filter: DeviceFilter, now: datetime) -> int:
        return await self._devices.count_documents(device_filter.to_query(now))

    # -- presence and health (issue 5) ----------------------------------------------------------

    async def overdue(self, now: datetime, limit: int) -> list[Document]:
        """Devices still marked online whose periodic inform is overdue past the margin."""
        cursor = self._devices.find({"presence": "online", "offline_after": {"$lte": now}}, {"offline_after": 1}).limit(
            limit
        )
        return [device async for device in cursor]

    async def mark_offline(self, device_id: str, since: datetime, now: datetime) -> bool:
        """Online -> offline, unless an Inform came in meanwhile (the filter re-checks the deadline)."""
        result = await self._devices.update_one(
            {"_id": device_id, "presence": "online", "offline_after": {"$lte": now}},
            {"$set": {"presence": "offline", "offline_since": since}},
        )
        return result.modified_count == 1

    async def clear_offline(self, device_id: str) -> None:
        await self._devices.update_one({"_id": device_id}, {"$unset": {"offline_since": ""}})

    async def find(self, query: Document, projection: Mapping[str, Any] | None, limit: int) -> list[Document]:
        """Devices matching a query the calling module built (health policies, incident facts)."""
        # Bounded batches: FerretDB 1.24 otherwise answers a large read in one reply over the wire
        # protocol's 48 MB limit (seen at 200,000 devices), and the driver drops the connection.
        cursor = self._devices.find(query, projection).sort("_id", ASCENDING).limit(limit).batch_size(READ_BATCH)
        return [device async for device in cursor]

    async def scan(
        self, query: Document, projection: Mapping[str, Any] | None, batch_size: int
    ) -> AsyncGenerator[Document, None]:
        """Stream the matching devices (a census of the fleet): memory stays bounded by ``batch_size``.

        Until it is exhausted or killed, an open cursor holds one of FerretDB's PostgreSQL
        connections: a consumer that stops early or is cancelled closes it here (callers use
        ``contextlib.aclosing``), not whenever the garbage collector finds it.
        """
        async with self._devices.find(query, projection, batch_size=batch_size) as cursor:
            async for device in cursor:
                yield device

    async def count_presence(self, presence: str) -> int:
        return await self._devices.count_documents({"presence": presence})

    async def count_query(self, query: Document) -> int:
        return await self._devices.count_documents(query)
