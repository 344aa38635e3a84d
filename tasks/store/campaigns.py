"""``campaigns``, ``campaign_devices`` and ``campaign_claims`` (issue 15).

A campaign document holds its definition and status; ``campaign_devices`` one document per device
and campaign (``_id`` = ``<campaign_id>#<device_id>``) with its wave, state and steps; and
``campaign_claims`` is the lock that makes an upgrade (or a rollback) happen at most once per
device and campaign: the process that starts one first inserts ``<campaign>#<device>#<purpose>``
with the task id it will use. Only one insert of that ``_id`` can succeed, on FerretDB 1.24 (whose
findAndModify is not atomic) as on MongoDB, so two ACS processes, or a run that overlaps a lease
takeover, never queue two Downloads for one device. A claim whose run died before it moved the
device on is finished by one later run: the one whose insert of the next ``campaign_takeovers``
document (``<claim>~<n>``) succeeds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from tasks.store.db import Database, Document, Insert, bulk_write, ensure_indexes

CAMPAIGN_INDEXES = [
    IndexModel([("status", ASCENDING)]),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
    IndexModel([("target_versions", ASCENDING)]),  # "the campaign that installed this version" (incidents)
]
MEMBER_INDEXES = [
    IndexModel([("campaign_id", ASCENDING), ("state", ASCENDING), ("wave", ASCENDING)]),
    IndexModel([("device_id", ASCENDING), ("created_at", DESCENDING)]),
]
CLAIM_INDEXES = [IndexModel([("campaign_id", ASCENDING), ("purpose", ASCENDING), ("at", ASCENDING)])]
TAKEOVER_INDEXES = [IndexModel([("claim", ASCENDING)])]
MAX_STEPS = 20  # a member's steps: start, transfer, boot, health, rollback ... bounded in code


def member_id(campaign_id: str, device_id: str) -> str:
    return f"{campaign_id}#{device_id}"


class CampaignRepository:
    def __init__(self, database: Database) -> None:
        self._campaigns = database.collection("campaigns")
        self._members = database.collection("campaign_devices")
        self._claims = database.collection("campaign_claims")
        self._takeovers = database.collection("campaign_takeovers")

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._campaigns, CAMPAIGN_INDEXES)
        await ensure_indexes(self._members, MEMBER_INDEXES)
        await ensure_indexes(self._claims, CLAIM_INDEXES)
        await ensure_indexes(self._takeovers, TAKEOVER_INDEXES)

    # -- campaigns ---------------------------------------------------------------------------

    async def insert(self, campaign: Mapping[str, Any]) -> None:
        await self._campaigns.insert_one(dict(campaign))

    async def get(self, campaign_id: str) -> Document | None:
        return await self._campaigns.find_one({"_id": campaign_id})

    async def with_status(self, status: str) -> list[Document]:
        return [campaign async for campaign in self._campaigns.find({"status": status})]

    async def installing(self, version: str) -> list[Document]:
        """Campaigns whose images install ``version``, newest first."""
        cursor = self._campaigns.find({"target_versions": version}).sort("created_at", DESCENDING).limit(20)
        return [campaign async for campaign in cursor]

    async def page(self, status: str | None, before: tuple[datetime, str] | None, limit: int) -> list[Document]:
        query: Document = {} if status is None else {"status": status}
        if before is not None:
            created_at, campaign_id = before
            query["$or"] = [{"created_at": {"$lt": created_at}},
                            {"created_at": created_at, "_id": {"$lt": campaign_id}}]
        cursor = self._campaigns.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [campaign async for campaign in cursor]

    async def move(self, campaign_id: str, expected: Sequence[str], status: str,
                   fields: Mapping[str, Any]) -> Document | None:
        """``expected`` -> ``status`` (with ``fields``); None when the campaign was in no expected status."""
        return await self._campaigns.find_one_and_update(
            {"_id": campaign_id, "status": {"$in": list(expected)}},
            {"$set": {**fields, "status": status}}, return_document=ReturnDocument.AFTER)

    async def update(self, campaign_id: str, fields: Mapping[str, Any]) -> None:
        await self._campaigns.update_one({"_id": campaign_id}, {"$set": dict(fields)})

    # -- members -----------------------------------------------------------------------------

    async def add_members(self, members: Sequence[Mapping[str, Any]]) -> int:
        """Insert the campaign's devices; a member already there (a retried creation) is kept."""
        return await bulk_write(self._members, [Insert(member) for member in members], keep_existing=True)

    async def member(self, campaign_id: str, device_id: str) -> Document | None:
        return await self._members.find_one({"_id": member_id(campaign_id, device_id)})

    async def members(self, campaign_id: str, state: str | None = None, wave: int | None = None,
                      after: str | None = None, limit: int = 1000) -> list[Document]:
        query: Document = {"campaign_id": campaign_id}
        if state is not None:
            query["state"] = state
        if wave is not None:
            query["wave"] = wave
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._members.find(query).sort("_id", ASCENDING).limit(limit)
        return [member async for member in cursor]

    async def each_member(self, campaign_id: str, state: str) -> AsyncIterator[Document]:
        """Every member in ``state``, read in pages (no cursor left open between them)."""
        after: str | None = None
        while page := await self.members(campaign_id, state, after=after, limit=500):
            for member in page:
                yield member
            after = page[-1]["_id"]

    async def each_member_of_wave(self, campaign_id: str, state: str, wave: int) -> AsyncIterator[Document]:
        after: str | None = None
        while page := await self.members(campaign_id, state, wave, after=after, limit=200):
            for member in page:
                yield member
            after = page[-1]["_id"]

    async def set_member(self, member: Mapping[str, Any], fields: Mapping[str, Any],
                         step: Mapping[str, Any] | None = None) -> bool:
        """Update one member from the state it was read in (a member moved meanwhile is left alone)."""
        update: Document = {"$set": dict(fields)}
        if step is not None and len(member.get("steps") or []) < MAX_STEPS:
            update["$push"] = {"steps": dict(step)}
        result = await self._members.update_one({"_id": member["_id"], "state": member["state"]}, update)
        return result.matched_count == 1

    async def counts(self, campaign_id: str) -> dict[tuple[int, str], int]:
        """Members by (wave, state)."""
        pipeline: list[Document] = [
            {"$match": {"campaign_id": campaign_id}},
            {"$group": {"_id": {"wave": "$wave", "state": "$state"}, "n": {"$sum": 1}}},
        ]
        cursor = await self._members.aggregate(pipeline)
        return {(int(row["_id"]["wave"]), str(row["_id"]["state"])): int(row["n"]) async for row in cursor}

    async def tally_rows(self, campaign_id: str) -> list[Document]:
        """Members by state, model, previous version and health before / after (what the stop rules count)."""
        keys = {"state": "$state", "product_class": "$product_class", "from_version": "$from_version",
                "before": "$health_before", "after": "$health_after", "wave": "$wave"}
        pipeline: list[Document] = [{"$match": {"campaign_id": campaign_id}},
                                    {"$group": {"_id": keys, "n": {"$sum": 1}}}]
        cursor = await self._members.aggregate(pipeline)
        return [{**row["_id"], "n": int(row["n"])} async for row in cursor]

    async def finished_since(self, campaign_id: str, since: datetime) -> int:
        return await self._members.count_documents({"campaign_id": campaign_id, "finished_at": {"$gte": since}})

    async def for_device(self, device_id: str, limit: int = 5) -> list[Document]:
        cursor = self._members.find({"device_id": device_id}).sort("created_at", DESCENDING).limit(limit)
        return [member async for member in cursor]

    # -- claims ------------------------------------------------------------------------------

    async def claim(self, campaign_id: str, device_id: str, purpose: str, task_id: str, now: datetime) -> bool:
        """Take the one right to start ``purpose`` (upgrade, rollback) on this device in this campaign."""
        try:
            await self._claims.insert_one({"_id": f"{member_id(campaign_id, device_id)}#{purpose}",
                                           "campaign_id": campaign_id, "device_id": device_id, "purpose": purpose,
                                           "task_id": task_id, "at": now})
        except DuplicateKeyError:
            return False
        return True

    async def claims(self, campaign_id: str, device_id: str, purpose: str) -> Document | None:
        return await self._claims.find_one({"_id": f"{member_id(campaign_id, device_id)}#{purpose}"})

    async def take_over(self, claim: Mapping[str, Any], now: datetime, orphaned_after: timedelta) -> bool:
        """The one right to finish an orphaned ``claim``'s start (its run died before moving the
        device on). Two runs that find the orphan together both read the same last takeover and
        insert the next one: only one insert of that ``_id`` succeeds (a conditional update would
        not do: FerretDB 1.24 matches both, then writes both). A taker that died in turn is
        followed by the next one once its takeover is ``orphaned_after`` old."""
        last = await self._takeovers.find_one({"claim": claim["_id"]}, sort=[("n", DESCENDING)])
        if last is not None and now - last["at"] < orphaned_after:
            return False
        n = 1 if last is None else int(last["n"]) + 1
        try:
            await self._takeovers.insert_one({"_id": f"{claim['_id']}~{n}", "claim": claim["_id"], "n": n, "at": now})
        except DuplicateKeyError:
            return False
        return True

    async def claimed_since(self, campaign_id: str, purpose: str, since: datetime) -> int:
        return await self._claims.count_documents({"campaign_id": campaign_id, "purpose": purpose,
                                                   "at": {"$gte": since}})
