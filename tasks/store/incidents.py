"""``incidents``, ``incident_keys`` and ``incident_baselines``.

Incidents have small numeric ids line 2 can say on the phone ("incident 12"): the next id is
taken by inserting ``max + 1`` and retrying on a duplicate, so two writers never share one.
At most one open incident per group key: opening inserts ``incident_keys`` keyed by the group
(a unique ``_id`` is the lock, where FerretDB's findAndModify would not be atomic); resolving
deletes it. Baselines are one document per dimension listing each group's usual share.

A lock can be orphaned: its opener died (or its incident write failed) between taking the key and
writing the incident, or between resolving and deleting the key. An opener that collides with a
lock older than ``KEY_GRACE`` whose key has no open incident deletes it (naming the lock's random
token, so a lock retaken meanwhile stays) and takes the key itself. A stalled opener can thus
lose its lock while still about to write, so every opener looks again after writing its incident:
seeing another open incident of its key, it withdraws its own. The later of two inserts always
sees the earlier one, so two never stay open (both may withdraw: the next run opens it again).
No step relies on an update being atomic, only on unique-``_id`` inserts and on reads seeing
earlier writes.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, OperationFailure

from tasks.store.db import Database, Document, ensure_indexes

INDEXES = [
    IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("key", ASCENDING), ("resolved_at", DESCENDING)]),
    IndexModel([("marks_left", ASCENDING)]),  # resolved incidents whose devices still carry its mark
]
# An incident's devices by member (the device page). MongoDB indexes each element of the array;
# FerretDB 1.24 builds one PostgreSQL btree key over the whole array, and past about 2.7 kB (a few
# hundred device ids) every write of the incident fails ("index row size exceeds btree version 4
# maximum 2704", SQLSTATE 54000): an outage of 400 ONTs could not be opened or grown. Its `@>`
# filter does not use that btree anyway, so on FerretDB there is none and the lookup reads the
# incidents (a few; resolved ones are pruned).
MEMBERS_INDEX = IndexModel([("members", ASCENDING)], name="members_1")
ID_ATTEMPTS = 20
# An opener writes its incident milliseconds after taking the key: a lock this old with no open
# incident of its key was left by an opener that died (or failed to write).
KEY_GRACE = timedelta(minutes=1)
UNDATED = datetime.min.replace(tzinfo=UTC)  # locks written before they carried ``taken_at``
log = logging.getLogger("acs.incidents")


class IncidentRepository:
    def __init__(self, database: Database) -> None:
        self._incidents = database.collection("incidents")
        self._keys = database.collection("incident_keys")
        self._baselines = database.collection("incident_baselines")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._incidents, INDEXES)
        if not await _on_ferretdb(self._incidents):
            await ensure_indexes(self._incidents, [MEMBERS_INDEX])
            return
        with contextlib.suppress(OperationFailure):  # created by an earlier version; absent: nothing to do
            await self._incidents.drop_index(MEMBERS_INDEX.document["name"])

    async def open(self, incident: Mapping[str, Any], now: datetime | None = None) -> int | None:
        """Store a new open incident; None when its key already has one open (or being opened).

        ``now``: when the key is taken (the job passes its clock; default the wall clock).
        """
        key = str(incident["key"])
        token = secrets.token_hex(8)
        if not await self._take_key(key, token, now or datetime.now(UTC)):
            return None
        number = await self._insert_open(incident, key, token)
        if await self._incidents.find_one({"key": key, "status": "open", "_id": {"$ne": number}}, {"_id": 1}):
            # Our lock was recovered from under us while we stalled, and the key opened again: withdraw.
            await self._incidents.delete_one({"_id": number, "status": "open"})
            await self._keys.delete_one({"_id": key, "token": token})
            log.warning("incident %d withdrawn: %s opened meanwhile by another process", number, key)
            return None
        await self._keys.update_one({"_id": key, "token": token}, {"$set": {"incident_id": number}})
        return number

    async def _take_key(self, key: str, token: str, now: datetime) -> bool:
        """Insert the key's lock; a colliding orphaned lock is freed and the insert tried once more."""
        for _ in range(2):
            try:
                await self._keys.insert_one({"_id": key, "incident_id": None, "token": token, "taken_at": now})
                return True
            except DuplicateKeyError:
                if not await self._free_orphan(key, now):
                    return False
        return False

    async def _free_orphan(self, key: str, now: datetime) -> bool:
        """Delete the key's lock if it is past ``KEY_GRACE`` and no open incident of the key holds it."""
        lock = await self._keys.find_one({"_id": key})
        if lock is None:
            return True  # deleted meanwhile (its incident resolved)
        if (lock.get("taken_at") or UNDATED) > now - KEY_GRACE:
            return False  # its opener may still be writing the incident
        if await self._incidents.find_one({"key": key, "status": "open"}, {"_id": 1}) is not None:
            return False  # held, though maybe not yet linked by incident_id
        # Naming the token (absent on old locks: None matches a missing field) spares a lock retaken meanwhile.
        result = await self._keys.delete_one({"_id": key, "token": lock.get("token")})
        if result.deleted_count:
            log.warning("orphaned incident key %s (taken %s) freed", key, lock.get("taken_at"))
        return result.deleted_count == 1

    async def _insert_open(self, incident: Mapping[str, Any], key: str, token: str) -> int:
        """The next free id (max + 1, retried on a duplicate). A write error leaves the lock to ``_free_orphan``."""
        for _ in range(ID_ATTEMPTS):
            last = await self._incidents.find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
            number = int(last["_id"]) + 1 if last else 1
            try:
                await self._incidents.insert_one({**incident, "_id": number, "status": "open"})
            except DuplicateKeyError:
                continue
            return number
        await self._keys.delete_one({"_id": key, "token": token})
        raise RuntimeError("could not allocate an incident id")

    async def get(self, incident_id: int) -> Document | None:
        return await self._incidents.find_one({"_id": incident_id})

    async def open_incidents(self) -> list[Document]:
        return [incident async for incident in self._incidents.find({"status": "open"})]

    async def set_marked(self, incident_id: int, marked: int) -> None:
        """The first ``marked`` of the incident's ``members`` carry its marks on their devices
        (``tasks/incidents/marks.py``); ``marks_left`` says so once it is resolved."""
        await self._incidents.update_one({"_id": incident_id}, {"$set": {"marked": marked, "marks_left": True}})

    async def marks_left(self) -> list[Document]:
        """Resolved incidents whose devices may still carry their mark (one indexed equality)."""
        cursor = self._incidents.find({"marks_left": True, "status": "resolved"}, {"members": 1, "unmarked_pages": 1})
        return [incident async for incident in cursor]

    async def set_unmarked(self, incident_id: int, pages: int, done: bool) -> None:
        """The marks of a resolved incident's first ``pages`` pages of members removed from their
        devices; ``done``: all of them (``marked`` and ``marks_left`` go)."""
        if done:
            update: Document = {"$unset": {"marked": "", "marks_left": "", "unmarked_pages": ""}}
        else:
            update = {"$set": {"unmarked_pages": pages}}
        await self._incidents.update_one({"_id": incident_id, "status": "resolved"}, update)

    async def recently_resolved_keys(self, since: datetime) -> set[str]:
        cursor = self._incidents.find({"status": "resolved", "resolved_at": {"$gte": since}}, {"key": 1})
        return {str(incident["key"]) async for incident in cursor}

    async def recently_resolved(self, since: datetime) -> list[Document]:
        """Incidents resolved since ``since`` (a few), with their members: who resolved them and whether
        a later incident follows them (``followed_by``)."""
        cursor = self._incidents.find({"status": "resolved", "resolved_at": {"$gte": since}},
                                      {"comments": 0, "timeline": 0})
        return [incident async for incident in cursor]

    async def update(self, incident_id: int, fields: Mapping[str, Any]) -> bool:
        result = await self._incidents.update_one({"_id": incident_id}, {"$set": dict(fields)})
        return result.matched_count == 1

    async def resolve(self, incident_id: int, fields: Mapping[str, Any]) -> Document | None:
        """Open -> resolved (once); frees its key for a later incident."""
        result = await self._incidents.update_one(
            {"_id": incident_id, "status": "open"}, {"$set": {**fields, "status": "resolved"}}
        )
        incident = await self.get(incident_id)
        if result.modified_count == 1 and incident is not None:
            await self._keys.delete_one({"_id": incident["key"], "incident_id": incident_id})
        return incident if result.modified_count == 1 else None

    async def add_comment(self, incident_id: int, comment: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
        update: Document = {"$push": {"comments": dict(comment)}}
        if fields:
            update["$set"] = dict(fields)
        result = await self._incidents.update_one({"_id": incident_id}, update)
        return result.matched_count == 1

    async def page(
        self, status: str | None, dimension: str | None, device_id: str | None, before: int | None, limit: int
    ) -> list[Document]:
        query: Document = {}
        if status is not None:
            query["status"] = status
        if dimension is not None:
            query["dimension"] = dimension
        if device_id is not None:
            query["members"] = device_id
        if before is not None:
            query["_id"] = {"$lt": before}
        cursor = self._incidents.find(query, {"members": 0, "timeline": 0}).sort("_id", DESCENDING).limit(limit)
        return [incident async for incident in cursor]

    async def open_with_timeline(self, limit: int) -> list[Document]:
        """Open incidents, newest first, without members (the console's dashboard: trend from the time line)."""
        cursor = self._incidents.find({"status": "open"}, {"members": 0}).sort("_id", DESCENDING).limit(limit)
        return [incident async for incident in cursor]

    async def for_device(self, device_id: str, limit: int = 20) -> list[Document]:
        cursor = self._incidents.find({"members": device_id}, {"members": 0}).sort("_id", DESCENDING).limit(limit)
        return [incident async for incident in cursor]

    async def prune(self, before: datetime) -> int:
        result = await self._incidents.delete_many({"status": "resolved", "resolved_at": {"$lt": before}})
        return result.deleted_count

    # -- baselines ---------------------------------------------------------------------------------

    async def baselines(self) -> dict[str, float]:
        found: dict[str, float] = {}
        async for document in self._baselines.find({}):
            for group in document.get("groups") or []:
                found[f"{document['_id']}:{group['value']}"] = float(group["share"])
        return found

    async def save_baselines(self, dimension: str, shares: Mapping[str, float], now: datetime) -> None:
        # A list, not a mapping: group values (versions, subnets) contain dots.
        groups = [{"value": value, "share": share} for value, share in sorted(shares.items())]
        await self._baselines.replace_one({"_id": dimension}, {"groups": groups, "updated_at": now}, upsert=True)


async def _on_ferretdb(collection: AsyncCollection[Any]) -> bool:
    info = await collection.database.client.admin.command("buildInfo")
    return "ferretdbVersion" in info
