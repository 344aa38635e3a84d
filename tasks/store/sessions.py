"""The ``sessions`` collection: one record per CWMP session, live state and then history.

While a session runs, its record carries the serialized protocol state (``snapshot``) so the
next HTTP request may land on any worker or host. ``seq`` guards it: a save only succeeds on
the sequence number that was loaded, so two requests racing on one session cannot both win.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from tasks.records import SessionFields, SessionRecord
from tasks.store.db import Database, Document, ensure_indexes
from tasks.store.group_commit import Insert, Update

LIVE_ONLY = ("snapshot", "resumable", "lease_until", "claims_left", "claimed_task")  # a running session's state only
MAX_RPCS_PER_SESSION = 500  # bounded document; later exchanges are counted, not listed
INDEXES = [
    IndexModel([("device_id", ASCENDING), ("started_at", DESCENDING)]),
    IndexModel([("live", ASCENDING), ("expires_at", ASCENDING)]),
    IndexModel([("started_at", DESCENDING)]),
]


class SessionRepository:
    def __init__(self, database: Database) -> None:
        # The one place a stored session gets its type: the driver decodes each document as a SessionRecord.
        self._sessions = cast("AsyncCollection[SessionRecord]", database.collection("sessions"))
        self._writer = database.writer("sessions")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._sessions, INDEXES)

    async def create(self, record: SessionRecord) -> bool:
        """False when the id is taken: a later Inform of the device ended this session already."""
        try:
            count = len(record.get("rpcs", []))
            await self._writer.write(Insert({**record, "live": True, "seq": 0, "rpc_count": count}))
        except DuplicateKeyError:
            return False
        return True

    async def bury(self, session_id: str, device_id: str, now: datetime, outcome: str, why: str) -> bool:
        """An ended record for a session whose own record is not written yet, so it never will be.

        False when the record exists (the session wrote it first: end it the usual way).
        """
        try:
            await self._sessions.insert_one(
                {
                    "_id": session_id,
                    "device_id": device_id,
                    "started_at": now,
                    "ended_at": now,
                    "outcome": outcome,
                    "error": why,
                    "duration_ms": 0,
                    "events": [],
                    "rpcs": [],
                    "faults": [],
                    "live": False,
                    "seq": 0,
                    "rpc_count": 0,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def load_live(self, session_id: str) -> SessionRecord | None:
        return await self._sessions.find_one({"_id": session_id, "live": True})

    async def save(
        self,
        session_id: str,
        seq: int,
        fields: SessionFields,
        rpcs: list[Document],
        rpc_count: int,
        *,
        final: bool = False,
    ) -> bool:
        """Store the new state if nobody else did since ``seq`` was read; False on a lost race.

        ``final`` ends the session in the same write: no longer live, its running state
        (``LIVE_ONLY``, the snapshot among it) dropped.
        """
        # ``saved_as``: tells this save from another one of the same sequence (group_commit.py).
        token = secrets.token_hex(8)
        kept = {name: value for name, value in fields.items() if not (final and name in LIVE_ONLY)}
        update: Document = {"$set": {**kept, "saved_as": token}, "$inc": {"seq": 1, "rpc_count": len(rpcs)}}
        room = MAX_RPCS_PER_SESSION - rpc_count
        if rpcs and room > 0:
            update["$push"] = {"rpcs": {"$each": rpcs[:room]}}
        if final:
            update["$set"]["live"] = False
            update["$unset"] = dict.fromkeys(LIVE_ONLY, "")
        # Group-committed: a filter that no longer matches (another request saved first, or the
        # session ended) makes the upsert insert ``session_id`` again, which collides on ``_id``.
        try:
            await self._writer.write(
                Update(
                    {"_id": session_id, "seq": seq, "live": True},
                    update,
                    upsert=True,
                    applied={"_id": session_id, "seq": seq + 1, "saved_as": token},
                )
            )
        except DuplicateKeyError:
            return False
        return True

    async def finish(self, session_id: str, fields: SessionFields) -> bool:
        result = await self._sessions.update_one(
            {"_id": session_id, "live": True},
            {
                "$set": {**fields, "live": False},
                "$unset": dict.fromkeys(LIVE_ONLY, ""),
                "$inc": {"seq": 1},
            },
        )
        return result.matched_count == 1

    async def get(self, session_id: str) -> SessionRecord | None:
        return await self._sessions.find_one({"_id": session_id}, {"snapshot": 0})

    async def stale(self, now: datetime, limit: int = 500) -> list[SessionRecord]:
        """Live sessions whose device went silent past the session timeout."""
        cursor = self._sessions.find({"live": True, "expires_at": {"$lte": now}}).limit(limit)
        return [record async for record in cursor]

    async def for_device(
        self, device_id: str, before: datetime | None = None, limit: int = 50
    ) -> list[SessionRecord]:
        query: Document = {"device_id": device_id}
        if before is not None:
            query["started_at"] = {"$lt": before}
        cursor = self._sessions.find(query, {"snapshot": 0}).sort("started_at", DESCENDING).limit(limit)
        return [record async for record in cursor]

    async def last_for_device(self, device_id: str) -> SessionRecord | None:
        found = await self.for_device(device_id, limit=1)
        return found[0] if found else None
