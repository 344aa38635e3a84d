"""The device list sorted by last inform, newest first, read slice by slice (issue 13 item 3).

FerretDB 1.24 serves no sort from an index and decodes every document it reads whole (about
0.45 ms each on the 2-core box), so the list of one OLT sorted by last inform read and sorted all
512 of its devices for each page (253 / 313 ms p50 / p99 at 200,000 devices). Each device carries
its last inform's slices of time at three widths (``last_inform_slices``: the hour, the ten
minutes and the minute, ``tasks/search.py``), written in the Inform's own ``$set`` beside
``last_inform``. A page reads the slices newest first, each one indexed equality beside the
filter's:

- an hour is read with a limit of what the page still needs plus one: fewer came back, so that is
  the whole hour, taken; more, so its ten-minute slices are read the same way, newest first, and
  those holding more than the page still needs by their minutes, each read whole;
- empty hours (a fleet, or an OLT, silent for a while) cost one command each, read a few at once.

Only whole slices are taken, newest first, until the page is filled: every device not read is older
than every device read, and devices with one last inform share a slice, so sorting what was read
(by last inform, then device id, as the whole match set was sorted) gives the same first devices
in the same order. A walk that would read too much (past ``HOURS_WALKED`` hours, ``READS_MAX``
commands, or a minute holding more than ``SLICE_MAX``) gives up, and the caller reads the match set
whole as before. Devices with no last inform (never informed) have no slices: they sort last, after
any page this walk fills. A device whose last inform was stamped more than ``CLOCK_SKEW`` past this
process's clock (another ACS host's clock ahead) lies beyond the first slice read and is not listed
by the walk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from tasks import search
from tasks.store.db import Document

Read = Callable[[Document, int], Awaitable[list[Document]]]  # (query, limit) -> documents

HOURS_WALKED = 48  # past them the caller reads the match set whole
HOURS_AT_ONCE = 8  # empty hours read at once, at most
READS_MAX = 96  # commands one page's walk sends at most
SLICE_MAX = 1000  # a minute holding more matches than this: the caller reads whole (and refuses to sort)
CLOCK_SKEW = 300  # seconds: the first slice read holds this far past this process's clock
FINEST = len(search.INFORM_SLICES) - 1


class _GiveUp(Exception):
    pass


class _Walk:
    def __init__(self, read: Read, query: Document, top: int) -> None:
        self.read = read
        self.query = query
        self.top = top  # the newest second read (epoch)
        self.reads = 0

    async def slice(self, level: int, number: int, limit: int) -> list[Document]:
        self.reads += 1
        if self.reads > READS_MAX:
            raise _GiveUp
        name = search.INFORM_SLICES[level][0]
        return await self.read({**self.query, search.INFORM_SLICES_FIELD: f"{name}{number}"}, limit)

    async def whole_or_inner(self, level: int, number: int, need: int) -> list[Document]:
        """Slice ``number`` whole when it holds at most ``need``, else its newest ``need`` or more by inner slices."""
        if level == FINEST:
            found = await self.slice(level, number, SLICE_MAX + 1)
            if len(found) > SLICE_MAX:
                raise _GiveUp
            return found
        probe = await self.slice(level, number, need + 1)
        return probe if len(probe) <= need else await self.inner(level, number, need)

    async def inner(self, level: int, number: int, need: int) -> list[Document]:
        """At least ``need`` of slice ``number`` (known to hold more), by its inner slices newest first."""
        width, inner_width = search.INFORM_SLICES[level][1], search.INFORM_SLICES[level + 1][1]
        ratio = width // inner_width
        first = number * ratio
        taken: list[Document] = []
        for inner in range(min(first + ratio - 1, self.top // inner_width), first - 1, -1):
            taken += await self.whole_or_inner(level + 1, inner, need - len(taken))
            if len(taken) >= need:
                return taken
        raise _GiveUp  # what the slice holds past ``top`` (a clock far ahead): read whole instead


async def newest_first(read: Read, query: Document, want: int, now: datetime) -> list[Document] | None:
    """At least ``want`` devices matching ``query`` (top-level equalities), every one informed after
    every matching device not returned (unsorted); None when the walk would read too much."""
    walk = _Walk(read, query, int(now.timestamp()) + CLOCK_SKEW)
    hour = walk.top // search.INFORM_SLICES[0][1]
    oldest = hour - HOURS_WALKED
    taken: list[Document] = []
    at_once = 1
    try:
        while len(taken) < want:
            if hour <= oldest:
                return None
            hours = range(hour, max(oldest, hour - at_once), -1)
            need = want - len(taken)
            probes = await asyncio.gather(*(walk.slice(0, number, need + 1) for number in hours))
            for number, probe in zip(hours, probes, strict=True):
                if len(taken) >= want:
                    break
                if len(probe) <= need:  # the whole hour
                    taken += probe
                else:
                    taken += await walk.inner(0, number, want - len(taken))
            hour = hours[-1] - 1
            at_once = min(at_once * 2, HOURS_AT_ONCE) if not taken else 1
    except _GiveUp:
        return None
    return taken
