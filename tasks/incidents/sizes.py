"""Group sizes for the incident job: a census of the fleet, spread over runs, and exact counts of candidates.

Reading every device on every detection run does not scale to a fleet of millions, so a run reads
only the affected devices (offline, critical, failing tasks) and judges each group's share against
a *census*: each group's size, counted over the fleet's grouping fields. One pass over 200,000
devices reads for about 50 s on FerretDB (155 s cold), more than the job's whole interval, so a
pass is spread over runs like the fleet census (``tasks/partitions.py``): each run reads
partitions for its time budget, the pass in progress is kept in the database
(``tasks/store/incident_census.py``: any process may hold the job's lease next), and the census
is replaced when a pass has read every partition. A new pass begins once the last one is
``max_age`` old (back to back on a fleet whose pass takes longer).

A census is minutes old, and before the very first pass completes there is none: a group can be
stale (devices re-homed to a new OLT, a firmware rolled out, a new fleet still coming up), so the
groups near a decision are counted again in the database (``exact_size``) before ``detect``.
Until a first pass completes, a group the pass so far has counted ``ESTIMATE_MIN`` times is sized
by that count scaled to the whole fleet (partitions are a hash of the device id: an unbiased
sample, within about 15% at that count, and a group is counted exactly when its share is half the
threshold); a smaller one by what the affected devices show of it, a lower bound: shares are
overestimated, never hidden, so every group that could qualify is counted exactly.

Every query here is a top-level equality where it can be: FerretDB 1.24 pushes only those down to
PostgreSQL (an ``$or``, a range or a regex is a scan of the whole collection in FerretDB), and on
MongoDB each is an index lookup. The subnet count is the one regex (an index prefix on MongoDB).
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tasks import partitions, search
from tasks.incidents import grouping
from tasks.store.db import Document
from tasks.store.devices import DeviceRepository
from tasks.store.incident_census import IncidentCensusRepository, sizes_of

# The fields ``grouping.groups_of`` reads.
GROUP_FIELDS = ("olt_id", "pon_port", "software_version", "product_class", "tags", "wan_ip", "remote_ip")
CENSUS_BATCH = 5000
ESTIMATE_MIN = 50  # devices of a group a pass in progress has counted before it estimates the group


def estimated_sizes(counted: Mapping[str, int], buckets_read: int) -> Counter[str]:
    """Group sizes from a pass that has read ``buckets_read`` of ``search.BUCKETS``: the groups it
    counted at least ``ESTIMATE_MIN`` times, scaled to the fleet; no guess for the others."""
    if buckets_read <= 0:
        return Counter()
    scale = search.BUCKETS / min(buckets_read, search.BUCKETS)
    return Counter({key: round(count * scale) for key, count in counted.items() if count >= ESTIMATE_MIN})


@dataclass
class Census:
    sizes: Counter[str] = field(default_factory=Counter)
    devices: int = 0
    taken_at: datetime | None = None  # when its pass began; None: no pass completed yet
    pass_id: str | None = None

    def stale(self, now: datetime, max_age: timedelta) -> bool:
        return self.taken_at is None or now - self.taken_at >= max_age


@dataclass
class _Pass:
    """A pass in progress as this process last saved it (so it need not read its counts back)."""

    progress: Document
    sizes: Counter[str]


@dataclass(frozen=True)
class Step:
    """What one run did to the census."""

    read: int = 0  # devices read
    partitions_left: int = 0
    published: bool = False


class GroupSizes:
    """The census the detector judges by, read a budget's worth further each run."""

    def __init__(self, devices: DeviceRepository, store: IncidentCensusRepository, max_age: timedelta,
                 clock: Callable[[], datetime], budget_seconds: float = math.inf,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.devices = devices
        self.store = store
        self.max_age = max_age
        self.clock = clock
        self.budget_seconds = budget_seconds  # without a budget, one run is a whole pass
        self.monotonic = monotonic
        self.census = Census()
        self._mine: _Pass | None = None

    async def current(self, spent: float = 0.0) -> tuple[Census, Step]:
        """Go on with the pass in progress (or begin one when the census is ``max_age`` old) for what
        is left of the run's budget once ``spent`` seconds went on the rest of the run (at least one
        partition); the census to judge by (estimates until a first pass completes)."""
        await self._load_published()
        progress = await self.store.progress()
        if not (progress or {}).get("pass") and not self.census.stale(self.clock(), self.max_age):
            return self.census, Step()
        step = await self._go_on(progress, self.budget_seconds - spent)
        return self.census, step

    async def published(self) -> Census:
        """The census to judge by without reading any of the fleet: the last one published (by any
        process), or this process's estimate from the pass it is reading when none was yet."""
        await self._load_published()
        return self.census

    async def _load_published(self) -> None:
        """This process's copy of the census, read again only when another process published one."""
        head = await self.store.published(with_sizes=False)
        if head is None or head.get("pass") == self.census.pass_id:
            return
        whole = await self.store.published(with_sizes=True) or head
        self.census = Census(sizes_of(list(whole.get("rows") or [])), int(whole.get("devices") or 0),
                             whole.get("taken_at"), whole.get("pass"))

    async def _resume(self, progress: Document | None) -> _Pass:
        if progress is not None and progress.get("pass"):
            mine = self._mine
            if mine is not None and (mine.progress["pass"], mine.progress["next"]) == (progress["pass"],
                                                                                       progress["next"]):
                return mine
            return _Pass(progress, await self.store.progress_sizes())
        last_total = self.census.devices or int((progress or {}).get("last_total") or 0)
        if not last_total:
            last_total = await partitions.guess_total(self.devices)
        fresh = {"pass": uuid.uuid4().hex, "next": 0, "step": partitions.step_for(last_total),
                 "started_at": self.clock(), "devices": 0}
        return _Pass(fresh, Counter())

    async def _go_on(self, progress: Document | None, budget_seconds: float) -> Step:
        current = await self._resume(progress)
        counted = [0]

        def count(device: Document) -> None:
            counted[0] += 1
            current.sizes.update(f"{dimension}:{value}" for dimension, value in grouping.groups_of(device).items())

        step = int(current.progress["step"])
        stop = await partitions.read_partitions(self.devices, int(current.progress["next"]), step, GROUP_FIELDS,
                                                budget_seconds, count, self.monotonic)
        devices = int(current.progress["devices"]) + counted[0]
        if not stop.complete:
            saved = {**current.progress, "next": stop.position, "step": stop.step, "devices": devices}
            await self.store.save_progress(saved, current.sizes)
            self._mine = _Pass(saved, current.sizes)
            if self.census.taken_at is None:  # no census yet: judge by the pass so far
                self.census = Census(estimated_sizes(current.sizes, stop.position))
            return Step(stop.read, stop.left(stop.step))
        census = Census(current.sizes, devices, current.progress["started_at"], str(current.progress["pass"]))
        await self.store.publish({"pass": census.pass_id, "taken_at": census.taken_at, "devices": devices,
                                  "finished_at": self.clock()}, census.sizes)
        await self.store.save_progress({"pass": None, "last_total": devices}, {})
        self.census, self._mine = census, None
        return Step(stop.read, 0, True)

    async def exact_size(self, dimension: str, value: str, member: Mapping[str, Any]) -> int:
        """The group's size now. ``member``: the raw fields of one device in it (the query is built from them)."""
        queries, check = size_queries(dimension, value, member)
        if not check:
            return sum([await self.devices.count_query(query) for query in queries])
        seen: set[str] = set()
        for query in queries:
            async with aclosing(self.devices.scan(query, dict.fromkeys(GROUP_FIELDS, 1), CENSUS_BATCH)) as found:
                async for device in found:
                    if device["_id"] not in seen and grouping.groups_of(device).get(dimension) == value:
                        seen.add(device["_id"])
        return len(seen)


def size_queries(dimension: str, value: str, member: Mapping[str, Any]) -> tuple[list[Document], bool]:
    """Queries for the devices of one group, and whether their matches must be checked one by one.

    Plain equality where the database can say it (product class, version, region tag); supersets
    to check with ``groups_of`` where the group is derived (an OLT from a parameter or a tag, a PON
    under its OLT, a /24 of the WAN or management address). Those groups are small.
    """
    match dimension:
        case "product_class":
            return [{"product_class": member.get("product_class")}], False
        case "software_version":
            return [{"product_class": member.get("product_class"),
                     "software_version": member.get("software_version")}], False
        case "region":
            # A device tagged with two regions counts in both here (groups_of keeps its last): a
            # mis-tagged device, not worth reading a whole region for.
            return [{"tags": f"region:{value}"}], False
        case "olt" | "pon":
            olt = grouping.groups_of(member).get("olt", value)
            raw = member.get("olt_id")
            by_parameter = [{"olt_id": raw}] if raw and raw != olt else []
            return [*by_parameter, {"olt_id": olt}, {"tags": f"olt:{olt}"}], True
        case "subnet":
            prefix = "^" + re.escape(value.rsplit(".", 1)[0] + ".")
            return [{"wan_ip": {"$regex": prefix}}, {"remote_ip": {"$regex": prefix}}], True
    raise ValueError(f"unknown grouping dimension {dimension!r}")
