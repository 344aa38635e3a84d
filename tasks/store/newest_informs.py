"""The device list sorted by last inform, newest first, read slice by slice (issue 13 item 3).

FerretDB 1.24 serves no sort from an index and decodes every document it reads whole (about
0.45 ms each on the 2-core box), so the list of one OLT sorted by last inform read and sorted all
512 of its devices for each page (253 / 313 ms p50 / p99 at 200,000 devices). Each device carries
its last inform's slices of time at three widths (``last_inform_slices``: the hour, the ten
minutes and the minute, ``tasks/search.py``), written in the Inform's own ``$set`` beside
``last_inform``. A page reads the slices newest first, each one indexed equality beside the
filter's:

- a slice is first probed by its *sample*: its devices of one ``page_group`` (1/64 of the fleet).
  A sample holding a match says the slice is large (an OLT's 512 devices informing within one hour
  put about 8 in its sample): its inner slices are walked the same way, and minutes read whole;
- a slice whose sample is empty is read with a limit of ``PROBE_MAX`` plus one (or what the page
  still needs, when fewer): fewer came back, so that is the whole slice, taken; more, so its inner
  slices are walked;
- empty hours (a fleet, or an OLT, silent for a while) cost two commands each, read a few at once.

A list of one OLT (``olt_id`` among the filter's equalities) reads the OLT-named slices once every
device has them (``olt_inform_slices``, the search fields' version 5): ``{olt_inform_slices:
"OLT-0195|t2994200"}`` in place of ``{olt_id: "OLT-0195", last_inform_slices: "t2994200"}``, its
sample ``OLT-0195|s|t2994200`` in place of ``page_group: 0`` beside them. Each read is then one
GIN posting list holding exactly what it asks for: with two equalities PostgreSQL chose between the
OLT's index (filtering its 512 rows) and the slice's (a posting list of up to the whole fleet, 137,736
entries for a ten-minute slice at 200,000 devices, 36 ms), and the choice turned on the day's
statistics (docs/performance.md, tenth step).

Why probe by samples: FerretDB 1.24 sends no ``LIMIT`` to PostgreSQL when a query has a filter, so
PostgreSQL builds and sends every row a slice matches whatever the limit (FerretDB decodes up to the
limit and discards the rest): reading the hour holding an OLT's 512 devices with a limit of 52 cost
43-73 ms (512 heap rows converted to text and sent), its sample 1-2 ms (``EXPLAIN ANALYZE``: a
bitmap AND of the OLT's and the group's GIN posting lists, 7 heap rows; docs/performance.md).

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
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from tasks import search
from tasks.store.db import Document

Read = Callable[[Document, int], Awaitable[list[Document]]]  # (query, limit) -> documents

HOURS_WALKED = 48  # past them the caller reads the match set whole
HOURS_AT_ONCE = 8  # empty hours read at once, at most
READS_MAX = 160  # commands one page's walk sends at most (an empty hour costs two)
PROBE_MAX = 8  # a slice whose sample is empty is read with a limit of this plus one (or the page's need, when fewer)
SLICE_MAX = 1000  # a minute holding more matches than this: the caller reads whole (and refuses to sort)
CLOCK_SKEW = 300  # seconds: the first slice read holds this far past this process's clock
SAMPLE_FIELD, SAMPLE_VALUE = "page_group", search.SAMPLE_GROUP  # a slice's sample: its devices of one group (1/64)
FINEST = len(search.INFORM_SLICES) - 1


class _GiveUp(Exception):
    pass


class _Walk:
    def __init__(self, read: Read, query: Document, top: int, by_olt: bool) -> None:
        self.read = read
        self.top = top  # the newest second read (epoch)
        self.reads = 0
        self.samples = SAMPLE_FIELD not in query  # a filter by group has no smaller sample
        self.olt: str | None = None
        if by_olt and isinstance(query.get("olt_id"), str):
            self.olt = query["olt_id"]  # named by the slices' tokens
            query = {field: value for field, value in query.items() if field != "olt_id"}
        self.query = query

    async def slice(self, level: int, number: int, limit: int, *, sample: bool = False) -> list[Document]:
        self.reads += 1
        if self.reads > READS_MAX:
            raise _GiveUp
        if self.olt is not None:  # one token: that OLT's devices of the slice (or of its sample)
            return await self.read(
                {**self.query, search.OLT_SLICES_FIELD: search.olt_slice(self.olt, level, number, sample=sample)},
                limit)
        name = search.INFORM_SLICES[level][0]
        query = {**self.query, search.INFORM_SLICES_FIELD: f"{name}{number}"}
        return await self.read({**query, SAMPLE_FIELD: SAMPLE_VALUE} if sample else query, limit)

    async def newest(self, level: int, numbers: Sequence[int], need: int) -> list[Document]:
        """At least ``need`` devices of the slices ``numbers`` (newest first) of one level, taking whole
        slices newest first, or all they hold up to ``top`` when that is fewer."""
        if level == FINEST:  # minutes: read whole, one after another
            taken: list[Document] = []
            for number in numbers:
                found = await self.slice(level, number, SLICE_MAX + 1)
                if len(found) > SLICE_MAX:
                    raise _GiveUp
                taken += found
                if len(taken) >= need:
                    break
            return taken
        large = [bool(found) for found in await asyncio.gather(
            *(self.slice(level, number, 1, sample=True) for number in numbers))] if self.samples else [False] * len(
            numbers)
        taken = []
        at = 0
        while at < len(numbers) and len(taken) < need:
            if large[at]:
                taken += await self.inner(level, numbers[at], need - len(taken))
                at += 1
                continue
            run = numbers[at:large.index(True, at) if True in large[at:] else len(numbers)]
            cap = min(need - len(taken), PROBE_MAX)
            probes = await asyncio.gather(*(self.slice(level, number, cap + 1) for number in run))
            for number, probe in zip(run, probes, strict=True):
                if len(taken) >= need:
                    break
                if len(probe) <= cap:  # the whole slice
                    taken += probe
                else:
                    taken += await self.inner(level, number, need - len(taken))
            at += len(run)
        return taken

    async def inner(self, level: int, number: int, need: int) -> list[Document]:
        """At least ``need`` of slice ``number`` by its inner slices newest first (up to ``top``), or all
        it holds when that is fewer."""
        width, inner_width = search.INFORM_SLICES[level][1], search.INFORM_SLICES[level + 1][1]
        first = number * (width // inner_width)
        inner = range(min(first + width // inner_width - 1, self.top // inner_width), first - 1, -1)
        return await self.newest(level + 1, inner, need)


async def newest_first(
    read: Read, query: Document, want: int, now: datetime, *, by_olt: bool = False
) -> list[Document] | None:
    """At least ``want`` devices matching ``query`` (top-level equalities), every one informed after
    every matching device not returned (unsorted); None when the walk would read too much.
    ``by_olt``: every device has ``olt_inform_slices``, so a query naming ``olt_id`` reads those
    (the caller checks the devices read are that OLT's: a token left by a move is not)."""
    walk = _Walk(read, query, int(now.timestamp()) + CLOCK_SKEW, by_olt)
    hour = walk.top // search.INFORM_SLICES[0][1]
    oldest = hour - HOURS_WALKED
    taken: list[Document] = []
    at_once = 1
    try:
        while len(taken) < want:
            if hour <= oldest:
                return None
            hours = range(hour, max(oldest, hour - at_once), -1)
            taken += await walk.newest(0, hours, want - len(taken))
            hour = hours[-1] - 1
            # Empty hours: 1, 2, 4, then 8 at once; of one OLT 1, then 8 (its empty slices are empty
            # posting lists, a few ms each: the round trips are what a wave costs).
            grown = HOURS_AT_ONCE if walk.olt is not None else min(at_once * 2, HOURS_AT_ONCE)
            at_once = grown if not taken else 1
    except _GiveUp:
        return None
    return taken
