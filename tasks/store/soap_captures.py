"""SOAP capture for line 3: per-device switches with an expiry, and the captured exchanges.

``soap_capture_switches``: ``_id`` = device id, ``until``, ``by`` (a handful of documents; each
CWMP process reads them all every few seconds in the background). ``soap_captures``: one document
per HTTP exchange of a captured device's session (the CPE's message and the ACS's answer, both
masked by ``tasks/soap_mask.py``), found by ``session_id`` or ``device_id`` (indexed equality) and
dropped by whole days (``day``) after ``CAPTURE_DAYS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from tasks.store.db import Database, Document, ensure_indexes

CAPTURE_DAYS = 7
INDEXES = [IndexModel([("session_id", ASCENDING)]), IndexModel([("device_id", ASCENDING)]),
           IndexModel([("day", ASCENDING)])]


class SoapCaptureRepository:
    def __init__(self, database: Database) -> None:
        self._switches = database.collection("soap_capture_switches")
        self._captures = database.collection("soap_captures")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._captures, INDEXES)

    async def switch_on(self, device_id: str, until: datetime, by: str) -> None:
        await self._switches.replace_one({"_id": device_id}, {"until": until, "by": by}, upsert=True)

    async def switch_off(self, device_id: str) -> bool:
        return (await self._switches.delete_one({"_id": device_id})).deleted_count == 1

    async def switch_of(self, device_id: str) -> Document | None:
        return await self._switches.find_one({"_id": device_id})

    async def active(self, now: datetime) -> dict[str, datetime]:
        """Devices being captured now -> until when (the whole, small, collection)."""
        return {str(doc["_id"]): doc["until"] async for doc in self._switches.find({}) if _aware(doc["until"]) > now}

    async def record(self, exchange: Mapping[str, Any]) -> None:
        at: datetime = exchange["at"]
        await self._captures.insert_one({"_id": str(ObjectId()), **exchange, "day": at.strftime("%Y-%m-%d")})

    async def for_session(self, session_id: str, limit: int = 500) -> list[Document]:
        found = [doc async for doc in self._captures.find({"session_id": session_id}).limit(limit)]
        return sorted(found, key=lambda doc: (doc["at"], doc["_id"]))

    async def sessions_of(self, device_id: str, limit: int = 20) -> list[Document]:
        """The device's captured sessions, newest first: id, first exchange time, exchanges."""
        sessions: dict[str, Document] = {}
        async for doc in self._captures.find({"device_id": device_id}, {"session_id": 1, "at": 1}):
            seen = sessions.setdefault(doc["session_id"], {"session_id": doc["session_id"], "at": doc["at"], "n": 0})
            seen["n"] += 1
            seen["at"] = min(seen["at"], doc["at"])
        return sorted(sessions.values(), key=lambda s: s["at"], reverse=True)[:limit]

    async def prune(self, now: datetime) -> int:
        """Captures older than ``CAPTURE_DAYS`` (whole days, by equality on ``day``) and ended switches."""
        deleted = 0
        for back in range(CAPTURE_DAYS, CAPTURE_DAYS + 30):
            day = (now - timedelta(days=back)).strftime("%Y-%m-%d")
            deleted += (await self._captures.delete_many({"day": day})).deleted_count
        await self._switches.delete_many({"until": {"$lt": now}})  # a handful of documents
        return deleted


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
