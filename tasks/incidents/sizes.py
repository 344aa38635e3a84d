"""Group sizes for the incident job: a census of the whole fleet, and exact counts of candidates.

Reading every device on every detection run does not scale to a fleet of millions, so a run reads
only the affected devices (offline, critical, failing tasks) and judges each group's share against
a *census*: one streamed pass over the fleet's grouping fields, counted per group and kept in
memory for ``census_interval``. A census can be stale for one group (devices re-homed to a new
OLT, a firmware rolled out, a new fleet still coming up), so the few groups near a decision are
counted again in the database (``exact_size``) before ``detect``.

Every query here is a top-level equality where it can be: FerretDB 1.24 pushes only those down to
PostgreSQL (an ``$or``, a range or a regex is a scan of the whole collection in FerretDB), and on
MongoDB each is an index lookup. The subnet count is the one regex (an index prefix on MongoDB).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tasks.incidents import grouping
from tasks.store.db import Document
from tasks.store.devices import DeviceRepository

# The fields ``grouping.groups_of`` reads.
GROUP_FIELDS = ("olt_id", "pon_port", "software_version", "product_class", "tags", "wan_ip", "remote_ip")
CENSUS_BATCH = 5000


@dataclass
class Census:
    sizes: Counter[str] = field(default_factory=Counter)
    devices: int = 0
    taken_at: datetime | None = None

    def stale(self, now: datetime, max_age: timedelta) -> bool:
        return self.taken_at is None or now - self.taken_at >= max_age


class GroupSizes:
    """The census the detector judges by, refreshed when stale."""

    def __init__(self, devices: DeviceRepository, max_age: timedelta, clock: Callable[[], datetime]) -> None:
        self.devices = devices
        self.max_age = max_age
        self.clock = clock
        self.census = Census()
        self.censuses_taken = 0

    async def current(self) -> Census:
        now = self.clock()
        if self.census.stale(now, self.max_age):
            await self.take(now)
        return self.census

    async def take(self, now: datetime) -> Census:
        sizes: Counter[str] = Counter()
        devices = 0
        async with aclosing(self.devices.scan({}, dict.fromkeys(GROUP_FIELDS, 1), CENSUS_BATCH)) as fleet:
            async for device in fleet:
                devices += 1
                sizes.update(f"{dimension}:{value}" for dimension, value in grouping.groups_of(device).items())
        self.census = Census(sizes, devices, now)
        self.censuses_taken += 1
        return self.census

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
