"""The ``devices`` collection: one bounded document per device (identity, state, summary, tags).

Every filter the API, the console and bulk tasks use is a top-level equality (``tasks/search.py``
says why): ``q`` is membership in ``search``, ``online`` is ``presence``.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from tasks import search
from tasks.store import incident_members, newest_informs
from tasks.store.db import (
    Database,
    Document,
    ensure_indexes,
    flush_updates,
    statement_error,
    upsert_one,
    write_command,
)
from tasks.store.group_commit import Insert, Update
from tasks.store.incident_members import MARK_PAGE, MARKS

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
    IndexModel([("health_due", ASCENDING)]),  # the health poll's scan (``in_health_slice``)
    IndexModel([("watch_until", ASCENDING)]),
    IndexModel([("search", ASCENDING)]),
    IndexModel([("page_bucket", ASCENDING)]),
    IndexModel([("page_block", ASCENDING)]),
    IndexModel([("page_group", ASCENDING)]),
    IndexModel([("presence", ASCENDING)]),
    IndexModel([("offline_due", ASCENDING)]),  # the offline job's scan (``overdue``)
    IndexModel([("has_overrides", ASCENDING)]),  # the drift report's devices with overrides (``with_overrides``)
    # The incident job: critical devices (offline ones by ``presence``), and its exact group counts
    # (product class, version and tags are indexed above).
    IndexModel([("health_definite", ASCENDING)]),
    IndexModel([("olt_id", ASCENDING)]),
    IndexModel([("wan_ip", ASCENDING)]),
    # The list sorted by last inform, newest first (``tasks/store/newest_informs.py``).
    IndexModel([(search.INFORM_SLICES_FIELD, ASCENDING)]),
    IndexModel([(search.OLT_SLICES_FIELD, ASCENDING)]),  # ... of one OLT
    IndexModel([(MARKS, ASCENDING)]),  # an open incident's members (``tasks/store/incident_members.py``)
]
OFFLINE_DUE_SECONDS = 5  # one slice of offline deadlines
OFFLINE_LOOKBACK_SLICES = 120  # where the very first scan starts: 10 minutes back
OFFLINE_SLICES_PER_CALL = 720  # a scan far behind (the job stopped for hours) catches up over runs
OFFLINE_SCAN = "offline_scan"
HEALTH_SCAN = "health_scan"
HEALTH_BACKFILL_SPREAD = 3600  # devices stored before ``health_due`` fall due over this many seconds
# A scan by slice passes a slice only this many slices after it ended, and reads it again each run
# until then. A write names its slice from its own ``now`` (an Inform's arrival) but commits later:
# behind the group commit, or a storm's queue at the database, seconds later. A scan that passed the
# slice in between would never see that device (a new device never health-read, an overdue one never
# marked offline). Thirty seconds is beyond the commit delays measured here (seconds, under a storm
# on FerretDB) and costs each run 6 more indexed reads of nearly empty slices: a run's reads are
# sequential, and under a storm each waits its turn at the database, so a wider window made the
# 5-second jobs overrun their interval.
SETTLE_SLICES = 6


def due_slice(moment: datetime) -> int:
    """The slice of time ``moment`` falls in: equal for every deadline within the same 5 s."""
    return int(moment.timestamp()) // OFFLINE_DUE_SECONDS


@dataclass(frozen=True)
class OfflineMark:
    """One statement of a bulk offline mark: devices of the slice ``due`` whose deadline was ``since``
    (``offline_since`` is each device's own deadline, so one statement carries one deadline)."""

    due: int
    since: datetime
    device_ids: tuple[str, ...]


def _offline_filter(mark: OfflineMark, now: datetime) -> Document:
    # Presence and the deadline re-checked: an Inform since the scan read the device wins.
    if len(mark.device_ids) == 1:
        return {"_id": mark.device_ids[0], "presence": "online", "offline_after": {"$lte": now}}
    return {"offline_due": mark.due, "presence": "online", "offline_after": {"$lte": now},
            "_id": {"$in": list(mark.device_ids)}}


def with_due_slice(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with ``offline_due`` beside ``offline_after``: every write of the deadline moves
    the offline job's scan key with it."""
    deadline = fields.get("offline_after")
    return {**fields, "offline_due": due_slice(deadline)} if isinstance(deadline, datetime) else dict(fields)


FACTS_PROJECTION = dict.fromkeys((*search.FACTS, *search.SEARCH_FIELDS), 1)
# A device's configuration overrides (``ProfileEngine.set_overrides``), and beside them whether it has
# any: a top-level equality the drift report finds such devices by when no profile is enabled (it read
# the whole fleet each hour to find them: 63-118 s at 200,000 devices). Devices stored before it get it
# from the search fields' backfill (version ``search.OVERRIDES_SINCE``).
OVERRIDES = "configuration_overrides"
HAS_OVERRIDES = "has_overrides"
LISTED = {"search": 0}  # the tokens stay in the database
SMALL_EXPORT = 1000  # matches a stream reads in one query (more: partition by partition)
WHOLE, GROUP, BLOCK, BUCKET = "whole", "group", "block", "bucket"
# FerretDB reads and decodes each matching document (about 0.3-1 ms each here), so a page reads a
# few hundred at most.
# Matches read whole and sorted by device_id, with an exact total (a bounded probe tells). A whole read
# costs about 0.5 ms a match on FerretDB 1.24 (200 devices of 1.8 kB: 90-110 ms, then 250-340 ms at p99
# beside a job run at 20,000 devices, docs/performance.md); past it a listing is read by partition, about
# what a page lists (25-40 ms), with an estimated total.
WHOLE_MAX = 100
GROUP_MAX = 200 * search.GROUPS  # about 200 per group at most: past it, a first page samples by bucket
# A listing is read by the coarsest partitions that hold about a page (50) or less: a partition larger
# than the page is cut, and the next page reads it again (a serial prefix of 4,096 at 200,000 devices,
# 64 a group: the next page read 64 to list 14). Blocks (8 buckets) sit between groups and buckets.
PARTITION_MAX = 50
SEARCH_BACKFILL = "backfill_search"  # its ``job_state``: the search fields' version every device has
BLOCKS_SINCE = 3  # the search fields' version that brought ``page_block``
INFORM_SLICES_SINCE = 4  # ... and ``last_inform_slices``
OLT_SLICES_SINCE = 5  # ... and ``olt_inform_slices``
OLTS_KEPT = 1_000_000  # devices whose OLT this process keeps (then all are dropped): 107 MB full (27-character ids)
NEWEST_WHOLE_MAX = 200  # a list sorted by last inform estimated at most this large is read whole (exact total)
MAX_PARTITIONS = 64  # partitions read for one page at most (a sparse match set gives short pages)
WAVE = 8  # partitions read at once
MAX_LOOKUPS = 512  # members looked at for one page at most
LOOKUPS_AT_ONCE = incident_members.LOOKUPS_AT_ONCE
MEMBER_READS = 8 * MARK_PAGE  # members of an export (CSV) read at once
FIRST_BUCKETS = 2  # a listing's first page with no estimate kept reads these buckets first: its sample
ESTIMATE_TTL = 60.0  # seconds an estimate is reused in this process (the reply says it is one)
ESTIMATES_KEPT = 1024  # listings whose estimate is kept at once (past it, all are dropped)


T = TypeVar("T")


def _estimate_key(query: Mapping[str, Any]) -> str:
    return repr(sorted(query.items()))


class _KeptPerListing(Generic[T]):
    """What this process learnt of a listing (its estimate, that its probe overflowed), kept for
    ``ESTIMATE_TTL`` seconds; past ``ESTIMATES_KEPT`` listings, all are dropped."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[float, T]] = {}

    def get(self, query: Mapping[str, Any]) -> T | None:
        kept = self._kept.get(_estimate_key(query))
        return kept[1] if kept is not None and time.monotonic() - kept[0] < ESTIMATE_TTL else None

    def keep(self, query: Mapping[str, Any], value: T) -> None:
        if len(self._kept) >= ESTIMATES_KEPT:
            self._kept.clear()
        self._kept[_estimate_key(query)] = (time.monotonic(), value)

    def drop(self, query: Mapping[str, Any]) -> None:
        self._kept.pop(_estimate_key(query), None)


def order(device: Mapping[str, Any]) -> tuple[int, str]:
    """The order of a partitioned listing."""
    return int(device.get("page_bucket", -1)), str(device["_id"])


def _partitioning(level: str) -> tuple[str, int, int]:
    """A partition level's field, its number of partitions and the buckets in each."""
    if level == GROUP:
        return "page_group", search.GROUPS, search.GROUP_SIZE
    if level == BLOCK:
        return "page_block", search.BLOCKS, search.BLOCK_SIZE
    return "page_bucket", search.BUCKETS, 1


@dataclass(frozen=True)
class SearchPage:
    devices: list[Document]
    next_position: dict[str, Any] | None  # None on the last page
    total: int
    total_exact: bool


# What names a device (TR-069 DeviceIdStruct); the device id is built from them.
IDENTITY_FIELDS = ("oui", "product_class", "serial_number")


class IdentityCollision(Exception):
    """An Inform's DeviceId maps to the id of a stored device with other identity fields."""

    def __init__(self, device_id: str, stored: Mapping[str, Any], claimed: Mapping[str, Any]) -> None:
        self.device_id = device_id
        self.stored = {field: stored.get(field) for field in IDENTITY_FIELDS}
        self.claimed = {field: claimed.get(field) for field in IDENTITY_FIELDS}
        super().__init__(f"device id {device_id} belongs to {self.stored}, not {self.claimed}")


READ_BATCH = 5000  # documents per reply of a large read


class HasConnectionRequestCredentials(Exception):
    """The device has connection-request credentials, and the Inform's write was only for one
    without (an unauthenticated BOOTSTRAP storing its provisioning at once): nothing was written."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        super().__init__(f"device {device_id} has connection-request credentials")


class CredentialsRequired(Exception):
    """The device has credentials of its own, and the Inform was not authenticated with them."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        super().__init__(f"device {device_id} must authenticate with its own credentials")


@dataclass(frozen=True)
class StoredInform:
    device: Document  # as written
    created: bool
    before: Document  # as it was ({} for a new device)


def _stored_time(value: Any) -> Any:
    """A datetime as BSON keeps it (milliseconds), so a document applied here reads as stored."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000) if isinstance(value, datetime) else value


def _applied(device_id: str, before: Document | None, update: Mapping[str, Any]) -> Document:
    """The device after ``update`` (``$set``, ``$setOnInsert``, ``$inc``) was applied to ``before``."""
    device: Document = {"_id": device_id, **update["$setOnInsert"]} if before is None else dict(before)
    device.update(update["$set"])
    for name in update.get("$unset", {}):
        device.pop(name, None)
    for name, step in update.get("$inc", {}).items():
        device[name] = int(device.get(name, 0)) + step
    return {name: _stored_time(value) for name, value in device.items()}


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
    device_ids: tuple[str, ...] | None = None  # only these devices (an incident's members, a selection)
    # ``device_ids`` are this incident's ``members``, listed in their stored order; the first
    # ``marked`` of them carry its marks in ``incident_marks`` (an open incident's: incident_members.py).
    incident: int | None = None
    marked: int = 0
    olt_id: str | None = None  # the OLT and PON port the health read stores (tasks/health/poll.py TOPOLOGY)
    pon_port: str | None = None
    health: str | None = None  # the last definite health read: ok, warn or critical (``health_definite``)

    def to_query(self, now: datetime) -> Document:
        """Top-level equalities only, so FerretDB pushes all of it down (``device_ids`` excepted)."""
        query: Document = {}
        if self.q:
            # A whole token or its prefix (serial, device id, IP, MAC, tag; a serial's suffix too),
            # case-insensitive: tasks/search.py writes them into ``search`` with each device.
            query["search"] = search.normal_query(self.q)
        for field in ("oui", "product_class", "software_version", "olt_id", "pon_port"):
            value = getattr(self, field)
            if value is not None:
                query[field] = value
        if self.tag is not None:
            query["tags"] = self.tag
        if self.device_ids is not None:
            query["_id"] = {"$in": list(self.device_ids)}
        if self.online is not None:
            # Set by every Inform and by the offline job (tasks/offline.py), so a device overdue by less
            # than one run of that job still lists as online.
            query["presence"] = "online" if self.online else "offline"
        if self.health is not None:
            query["health_definite"] = self.health
        return query

    def matches(self, device: Mapping[str, Any]) -> bool:
        """The same filter in Python, for devices read by id (an incident's members)."""
        query = self.to_query(datetime.min)
        query.pop("_id", None)
        for field, value in query.items():
            stored = device.get(field)
            if field in ("search", "tags"):
                if value not in (stored or []):
                    return False
            elif stored != value:
                return False
        return True


class DeviceRepository:
    def __init__(self, database: Database) -> None:
        self._devices = database.collection("devices")
        self._writer = database.writer("devices")
        self._state = database.collection("job_state")  # where the offline scan stopped
        self._estimates = _KeptPerListing[int]()  # listing -> its estimated total
        # listing -> its probe read more than WHOLE_MAX: it is read by partition, not probed, for
        # ESTIMATE_TTL, whatever its estimate (one under 2 * WHOLE_MAX was probed on every first page)
        self._overflowed = _KeptPerListing[bool]()
        self._version_checked = -math.inf  # when job_state last said the search fields' pass is not complete
        self._version = 0  # the search fields' version every device has (the backfill's job_state)
        # device id -> its OLT as last seen stored by this process: an Inform's write names the OLT in
        # its slices' tokens without reading the device first (``upsert_inform``).
        self._olts: dict[str, str] = {}

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self._devices, INDEXES)

    async def record_inform(
        self,
        device_id: str,
        identity: Mapping[str, Any],
        state: Mapping[str, Any],
        now: datetime,
        without_own_credentials: bool = False,
    ) -> tuple[Document, bool]:
        """Upsert identity and session-time state; returns the device and whether it is new."""
        stored = await self.upsert_inform(device_id, identity, state, now, without_own_credentials)
        return stored.device, stored.created

    async def upsert_inform(
        self,
        device_id: str,
        identity: Mapping[str, Any],
        state: Mapping[str, Any],
        now: datetime,
        without_own_credentials: bool = False,
        without_connection_request: bool = False,
        probably_new: bool = False,
    ) -> StoredInform:
        """Upsert identity and session-time state in one findAndModify.

        ``probably_new`` (a BOOTSTRAP: a device's first contact, far more often than a reset) first
        tries the document the upsert would insert as one group-committed insert: on FerretDB 1.24
        one PostgreSQL transaction shared by the command's documents, where the findAndModify is two
        of its own (a SELECT, then the write). A stored device makes it collide on ``_id`` (one
        rolled-back transaction), and the findAndModify below follows as for any Inform; no guard
        can fail for a device that was not stored.

        The filter names the identity fields too: a device whose DeviceId maps to the id of another
        device (``A-B`` + ``C9`` and ``A`` + ``B-C9``) makes the upsert insert a second ``_id`` and
        collide, so nothing of the first device's record is overwritten (:class:`IdentityCollision`).
        ``without_own_credentials`` (a speaker that did not use the device's own credentials) adds
        "has no ``cpe_username``" to the filter the same way (:class:`CredentialsRequired`), and
        ``without_connection_request`` "has no connection-request credentials"
        (:class:`HasConnectionRequestCredentials`).

        The write returns the document as it was (the session needs a few of its earlier values,
        such as the provisioning task a BOOTSTRAP replaces); the device as written is that plus the
        update, applied here. A device new to a BOOTSTRAP gets its search fields in the same write; a
        known one gets them rewritten only when its searchable facts changed (a new IP), so a periodic
        Inform costs no extra write.
        """
        # A BOOTSTRAP (a device's first contact, nearly always) computes the insert's search fields; any
        # other Inform is of a stored device, whose fields ``_refresh_search`` checks by their digest
        # after the write without computing them (25 µs, and 60-odd tokens in every command). A device
        # an Inform without BOOTSTRAP stored gets them there, in a second write.
        computed = search.search_fields(device_id, {**identity, **state, "tags": []}) if probably_new else None
        on_insert = {
            "first_inform": now,
            "tags": [],
            **(computed or {}),
            "health_due": due_slice(now),  # a new device gets its first health read at once
        }
        state = with_due_slice(state)
        # The OLT-named slices go in the same write. The Inform does not carry the OLT (the health
        # read stores it): the one this process last saw stored for the device; the device as it was
        # (returned by the write) tells whether that was it, and when not (this process's first
        # Inform from the device, or an OLT written by another process) a second, conditional write
        # rides the group commit (below).
        olt = state["olt_id"] if "olt_id" in state else self._olts.get(device_id)
        update: Document = {"$set": {**identity, **state, "last_inform": now, **search.inform_slices(now),
                                     **search.olt_inform_slices(device_id, olt, now)},
                            "$setOnInsert": on_insert}
        key = {field: identity[field] for field in IDENTITY_FIELDS if field in identity}
        guard: Document = {"cpe_username": {"$exists": False}} if without_own_credentials else {}
        if without_connection_request:
            guard["connection_request_username"] = {"$exists": False}
        if probably_new:
            device = _applied(device_id, None, update)
            try:
                await self._writer.write(Insert(device))
            except DuplicateKeyError:
                pass  # stored already: the findAndModify below, which checks identity and guards
            else:
                await self._olt_slices_checked(device, olt, now)
                return StoredInform(device, True, {})
        try:
            before = await self._devices.find_one_and_update(
                {"_id": device_id, **key, **guard}, update, upsert=True, return_document=ReturnDocument.BEFORE
            )
        except DuplicateKeyError:
            projection = dict.fromkeys([*IDENTITY_FIELDS, "cpe_username", "connection_request_username"], 1)
            stored = await self._devices.find_one({"_id": device_id}, projection) or {}
            if any(stored.get(field) is not None and stored[field] != value for field, value in key.items()):
                raise IdentityCollision(device_id, stored, key) from None
            if without_own_credentials and stored.get("cpe_username") is not None:
                raise CredentialsRequired(device_id) from None
            if without_connection_request and "connection_request_username" in stored:
                raise HasConnectionRequestCredentials(device_id) from None
            # A record without identity fields (written by an import, not by an Inform) is adopted.
            before = await self._devices.find_one_and_update(
                {"_id": device_id}, update, upsert=True, return_document=ReturnDocument.BEFORE
            )
        device = _applied(device_id, before, update)
        await self._refresh_search(device, computed)
        await self._olt_slices_checked(device, olt, now)
        return StoredInform(device, before is None, before or {})

    def _keep_olt(self, device_id: str, olt: Any) -> None:
        if isinstance(olt, str) and olt:
            if len(self._olts) >= OLTS_KEPT:
                self._olts.clear()
            self._olts[device_id] = sys.intern(olt)  # one string per OLT, however many devices
        else:
            self._olts.pop(device_id, None)

    async def _olt_slices_checked(self, device: Document, written_for: Any, now: datetime) -> None:
        """After an Inform's write: when the OLT its ``olt_inform_slices`` named (``written_for``) is not
        the device's stored one, those of the stored one, while the device's last inform is still this
        one (a later Inform wrote its own)."""
        stored = device.get("olt_id")
        self._keep_olt(device["_id"], stored)
        if (stored or None) == (written_for or None):
            return
        fields = search.olt_inform_slices(device["_id"], stored, now)
        await self._writer.write(Update({"_id": device["_id"], "last_inform": _stored_time(now)}, {"$set": fields}))
        device.update(fields)

    async def _refresh_search(self, device: Document | None, computed: dict[str, Any] | None = None) -> None:
        """Rewrite the search fields of a device just read back, when its facts moved from them."""
        if device is None:
            return
        fields = search.stale(device, computed)
        if fields is not None:
            await self._devices.update_one({"_id": device["_id"]}, {"$set": fields})
            device.update(fields)

    async def _update_facts(self, device_id: str, update: Mapping[str, Any], condition: Mapping[str, Any]) -> bool:
        """One write to searchable facts (tags, the WAN MAC), then the search fields if they moved."""
        updated = await self._devices.find_one_and_update(
            # no projection: FerretDB 1.24's findAndModify refuses one
            {**condition, "_id": device_id}, dict(update), return_document=ReturnDocument.AFTER
        )
        await self._refresh_search(updated)
        return updated is not None

    async def backfill_search(self, query: Document, batch: int, budget: Callable[[], bool]) -> tuple[int, bool]:
        """Devices matching ``query`` (one partition, ``tasks/search_backfill.py``) stored before the
        search fields (or with stale ones) get them: one streamed read, written ``batch`` at a time
        while ``budget()`` allows; how many were written, and whether the read reached its end."""
        written = 0
        complete = True
        pending: list[Update] = []
        projection = {**FACTS_PROJECTION, "presence": 1, "offline_after": 1, "offline_due": 1, "health_due": 1,
                      "last_inform": 1, search.INFORM_SLICES_FIELD: 1, "olt_id": 1, search.OLT_SLICES_FIELD: 1,
                      OVERRIDES: 1, HAS_OVERRIDES: 1}
        cursor = self._devices.find(query, projection, batch_size=batch)
        try:
            async for device in cursor:
                fields = search.stale(device) or {}
                if "presence" not in device:  # stored before presence existed
                    fields["presence"] = "online" if is_online(device, datetime.now(UTC)) else "offline"
                if "offline_due" not in device and isinstance(device.get("offline_after"), datetime):
                    # a deadline already past goes in the slice being scanned now, so it is found
                    fields["offline_due"] = due_slice(max(device["offline_after"], datetime.now(UTC)))
                if "health_due" not in device:  # stored before the health poll's scan key: due within the hour
                    spread = search.page_bucket(device["_id"]) * HEALTH_BACKFILL_SPREAD // search.BUCKETS
                    fields["health_due"] = due_slice(datetime.now(UTC) + timedelta(seconds=spread))
                if fields:
                    pending.append(Update({"_id": device["_id"]}, {"$set": fields}))
                if device.get(OVERRIDES) and HAS_OVERRIDES not in device:
                    # Only while the device still has none: an operator's change since wrote its own.
                    pending.append(Update({"_id": device["_id"], HAS_OVERRIDES: {"$exists": False}},
                                          {"$set": {HAS_OVERRIDES: True}}))
                if search.INFORM_SLICES_FIELD not in device and isinstance(device.get("last_inform"), datetime):
                    # Only while the device still has none: an Inform since wrote the slices of a newer one.
                    pending.append(Update({"_id": device["_id"], search.INFORM_SLICES_FIELD: {"$exists": False}},
                                          {"$set": search.inform_slices(device["last_inform"])}))
                if search.OLT_SLICES_FIELD not in device and isinstance(device.get("last_inform"), datetime):
                    # Likewise, and of the OLT read with the device (an Inform since wrote its own).
                    pending.append(Update({"_id": device["_id"], search.OLT_SLICES_FIELD: {"$exists": False}},
                                          {"$set": search.olt_inform_slices(device["_id"], device.get("olt_id"),
                                                                            device["last_inform"])}))
                if len(pending) >= batch:
                    written += await flush_updates(self._devices, pending)
                    if not budget():
                        complete = False
                        break
        finally:
            await cursor.close()  # an open cursor holds one of FerretDB's PostgreSQL connections
        return written + await flush_updates(self._devices, pending), complete

    async def get(self, device_id: str, projection: Mapping[str, Any] | None = None) -> Document | None:
        return await self._devices.find_one({"_id": device_id}, projection)

    async def find_by_cpe_username(self, username: str) -> Document | None:
        return await self._devices.find_one({"cpe_username": username}, {"cpe_password": 1})

    async def set_facts_if_changed(self, device_id: str, facts: Mapping[str, Any]) -> bool:
        """Searchable facts a read brought (the WAN and LAN MAC), with the search fields, only when
        one differs from the stored one; whether they were written. A health read asks for the MACs
        each time: every read after the first finds them stored, and costs the device no write and
        the ACS no search fields (the filter matches nothing, so nothing comes back to compare)."""
        differs = {"$or": [{name: {"$ne": value}} for name, value in facts.items()]}
        return await self._update_facts(device_id, {"$set": dict(facts)}, differs)

    async def set_fields(self, device_id: str, fields: Mapping[str, Any]) -> bool:
        """``fields`` written; a new ``olt_id`` should come with its ``olt_inform_slices``
        (``search.olt_inform_slices``), as the health read writes them."""
        fields = with_due_slice(fields)
        if "olt_id" in fields:
            self._keep_olt(device_id, fields["olt_id"])
        if any(name in search.FACTS for name in fields):
            return await self._update_facts(device_id, {"$set": dict(fields)}, {})
        result = await self._devices.update_one({"_id": device_id}, {"$set": dict(fields)})
        return result.matched_count == 1

    async def set_fields_many(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """``set_fields`` for many devices in capped unordered commands (a job's bookkeeping: not for
        searchable facts, whose search tokens ``set_fields`` keeps)."""
        assert not any(name in search.FACTS for _, fields in changes for name in fields)
        updates = [Update({"_id": device_id}, {"$set": with_due_slice(fields)}) for device_id, fields in changes]
        await flush_updates(self._devices, updates)

    async def set_fields_in_health_slice(self, due: int, device_ids: list[str], fields: Mapping[str, Any]) -> int:
        """``fields`` on the online devices ``device_ids`` whose next health read falls in slice ``due``,
        in one update by the slice's equality (the health poll's bookkeeping of the reads it queued
        from that slice); how many it modified. The ids keep out a device whose write into the slice committed after the
        poll read it: moved with the others, it would be marked read without a read queued."""
        assert not any(name in search.FACTS for name in fields)
        update = {"$set": with_due_slice(fields)}
        query = {"health_due": due, "presence": "online", "_id": {"$in": device_ids}}
        return (await self._devices.update_many(query, update)).modified_count

    async def update_if(
        self,
        device_id: str,
        condition: Mapping[str, Any],
        fields: Mapping[str, Any],
        unset: list[str],
        *,
        wait_only: bool = False,
    ) -> bool:
        """Set ``fields`` and drop ``unset`` in one write, only while the device matches ``condition``.

        ``wait_only``: the caller needs no answer but "stored" (it returns True then), so the write
        goes with other sessions' writes (``group_commit.py``).
        """
        update: Document = {"$set": with_due_slice(fields)} if fields else {}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        if wait_only:
            await self._writer.write(Update({**condition, "_id": device_id}, update))
            return True
        result = await self._devices.update_one({**condition, "_id": device_id}, update)
        return result.matched_count == 1

    async def set_interval(self, device_id: str, interval: int, deadline: datetime) -> None:
        """The device's PeriodicInformInterval, and its offline deadline moved out to ``deadline`` (never in)."""
        await self._devices.update_one(
            {"_id": device_id},
            {"$set": {"periodic_inform_interval": interval},
             # the scan key moves with the deadline (slices grow with time, so $max keeps them together)
             "$max": {"offline_after": deadline, "offline_due": due_slice(deadline)}},
        )

    async def mark_members(self, incident_id: int, device_ids: list[str], first: int) -> int:
        """The incident's marks on ``device_ids``, its stored members from position ``first`` on
        (``tasks/store/incident_members.py``): one update by ``_id`` each, in capped commands; how many
        were modified (a device marked already is not)."""
        updates = [Update({"_id": device_id}, {"$addToSet": {MARKS: incident_members.mark_of(incident_id, first + n)}})
                   for n, device_id in enumerate(device_ids)]
        return await flush_updates(self._devices, updates)

    async def unmark_members(self, incident_id: int, page: int) -> int:
        """The incident's mark of one page of its members removed from the devices that carry it:
        one update by that indexed equality (it reads only them); how many were modified."""
        mark = f"{incident_id}/{page}"
        # $pullAll, not $pull: FerretDB ignores $pull with a condition (``remove_tags``).
        return (await self._devices.update_many({MARKS: mark}, {"$pullAll": {MARKS: [mark]}})).modified_count

    async def unset_fields(self, device_id: str, fields: list[str]) -> None:
        await self._devices.update_one({"_id": device_id}, {"$unset": dict.fromkeys(fields, "")})

    async def add_tags(self, device_id: str, tags: list[str]) -> bool:
        return await self._update_facts(device_id, {"$addToSet": {"tags": {"$each": tags}}}, {})

    async def remove_tags(self, device_id: str, tags: list[str]) -> bool:
        # $pullAll, not $pull with $in: FerretDB ignores the latter.
        return await self._update_facts(device_id, {"$pullAll": {"tags": tags}}, {})

    async def watches_ended(self, now: datetime, limit: int, tag: str) -> list[Document]:
        """Devices whose "watch for N hours" (``watch_until``) has passed.

        Found among the devices carrying the watch tag (an equality FerretDB serves from an index;
        the console sets both), not by a range over the fleet."""
        cursor = self._devices.find({"tags": tag, "watch_until": {"$lte": now}}, {"_id": 1, "watch_until": 1})
        cursor = cursor.limit(limit)
        return [device async for device in cursor]

    async def end_watch(self, device_id: str, tag: str, until: datetime) -> bool:
        """Drop the watch tag and ``watch_until``, unless the watch was extended meanwhile."""
        return await self._update_facts(
            device_id, {"$pullAll": {"tags": [tag]}, "$unset": {"watch_until": ""}}, {"watch_until": until}
        )

    async def page(self, device_filter: DeviceFilter, now: datetime, after: str | None, limit: int) -> list[Document]:
        """Devices in device_id order, keyset-paginated (``after`` is the last id of the previous page)."""
        query = device_filter.to_query(now)
        if after is not None:
            query = {"$and": [query, {"_id": {"$gt": after}}]} if query else {"_id": {"$gt": after}}
        cursor = self._devices.find(query).sort("_id", ASCENDING).limit(limit)
        return [device async for device in cursor]

    async def search_page(
        self, device_filter: DeviceFilter, position: Mapping[str, Any] | None, limit: int,
    ) -> SearchPage:
        """One page of a listing, read by equalities only, and the listing's total (exact or estimated).

        A listing small enough to read whole (up to ``WHOLE_MAX`` matches) is read whole and given
        in device_id order with an exact total. A larger one is read one partition at a time
        (``page_group`` or, past ``GROUP_MAX`` matches, ``page_bucket``: ``tasks/search.py``), in
        (``page_bucket``, device_id) order, and its total is estimated from the partitions read.
        A page holds whole partitions and ends where the next would likely overflow it, and at most
        ``MAX_PARTITIONS`` partitions are read per page, so a page may come short, with a cursor to
        go on. ``position`` is what the previous page returned, None for the first.
        """
        projection = LISTED
        if device_filter.incident is not None:
            return await self._incident_page(device_filter, position, limit)
        if device_filter.device_ids is not None:
            return await self._members_page(device_filter, position, limit)
        query = device_filter.to_query(datetime.min)
        level = (position or {}).get("level")
        total, exact = (position or {}).get("total"), bool((position or {}).get("exact"))
        if level is None and position is not None:
            level = WHOLE  # a cursor of the earlier listing: {"after": id}
        if level is None:
            kept = self._kept_estimate(query)
            if kept is None:
                return await self._first_page(query, limit)
            if kept > WHOLE_MAX * 2 or self._probe_overflowed(query):
                level, total = await self._level(max(kept, WHOLE_MAX * 2 + 1)), kept
        if level is None:
            # Kept small: a bounded probe reads it whole with an exact count, in one query.
            probe = [device async for device in self._devices.find(query, projection).limit(WHOLE_MAX + 1)]
            if len(probe) <= WHOLE_MAX:
                return self._whole_page(probe, None, limit)
            # Larger than WHOLE_MAX (grown since it was kept, or kept from a sample under 2 * WHOLE_MAX):
            # sampled again, and read by partition from here on without another probe.
            self._estimates.drop(query)
            self._overflowed.keep(query, True)
            return await self._first_page(query, limit)
        if level == WHOLE:
            cursor = self._devices.find(query, projection).limit(WHOLE_MAX + 1)
            found = [device async for device in cursor]
            if len(found) <= WHOLE_MAX:
                return self._whole_page(found, (position or {}).get("after"), limit)
            level, total, exact, position = GROUP, total or len(found), False, None  # grown since
        return await self._partitioned_page(query, level, position, limit, projection, int(total or 0), exact)

    @staticmethod
    def _whole_page(found: list[Document], after: str | None, limit: int) -> SearchPage:
        """A match set read whole: in device_id order, counted exactly."""
        found.sort(key=lambda device: device["_id"])
        rest = [device for device in found if after is None or device["_id"] > after]
        following = {"level": WHOLE, "after": rest[limit - 1]["_id"]} if len(rest) > limit else None
        return SearchPage(rest[:limit], following, len(found), True)

    def _kept_estimate(self, query: Document) -> int | None:
        """The listing's estimate kept for ``ESTIMATE_TTL`` seconds in this process: the next first
        page of the same listing (an operator paging, refreshing, a console's every list view)
        samples nothing."""
        return self._estimates.get(query)

    def _keep_estimate(self, query: Document, estimate: int) -> None:
        self._estimates.keep(query, estimate)

    def _probe_overflowed(self, query: Document) -> bool:
        """Whether a probe of the listing read more than ``WHOLE_MAX`` within ``ESTIMATE_TTL``."""
        return self._overflowed.get(query) is not None

    async def _first_page(self, query: Document, limit: int) -> SearchPage:
        """A listing's first page when no estimate is kept: the partitions it reads first are its
        sample (``page_bucket`` hashes the device id, so any partitions are a fair one), so sizing
        it costs no count (FerretDB 1.24 reads every document a count counts, and the spread sample
        of counts this replaced took 3-17 commands before the page's own reads).

        First the first ``FIRST_BUCKETS`` buckets: a listing dense enough to be read by bucket
        (more than ``GROUP_MAX`` in the fleet, at that rate) goes on from them. Otherwise the first
        group (which holds them): a listing larger than ``2 * WHOLE_MAX`` at its rate is read by
        group (or by bucket) from it; a smaller one is probed and read whole (at most
        ``WHOLE_MAX + 1`` documents), exactly counted. A search matching thousands (a serial
        prefix) is so never probed: a probe reads up to ``WHOLE_MAX + 1`` to learn it is large."""
        first = await asyncio.gather(*(self._read_partition({**query, "page_bucket": bucket}, LISTED)
                                       for bucket in range(FIRST_BUCKETS)))
        found = sum(len(batch) for batch in first)
        if found * search.BUCKETS > GROUP_MAX * FIRST_BUCKETS:
            return await self._partitioned_page(query, BUCKET, None, limit, LISTED, found * search.BUCKETS //
                                                FIRST_BUCKETS, False, dict(enumerate(first)))
        group = await self._read_partition({**query, "page_group": 0}, LISTED)
        estimate = len(group) * search.GROUPS
        if estimate <= WHOLE_MAX * 2 and not self._probe_overflowed(query):
            probe = [device async for device in self._devices.find(query, LISTED).limit(WHOLE_MAX + 1)]
            if len(probe) <= WHOLE_MAX:
                self._keep_estimate(query, len(probe))  # the next first page probes at once
                return self._whole_page(probe, None, limit)
            self._overflowed.keep(query, True)  # the next first page reads by partition at once
        estimate = max(estimate, WHOLE_MAX * 2 + 1)  # sampled large, or probed so
        level = await self._level(estimate)
        if level == GROUP:
            return await self._partitioned_page(query, GROUP, None, limit, LISTED, estimate, False, {0: group})
        size = _partitioning(level)[2]  # the first group split into the level's partitions
        split: dict[int, list[Document]] = {part: [] for part in range(search.GROUP_SIZE // size)}
        for device in group:
            split.setdefault(int(device.get("page_bucket", 0)) // size, []).append(device)
        return await self._partitioned_page(query, level, None, limit, LISTED, estimate, False, split)

    async def _level(self, estimate: int) -> str:
        """The partitions a listing of about ``estimate`` matches is read by: the coarsest that hold
        about ``PARTITION_MAX`` or less; blocks once every device has one (the search fields' backfill
        says so: a device stored before them would be missed); buckets past ``GROUP_MAX`` without."""
        if estimate <= PARTITION_MAX * search.GROUPS:
            return GROUP
        if estimate <= PARTITION_MAX * search.BLOCKS and await self._backfilled(BLOCKS_SINCE):
            return BLOCK
        return GROUP if estimate <= GROUP_MAX else BUCKET

    async def overrides_marked(self) -> bool:
        """Whether every device with overrides says so (``HAS_OVERRIDES``: the search fields' backfill
        of ``search.OVERRIDES_SINCE`` has completed), so that ``with_overrides`` finds them all."""
        return await self._backfilled(search.OVERRIDES_SINCE)

    def with_overrides(self, projection: Mapping[str, Any], batch_size: int) -> AsyncGenerator[Document, None]:
        """The devices with configuration overrides (``HAS_OVERRIDES``, one indexed equality), streamed
        as ``scan``; complete once ``overrides_marked``."""
        return self.scan({HAS_OVERRIDES: True}, projection, batch_size)

    async def _backfilled(self, version: int) -> bool:
        """Whether every device has the search fields of ``version`` (``page_block`` since 3, the
        last inform's slices since 4): read from ``job_state`` at most once per ``ESTIMATE_TTL``
        until the current version is complete, then never again in this process."""
        if self._version < search.VERSION and time.monotonic() - self._version_checked >= ESTIMATE_TTL:
            self._version_checked = time.monotonic()
            state = await self._state.find_one({"_id": SEARCH_BACKFILL}, {"version": 1})
            self._version = int((state or {}).get("version") or 0)
        return self._version >= version

    async def _partitioned_page(
        self, query: Document, level: str, position: Mapping[str, Any] | None, limit: int,
        projection: Mapping[str, Any] | None, total: int, exact: bool,
        sample: Mapping[int, list[Document]] | None = None,
    ) -> SearchPage:
        """``sample``: a first page's partitions read already (by number); the listing's total is
        then estimated from every partition this page read, and kept."""
        field, parts, size = _partitioning(level)
        part = int((position or {}).get("part", 0))
        after = (int((position or {}).get("bucket", -1)), str((position or {}).get("after", "")))
        taken: list[Document] = []
        read = matched = 0
        expected = max(total / parts, 0.01)

        async def partition(number: int) -> list[Document]:
            if sample is not None and number in sample:
                return list(sample[number])
            return await self._read_partition({**query, field: number}, projection)

        following: dict[str, Any] | None = None
        while part < parts and len(taken) <= limit and read < MAX_PARTITIONS:
            # as many whole partitions as the estimate says fit in this page, up to WAVE at once
            width = min(WAVE, max(1, math.floor((limit - len(taken)) / expected)))
            wave = range(part, min(parts, part + width))
            if sample is not None:  # what the sample holds is read already: take it with this wave
                wave = range(part, max([wave[-1], *(n for n in sample if n >= part and sample[n])]) + 1)
            batches = await asyncio.gather(*(partition(p) for p in wave))
            for batch in batches:
                read += 1
                matched += len(batch)
                batch.sort(key=order)
                taken += [device for device in batch if order(device) > after]
            part = wave[-1] + 1
            if len(taken) > limit:
                last = taken[limit - 1]
                following = {"level": level, "part": last["page_bucket"] // size, "bucket": last["page_bucket"],
                             "after": last["_id"]}
                taken = taken[:limit]
                break
            if taken and len(taken) + expected > limit:
                # The next partition would likely overflow the page: it ends here, on a partition's
                # end, and the next page starts on the next one. Each page reads about what it
                # lists (filling it up read a second partition and gave most of it again on the
                # next page: about 100 documents read a page for 50 listed at 200,000 devices).
                break
        if following is None and part < parts:
            following = {"level": level, "part": part, "bucket": -1, "after": ""}
        if sample is not None:
            # The partitions read are the sample: the same rate, scaled to the fleet (+-12% once
            # about 64 matches were read; the reply says it is an estimate).
            total = matched * parts // read if part < parts else matched
            exact = part >= parts
            self._keep_estimate(query, total)
        if following is not None:
            following.update(total=total, exact=exact)
        return SearchPage(taken, following, total, exact)

    async def _read_partition(self, query: Document, projection: Mapping[str, Any] | None) -> list[Document]:
        return [device async for device in self._devices.find(query, projection)]

    async def _members_page(
        self, device_filter: DeviceFilter, position: Mapping[str, Any] | None, limit: int
    ) -> SearchPage:
        """An incident's members: read by ``_id`` (each an indexed equality), the other filters applied here."""
        members = sorted(set(device_filter.device_ids or ()))
        after = (position or {}).get("after")
        rest = [device_id for device_id in members if after is None or device_id > after]
        others = device_filter.to_query(datetime.min)
        others.pop("_id", None)
        projection = None if "search" in others else LISTED  # the tokens only to match a search
        taken: list[Document] = []
        looked = 0
        chunk: list[str] = []
        # With no other filter every member found is listed: a page looks up what it lists (a
        # lookup is a command of its own, about 1 ms of this process's CPU on top of the database's).
        wanted = limit if not others else limit + 1
        while rest and len(taken) < wanted and looked < MAX_LOOKUPS:
            size = LOOKUPS_AT_ONCE if others else min(LOOKUPS_AT_ONCE, limit - len(taken))
            chunk, rest = rest[:size], rest[size:]
            looked += len(chunk)
            found = await asyncio.gather(*(self._devices.find_one({"_id": member}, projection) for member in chunk))
            taken += [device for device in found if device is not None and device_filter.matches(device)]
        for device in taken:
            device.pop("search", None)  # read for matching; not listed
        following = {"after": taken[limit - 1]["_id"]} if len(taken) > limit else None
        if following is None and rest:
            following = {"after": chunk[-1]}
        if not others:
            return SearchPage(taken[:limit], following, len(members), True)
        matched = len(taken) if not rest else round(len(taken) * len(members) / max(looked, 1))
        return SearchPage(taken[:limit], following, matched, not rest and after is None)

    async def _incident_page(
        self, device_filter: DeviceFilter, position: Mapping[str, Any] | None, limit: int
    ) -> SearchPage:
        """An incident's members in their stored order (``members`` only grows), the other filters
        applied here: a page of ``MARK_PAGE`` marked members is one read by their mark
        (``tasks/store/incident_members.py``), the others are read by ``_id``."""
        members = list(dict.fromkeys(device_filter.device_ids or ()))
        at = int((position or {}).get("at", 0))
        if "at" not in (position or {}) and (position or {}).get("after") in members:
            at = members.index((position or {})["after"]) + 1  # a cursor of the listing by id
        others = device_filter.to_query(datetime.min)
        others.pop("_id", None)
        projection = None if "search" in others else LISTED  # the tokens only to match a search
        taken: list[tuple[int, Document]] = []
        index = at
        # With no other filter every member found is listed: a page reads what it lists.
        wanted = limit if not others else limit + 1
        while index < len(members) and len(taken) < wanted and index - at < MAX_LOOKUPS:
            size = wanted - len(taken) if not others else max(wanted - len(taken), MARK_PAGE)
            found = await incident_members.read_members(self._devices, device_filter.incident, members, index,
                                                        index + size, device_filter.marked, projection)
            positions = {member: index + offset for offset, member in enumerate(members[index:index + size])}
            taken += [(positions[device["_id"]], device) for device in found if device_filter.matches(device)]
            index += size
        for _, device in taken:
            device.pop("search", None)  # read for matching; not listed
        following = None
        if len(taken) > limit:
            following = {"at": taken[limit - 1][0] + 1}
        elif index < len(members):
            following = {"at": index}
        devices = [device for _, device in taken[:limit]]
        if not others:
            return SearchPage(devices, following, len(members), True)
        looked = index - at
        matched = len(taken) if index >= len(members) else round(len(taken) * len(members) / max(looked, 1))
        return SearchPage(devices, following, matched, index >= len(members) and at == 0)

    def _member_ids(self, device_filter: DeviceFilter) -> list[str]:
        """The filter's devices in listing order: an incident's as stored, a selection's by id."""
        if device_filter.incident is not None:
            return list(dict.fromkeys(device_filter.device_ids or ()))
        return sorted(set(device_filter.device_ids or ()))

    async def _read_members(self, device_filter: DeviceFilter, members: list[str]) -> list[Document]:
        """The devices of ``members`` (the filter's, in listing order): by their marks, the rest by ``_id``."""
        return await incident_members.read_members(self._devices, device_filter.incident, members, 0, len(members),
                                                   device_filter.marked, None)

    async def newest_informed(self, device_filter: DeviceFilter, want: int, now: datetime) -> SearchPage | None:
        """The first ``want`` or more matching devices by last inform, newest first (sorted by last
        inform, then device id, descending), read slice by slice (``tasks/store/newest_informs.py``),
        with the listing's estimated total; None when the match set is better read whole: an
        incident's members, devices stored before the slices and not backfilled yet (the search
        fields' version in ``job_state`` says when none is left), a listing estimated at most
        ``NEWEST_WHOLE_MAX`` (read whole, its total exact), a walk that would read too much."""
        if device_filter.device_ids is not None or not await self._backfilled(INFORM_SLICES_SINCE):
            return None
        query = device_filter.to_query(datetime.min)
        total = await self._estimated_total(query)
        if total <= NEWEST_WHOLE_MAX:
            return None

        async def read(slice_query: Document, limit: int) -> list[Document]:
            async with self._devices.find(slice_query, LISTED).limit(limit) as cursor:
                return [device async for device in cursor]

        olt = query.get("olt_id")
        by_olt = isinstance(olt, str) and await self._backfilled(OLT_SLICES_SINCE)
        found = await newest_informs.newest_first(read, query, want, now, by_olt=by_olt)
        if found is None:
            return None
        if by_olt and any(device.get("olt_id") != olt for device in found):
            return None  # a token of an OLT the device left (its next Inform rewrites them): read whole
        found.sort(key=lambda device: (device.get("last_inform") or datetime.min.replace(tzinfo=UTC), device["_id"]),
                   reverse=True)
        return SearchPage(found, None, max(total, len(found)), False)

    async def _estimated_total(self, query: Document) -> int:
        """The listing's total as its unsorted first page estimates it (kept ``ESTIMATE_TTL`` seconds):
        its first ``FIRST_BUCKETS`` buckets, or when those are sparse its first group, scaled to the
        fleet (a count would decode every match)."""
        kept = self._kept_estimate(query)
        if kept is not None:
            return kept
        first = await asyncio.gather(*(self._read_partition({**query, "page_bucket": bucket}, {"_id": 1})
                                       for bucket in range(FIRST_BUCKETS)))
        found = sum(len(batch) for batch in first)
        if found * search.BUCKETS > GROUP_MAX * FIRST_BUCKETS:
            estimate = found * search.BUCKETS // FIRST_BUCKETS
        else:
            estimate = len(await self._read_partition({**query, "page_group": 0}, {"_id": 1})) * search.GROUPS
        self._keep_estimate(query, estimate)
        return estimate

    async def read_whole(
        self, device_filter: DeviceFilter, projection: Mapping[str, Any] | None, cap: int
    ) -> list[Document] | None:
        """Every matching device, when there are at most ``cap`` (a list sorted by any column); else None.

        Read by equalities (an incident's members by their mark, the rest by ``_id``), at most ``cap + 1``
        documents."""
        if device_filter.device_ids is not None:
            members = self._member_ids(device_filter)
            if len(members) > cap:
                return None
            found = [device for device in await self._read_members(device_filter, members)
                     if device_filter.matches(device)]
            for device in found:
                device.pop("search", None)
            return found
        cursor = self._devices.find(device_filter.to_query(datetime.min), projection or LISTED).limit(cap + 1)
        matched = [device async for device in cursor]
        return matched if len(matched) <= cap else None

    async def stream_partitions(
        self, device_filter: DeviceFilter, projection: Mapping[str, Any] | None
    ) -> AsyncGenerator[Document, None]:
        """Every matching device, one ``page_group`` at a time (an export of any size): each read is
        an equality FerretDB serves from an index, each cursor closed before the next opens."""
        if device_filter.device_ids is not None:
            members = self._member_ids(device_filter)
            for start in range(0, len(members), MEMBER_READS):
                for device in await self._read_members(device_filter, members[start:start + MEMBER_READS]):
                    if device_filter.matches(device):
                        device.pop("search", None)
                        yield device
            return
        query = device_filter.to_query(datetime.min)
        if query:  # a small result is one read (an OLT's 512 devices): 64 partition reads cost more
            async with self._devices.find(query, projection or LISTED).limit(SMALL_EXPORT + 1) as cursor:
                small = [device async for device in cursor]
            if len(small) <= SMALL_EXPORT:
                small.sort(key=lambda device: device["_id"])
                for device in small:
                    yield device
                return
        for group in range(search.GROUPS):
            async with self._devices.find({**query, "page_group": group}, projection or LISTED,
                                          batch_size=READ_BATCH) as cursor:
                batch = [device async for device in cursor]
            batch.sort(key=order)
            for device in batch:
                yield device

    async def ids(self, device_filter: DeviceFilter, now: datetime, limit: int) -> list[str]:
        cursor = self._devices.find(device_filter.to_query(now), {"_id": 1}).sort("_id", ASCENDING).limit(limit)
        return [device["_id"] async for device in cursor]

    async def count(self, device_filter: DeviceFilter, now: datetime) -> int:
        return await self._devices.count_documents(device_filter.to_query(now))

    # -- presence and health (issue 5) ----------------------------------------------------------

    async def overdue(self, now: datetime, limit: int) -> tuple[list[Document], int | None]:
        """Devices still marked online whose periodic inform is overdue past the margin, in the order
        of their slices, and where the scan goes on from once the caller marked them all (None: where
        it was); the caller saves that (``set_scan_position``), so a run that stops part-way (its time
        budget, ``OfflineDetector``) saves the slice of the first device it did not mark instead.

        Found by equality on ``offline_due`` (the ``OFFLINE_DUE_SECONDS`` slice of ``offline_after``,
        written with it), slice by slice from where the last call finished (kept in ``job_state``)
        up to now: FerretDB serves an equality from an index but scans for a range, and a range
        here would read every online device each run. The slice in progress is read too, with the
        deadline checked on its few devices.
        """
        now_slice = due_slice(now)
        start = await self.scan_position(OFFLINE_SCAN)
        start = now_slice - OFFLINE_LOOKBACK_SLICES if start is None else start
        start = min(start, now_slice)  # a clock set back: the slice in progress is read still
        last = min(now_slice, start + OFFLINE_SLICES_PER_CALL - 1)
        found: list[Document] = []
        done = start - 1
        for due in range(start, last + 1):
            # The slice alone: with ``presence`` in the filter too, PostgreSQL may pick that index
            # (most devices are online) and read them all; a slice holds seconds' worth of devices.
            query: Document = {"offline_due": due}
            if due == now_slice:
                query["offline_after"] = {"$lte": now}
            cursor = self._devices.find(query, {"offline_after": 1, "offline_due": 1, "presence": 1})
            found += [device async for device in cursor if device.get("presence") == "online"]
            if due < now_slice - SETTLE_SLICES:
                done = due  # every overdue device of a settled slice was found (``SETTLE_SLICES``)
            if len(found) >= limit:
                break
        return found, (done + 1 if done >= start else None)

    async def mark_offline(self, marks: Sequence[OfflineMark], now: datetime, run: str) -> list[str]:
        """Online -> offline for the devices of ``marks`` (at most MAX_BATCH: one command), unless an
        Inform came in meanwhile (each statement's filter re-checks presence and the deadline); the
        ids this call marked.

        A mark of several devices is one ``update_many`` by the slice's equality and their ids (FerretDB
        reads the slice once, where a statement per device reads each device before its write); one
        device is a statement by its ``_id``. ``offline_mark: run`` is written with the mark: when the
        command modified fewer devices than it named, the devices named are read back by ``_id`` and
        those carrying this run's mark are the ones it marked (a later Inform leaves the field be)."""
        updates = [Update(_offline_filter(mark, now), {"$set": {
            "presence": "offline", "offline_since": mark.since, "offline_mark": run}},
            every_match=len(mark.device_ids) > 1) for mark in marks]
        reply = await write_command(self._devices, updates)
        for error in reply.get("writeErrors", []):
            raise statement_error(error)
        named = [device_id for mark in marks for device_id in mark.device_ids]
        if int(reply.get("nModified", 0)) == len(named):
            return named
        read = [await self._devices.find_one({"_id": device_id}, {"offline_mark": 1}) for device_id in named]
        return [device_id for device_id, device in zip(named, read, strict=True)
                if device is not None and device.get("offline_mark") == run]

    async def clear_offline(self, device_id: str, now: datetime) -> None:
        """Back online: the health poll's due slice, passed while the device was away (the poll skips
        offline devices), is brought to ``now``; a due time still ahead stays (``$max``)."""
        await self._devices.update_one(
            {"_id": device_id}, {"$unset": {"offline_since": ""}, "$max": {"health_due": due_slice(now)}}
        )

    # -- the health poll's scan (tasks/health/poll.py) -------------------------------------------

    async def in_health_slice(self, due: int) -> list[Document]:
        """Devices whose next health read falls in slice ``due`` (``health_due``: one indexed equality).

        Read whole (a policy's ``q`` matches the search tokens): the poller matches its policies on them."""
        return [device async for device in self._devices.find({"health_due": due}).batch_size(READ_BATCH)]

    async def scan_position(self, name: str) -> int | None:
        """The slice a slice-by-slice scan goes on from (``job_state``), None before its first run."""
        state = await self._state.find_one({"_id": name})
        return int(state["next"]) if state else None

    async def set_scan_position(self, name: str, next_slice: int) -> None:
        await upsert_one(self._state, {"_id": name}, {"$set": {"next": next_slice}})

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

    async def count_read(self, query: Document) -> int:
        """How many devices match ``query``, counted from a read of their ids: on FerretDB 1.24 a count
        decodes them as a read does, and a read by top-level equality is pushed down."""
        async with self._devices.find(query, {"_id": 1}, batch_size=READ_BATCH) as cursor:
            return len([device async for device in cursor])

    async def count_presence(self, presence: str) -> int:
        return await self._devices.count_documents({"presence": presence})

    async def count_query(self, query: Document) -> int:
        return await self._devices.count_documents(query)
