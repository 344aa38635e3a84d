"""The incident job's marks: each open incident's stored members marked on their devices.

The device list filtered by an open incident reads a page of its members by one mark
(``tasks/store/incident_members.py``: ``"12/3"``, incident 12's members 150-199), instead of one
read by ``_id`` per member. Each run, within a time budget:

- marks the members of each open incident not marked yet, in their stored order (``members`` only
  grows while an incident is open), and records how many are (``marked``): an incident opened before
  the marks existed is marked the same way, from its first member (the backfill; the list looks up
  by ``_id`` whatever is not marked yet, so it is right before, during and after);
- removes the marks of each resolved incident (by the job or by hand) from its devices, one page of
  members at a time, the pages done kept on the incident (``unmarked_pages``), until none is left
  (``marks_left`` goes).

A mark is one update by ``_id`` per device, in capped commands: FerretDB 1.24 reads a whole
collection for ``_id: {$in: [...]}``, and an update by a partition's equality plus ``$in`` reads
every device of the partition to mark a few (measured slower per device: docs/performance.md). The
removal is one update by the mark's equality per page, which reads only the devices carrying it.
On FerretDB every update reads the document and writes it whole, so a device write racing a mark's
can lose either one; a lost mark costs the list a lookup, and the mark write itself is what every
job's device write is (the health poll's bookkeeping, the offline marks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tasks.store.db import MAX_BATCH, Document
from tasks.store.devices import DeviceRepository
from tasks.store.incident_members import MARK_PAGE
from tasks.store.incidents import IncidentRepository

MARK_CHUNK = 8 * MAX_BATCH  # members marked between two looks at the budget (8 capped commands)


@dataclass
class MarkCounts:
    marked: int = 0  # devices marked this run
    unmarked: int = 0  # devices whose mark of a resolved incident was removed this run
    left: int = 0  # members of open incidents left unmarked past the budget


class MemberMarks:
    def __init__(self, devices: DeviceRepository, incidents: IncidentRepository, budget: float = math.inf,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.devices = devices
        self.incidents = incidents
        self.budget = budget
        self.monotonic = monotonic

    async def run(self, open_incidents: Iterable[Document]) -> MarkCounts:
        """Mark the open incidents' new members, then clear the resolved ones' marks, until the budget is spent."""
        began = self.monotonic()

        def spent() -> bool:
            return self.monotonic() - began >= self.budget

        counts = MarkCounts()
        for incident in open_incidents:
            members: list[str] = list(incident.get("members") or [])
            done = start = min(int(incident.get("marked") or 0), len(members))
            while done < len(members) and not spent():
                chunk = members[done:done + MARK_CHUNK]
                await self.devices.mark_members(int(incident["_id"]), chunk, done)
                done += len(chunk)
            if done != start:
                await self.incidents.set_marked(int(incident["_id"]), done)
                incident.update(marked=done, marks_left=True)
            counts.marked += done - start
            counts.left += len(members) - done
        for resolved in await self.incidents.marks_left():
            pages = -(-len(resolved.get("members") or []) // MARK_PAGE)
            page = first = int(resolved.get("unmarked_pages") or 0)
            while page < pages and not spent():
                counts.unmarked += await self.devices.unmark_members(int(resolved["_id"]), page)
                page += 1
            if page != first or page >= pages:
                await self.incidents.set_unmarked(int(resolved["_id"]), page, page >= pages)
        return counts
