"""The devices a detection run judges, read by what changed rather than by reading every affected one.

Reading every offline and every critical device each run (``{presence: offline}``,
``{health_definite: critical}``) is 8,600-11,000 devices at 200,000, 12-14 s of a 30 s interval on
FerretDB 1.24, which decodes every document it reads (docs/performance.md). The decisions need less:

- opening and growing an incident count the devices *freshly* affected (gone offline or critical
  within the window): each such change is a ``device_events`` event (``offline`` when the offline
  job marks it, ``health`` at every change of the health status, which every change of the last
  definite status is), found by the minute it was noticed (``noticed_in``: one indexed equality per
  type and minute of the window; a minute two minutes past is read once and kept, so a run reads
  the last few minutes' events, about 15 small reads). Only a ``health`` event *to* ``critical``
  can make its device freshly affected: the others (a first ``ok``, which every device's first read
  writes, a recovery, ``warn``, ``unknown``, which keeps the last definite status) name a device to
  read only if the job follows it anyway (at 5,000 devices a bring-up's first reads named every
  device, and the runs spent 2-4 s reading them: docs/performance.md);
- following an open incident (how many of its members are affected now, resolving it) and following
  one resolved by hand need its members' state now: kept here, per process, as each member was last
  read, and read again when an event (``offline``, ``online``, ``health``) was noticed for it since,
  or when its copy is ``REFRESH_AFTER`` old (plus up to as much again by device, so refreshes
  spread);
- devices that failed tasks are read as before (``tasks/incidents/job.py``).

So a run reads the window's events, the devices they name, and the members it has no current copy
of. The window's devices are read within a time budget (``acs serve``: 1 s of the 30 s interval):
past it (thousands of devices changed within one interval: a mass outage, the offline job's
catch-up after a stop), the rest are read by the next runs (their events stay new until read), so a
decision over them lags by as many runs as the backlog needs; the members are always read.

What is not read: devices affected since before the window that are in no open incident; they
only raised a group's size as a lower bound, which the census (and the exact count of every group
near a decision) gives anyway.

A device is judged offline by ``presence`` alone (its ``offline_after`` is dropped): an Inform
moves that deadline without an event, so an old copy's deadline says nothing, and a device read now
is judged the same way for the same judgement from run to run. A device past its deadline counts
offline once the offline job marked it (within that job's interval; reading everything judged a
critical or failing one offline by its deadline up to that much earlier).

The copies are dropped whenever this process's last run is more than the window minus a minute
ago (a lease held by another process, a stalled loop): the events it would have missed are then out
of the window, so its first run after that reads every member again (one read by id each).
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tasks.health.evaluate import Level
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository

CHANGES = (device_events.OFFLINE, device_events.HEALTH, device_events.ONLINE)
CRITICAL = Level.CRITICAL.label  # the health status that makes a device affected (``grouping.facts_of``)
REFRESH_AFTER = timedelta(minutes=5)
SLACK = timedelta(minutes=1)  # clock skew between the processes that note events and this one
CLOSED = 2 * SLACK  # a minute this long ago gains no more events
READS = 20  # devices read by id this many at a time
CHUNK = 40  # devices read by id between two looks at the budget (two waves of READS)
EVENT_READS = 8  # minute slices read this many at a time


@dataclass
class _Copy:
    document: Document
    read_at: datetime


@dataclass(frozen=True)
class Reads:
    """What one run read."""

    events: int = 0  # events of the window (each minute's offline, health and online events)
    devices: int = 0  # devices read by id
    kept: int = 0  # devices judged by this process's copy
    deferred: int = 0  # devices the window's events name, left to the next runs by the budget
    slices: int = 0  # (type, minute) slices of events read from the database (the closed ones are kept)


class AffectedReader:
    """Per process: the window's changes, and a copy of each device the job follows."""

    def __init__(self, devices: DeviceRepository, events: DeviceEventRepository, projection: dict[str, int],
                 budget_seconds: float = math.inf, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.devices = devices
        self.budget_seconds = budget_seconds  # for the window's devices; the members are always read
        self.monotonic = monotonic
        self.events = events
        self.projection = projection
        self._copies: dict[str, _Copy] = {}
        self._seen: set[str] = set()  # the event ids the last run saw
        self._last_run: datetime | None = None
        self._closed: dict[tuple[str, str], list[Document]] = {}  # (type, minute) -> its events, once closed
        self._slices_read = 0
        self.last = Reads()

    async def read(self, now: datetime, window: timedelta, follow: Iterable[str]) -> list[Document]:
        """The devices to judge: those the window's events name (read now), and ``follow`` (the members
        of open incidents and of those resolved by hand, the devices that failed tasks)."""
        if self._last_run is None or now - self._last_run > window - SLACK:
            self._copies.clear()
            self._seen.clear()
            self._closed.clear()
        self._slices_read = 0
        self._last_run = now
        began = self.monotonic()
        events = await self._changes(now, window)
        changed = {str(event["device_id"]) for event in events if str(event["_id"]) not in self._seen}
        affecting = {str(event["device_id"]) for event in events if _may_affect(event)}
        followed = set(follow)
        copies = {device_id: copy for device_id, copy in self._copies.items()
                  if device_id in affecting | followed and device_id not in changed
                  and not _old(device_id, copy, now)}
        kept = len(copies)
        # The devices followed first, whatever they cost (a member not read would count as recovered);
        # then the window's, within the budget: the rest are read by the next runs (their events stay new).
        await self._read_into(copies, sorted(followed - copies.keys()), now, math.inf)
        unread = await self._read_into(copies, sorted(affecting - copies.keys()), now,
                                       self.budget_seconds - (self.monotonic() - began))
        self._seen = {str(event["_id"]) for event in events if str(event["device_id"]) not in unread}
        self._copies = copies
        self.last = Reads(len(events), len(copies) - kept, kept, len(unread), self._slices_read)
        return [_by_presence(copy.document) for copy in copies.values()]

    async def _read_into(self, copies: dict[str, _Copy], device_ids: list[str], now: datetime,
                         budget_seconds: float) -> set[str]:
        """Read ``device_ids`` by id, ``CHUNK`` at a time, until the budget is spent (one chunk at least);
        the ids left unread."""
        deadline = self.monotonic() + budget_seconds
        slots = asyncio.Semaphore(READS)

        async def one(device_id: str) -> Document | None:
            async with slots:
                return await self.devices.get(device_id, self.projection)

        for start in range(0, len(device_ids), CHUNK):
            if start and self.monotonic() >= deadline:
                return set(device_ids[start:])
            chunk = device_ids[start:start + CHUNK]
            for device in await asyncio.gather(*(one(device_id) for device_id in chunk)):
                if device is not None:
                    copies[str(device["_id"])] = _Copy(device, now)
        return set()

    async def _changes(self, now: datetime, window: timedelta) -> list[Document]:
        """Every offline, health and online event noticed from the window's first minute to now."""
        first, last = now - window - SLACK, now + SLACK
        minutes = []
        moment = first
        while moment <= last:
            minutes.append(device_events.minute_of(moment))
            moment += timedelta(minutes=1)
        # A minute CLOSED ago gains no event (each is noticed at its writer's clock, written within
        # seconds): read once, kept. Only the last few minutes are read again each run.
        closed = device_events.minute_of(now - CLOSED)
        self._closed = {key: found for key, found in self._closed.items() if key[1] >= minutes[0]}
        slots = asyncio.Semaphore(EVENT_READS)

        async def one(event_type: str, minute: str) -> list[Document]:
            kept = self._closed.get((event_type, minute))
            if kept is not None:
                return kept
            async with slots:
                found = [{**event, "type": event_type} for event in await self.events.noticed_in(event_type, minute)]
            self._slices_read += 1
            if minute < closed:
                self._closed[(event_type, minute)] = found
            return found

        reads = await asyncio.gather(*(one(event_type, minute) for minute in minutes for event_type in CHANGES))
        return [event for read in reads for event in read]


def _may_affect(event: Document) -> bool:
    """Whether an event may make its device freshly affected (offline, or critical by its last
    definite read); a ``health`` event stored without its new status counts, to be safe."""
    if event["type"] == device_events.HEALTH:
        return bool((event.get("detail") or {}).get("to", CRITICAL) == CRITICAL)
    return bool(event["type"] == device_events.OFFLINE)


def _old(device_id: str, copy: _Copy, now: datetime) -> bool:
    spread = REFRESH_AFTER * (zlib.crc32(device_id.encode()) % 1000 / 1000)
    return now - copy.read_at >= REFRESH_AFTER + spread


def _by_presence(device: Document) -> Document:
    """A device judged offline by ``presence`` alone: its copy's deadline may have moved since it was
    read, so no copy is judged by it, nor (for the same judgement run after run) a device read now."""
    if device.get("presence") == "offline":
        return device
    return {key: value for key, value in device.items() if key != "offline_after"}
