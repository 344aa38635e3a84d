"""An incident's members read from ``devices`` by their mark, a page in one read.

The incident job writes on each stored member of an open incident a mark naming the incident and
the member's page of ``MARK_PAGE`` in ``members`` (``"12/3"``: incident 12, members 150-199) into
``incident_marks``, a top-level array (``tasks/incidents/marks.py``), the first ``marked`` members
in order, and removes them once the incident is resolved. ``members`` only grows while an incident
is open (new members are appended), so a member's page never changes. FerretDB 1.24 serves
``{incident_marks: "12/3"}`` from an index (membership in a top-level array), where
``_id: {$in: [...]}`` reads the whole collection: the console's page of 50 of an incident's devices
is one read of exactly those 50, not 50 reads by ``_id``.

``members`` stays the truth: a device a read returns that is not among the members wanted is
dropped (a mark left behind, FerretDB's non-atomic update having put one back), and a wanted member
the reads did not return is looked up by ``_id`` (a member beyond ``marked``: the job marks within
a time budget, an incident opened before the marks existed included; a mark lost to a concurrent
write of the device). A missing mark costs reads, never a wrong list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from tasks.store.db import Document

MARKS = "incident_marks"  # "<incident>/<page of its members>" for each open incident a device is a stored member of
MARK_PAGE = 50  # members per mark: the console's page (acs/console/devices_list.py PAGE_SIZE)
WAVE = 8  # mark reads at once
LOOKUPS_AT_ONCE = 16  # well under FerretDB's PostgreSQL pool


def mark_of(incident_id: int, position: int) -> str:
    """The mark of the member at ``position`` in the incident's ``members``."""
    return f"{incident_id}/{position // MARK_PAGE}"


async def read_members(
    devices: AsyncCollection[Document], incident_id: int | None, members: Sequence[str], start: int, stop: int,
    marked: int, projection: Mapping[str, Any] | None,
) -> list[Document]:
    """The devices of ``members[start:stop]``, in that order (a member not stored is left out): the
    pages of marks they fall in (among the first ``marked``) by one read each, the rest by ``_id``."""
    wanted = list(members[start:stop])
    wanted_set = set(wanted)
    found: dict[str, Document] = {}
    last = min(stop, marked) - 1
    pages = range(start // MARK_PAGE, last // MARK_PAGE + 1) if incident_id is not None and last >= start else range(0)

    async def read(page: int) -> list[Document]:
        return [device async for device in devices.find({MARKS: f"{incident_id}/{page}"}, projection)]

    for first in range(0, len(pages), WAVE):
        for batch in await asyncio.gather(*(read(page) for page in pages[first:first + WAVE])):
            found.update((device["_id"], device) for device in batch if device["_id"] in wanted_set)
    missing = [device_id for device_id in wanted if device_id not in found]
    for first in range(0, len(missing), LOOKUPS_AT_ONCE):
        chunk = missing[first:first + LOOKUPS_AT_ONCE]
        for device in await asyncio.gather(*(devices.find_one({"_id": member}, projection) for member in chunk)):
            if device is not None:
                found[device["_id"]] = device
    return [found[device_id] for device_id in wanted if device_id in found]
