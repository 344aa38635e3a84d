"""The ``devices`` collection: one bounded document per device (identity, state, summary, tags)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

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
    IndexModel([("health_due_at", ASCENDING)]),
    IndexModel([("watch_until", ASCENDING)]),
]


# What names a device (TR-069 DeviceIdStruct); the device id is built from them.
IDENTITY_FIELDS = ("oui", "product_class", "serial_number")


class IdentityCollision(Exception):
    """An Inform's DeviceId maps to the id of a stored device with other identity fields."""

    def __init__(self, device_id: str, stored: Mapping[str, Any], claimed: Mapping[str, Any]) -> None:
        self.device_id = device_id
        self.stored = {field: stored.get(field) for field in IDENTITY_FIELDS}
        self.claimed = {field: claimed.get(field) for field in IDENTITY_FIELDS}
        super().__init__(f"device id {device_id} belongs to {self.stored}, not {self.claimed}")


def is_online(device: Document, now: datetime) -> bool:
    """Online while its next periodic inform is not overdue (``offline_after``, set by each Inform)."""
    offline_after = device.get("offline_after")
    return offline_after is not None and bool(offline_after > now)


WHOLE_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")
WHOLE_MAC = re.compile(r"(?:[0-9A-F]{2}:){5}[0-9A-F]{2}")


def text_match(q: str) -> list[Document]:
    """What the search text matches: a whole IPv4 address or MAC is an address (10.64.1.1 is not
    10.64.1.10..199); anything else a substring of device_id / serial / IP / WAN IP / WAN MAC / a tag
    (a subscriber's account number). Anchored prefix matches would use the indexes, but line 2 types
    fragments of serials, so that is a scan bounded by the other filters."""
    if WHOLE_IPV4.fullmatch(q):
        return [{"remote_ip": q}, {"wan_ip": q}]
    if WHOLE_MAC.fullmatch(q):
        return [{"wan_mac": q}, {"lan_mac": q}]
    pattern = {"$regex": re.escape(q), "$options": "i"}
    return [{"_id": pattern}, {"serial_number": pattern}, {"remote_ip": pattern},
            {"wan_ip": pattern}, {"wan_mac": pattern}, {"tags": pattern}]


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
            query["$or"] = text_match(self.q)
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
        """Upsert identity and session-time state; returns the device and whether it is new.

        The filter names the identity fields too: a device whose DeviceId maps to the id of another
        device (``A-B`` + ``C9`` and ``A`` + ``B-C9``) makes the upsert insert a second ``_id`` and
        collide, so nothing of the first device's record is overwritten (:class:`IdentityCollision`).
        """
        update = {"$set": {**identity, **state, "last_inform": now}, "$setOnInsert": {"first_inform": now, "tags": []}}
        key = {field: identity[field] for field in IDENTITY_FIELDS if field in identity}
        try:
            updated = await self._devices.find_one_and_update(
                {"_id": device_id, **key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            stored = await self._devices.find_one({"_id": device_id}, dict.fromkeys(IDENTITY_FIELDS, 1)) or {}
            if any(stored.get(field) is not None and stored[field] != value for field, value in key.items()):
                raise IdentityCollision(device_id, stored, key) from None
            # A record without identity fields (written by an import, not by an Inform) is adopted.
            updated = await self._devices.find_one_and_update(
                {"_id": device_id}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        assert updated is not None  # upsert always returns a document
        first = updated.get("first_inform")
        # BSON dates keep milliseconds: compare at that precision (else a new device never looks new).
        stored_now = now.replace(microsecond=now.microsecond // 1000 * 1000, tzinfo=None)
        return updated, first is not None and first.replace(tzinfo=None) == stored_now

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
        cursor = self._devices.find(query, projection).sort("_id", ASCENDING).limit(limit)
        return [device async for device in cursor]

    async def count_presence(self, presence: str) -> int:
        return await self._devices.count_documents({"presence": presence})

    async def count_query(self, query: Document) -> int:
        return await self._devices.count_documents(query)
