"""Offline detection: a device that missed its periodic inform by the margin is marked offline.

``offline_after`` is set by every Inform (``DeviceRegistry``, interval x factor + grace, with the
device's own PeriodicInformInterval: reported, read, or set by a SetParameterValues it applied,
which also moves the deadline out at once). This
scheduled job moves devices past it from ``presence: online`` to ``offline`` and records the
transition (at the moment the deadline passed, not when the job noticed); the next Inform moves
it back (``DeviceRegistry._record_events``). The job runs under its lease, so one process marks
each transition; the update's filter re-checks the deadline so a late Inform wins.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from bson import ObjectId

from tasks import partitions, search
from tasks.registry import TransitionHook
from tasks.store import device_events
from tasks.store.db import Document, capped
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import OFFLINE_SCAN, DeviceRepository, OfflineMark
from tasks.store.jobs import JobRepository

BATCH = 2000
MARK_DEVICES = 100  # ids in one statement of a bulk mark (devices of one slice sharing a deadline)
OFFLINE_COUNT = "count_offline"  # its job_state: the pass in progress and the last complete count


class OfflineDetector:
    """Job ``detect_offline``. ``budget_seconds``: a run marks devices until it is spent (one device
    at least, so a backlog always drains) and saves the slice of the first device it did not mark,
    so the next run, in whichever process holds the lease, goes on from there. After a long stop
    every device is overdue at once: one unbounded run marked the whole fleet of 200,000 offline in
    450 s (docs/performance.md), holding the database and the job's lease that long."""

    def __init__(
        self,
        devices: DeviceRepository,
        events: DeviceEventRepository,
        clock: Callable[[], datetime],
        hooks: list[TransitionHook] | None = None,
        budget_seconds: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = devices
        self.events = events
        self.clock = clock
        self.hooks = hooks if hooks is not None else []
        self.budget_seconds = budget_seconds
        self.monotonic = monotonic

    async def run(self) -> int:
        """Mark the overdue devices offline (within the budget); returns how many went offline.

        In bulk: the overdue devices of one slice are marked by commands of at most MAX_BATCH
        statements (one per deadline, ``offline_marks``), their events inserted likewise; the budget
        is looked at before each command. One update and one event insert a device cost about 8 ms a
        mark at 20,000 devices, 10 ms at 200,000 under load (docs/performance.md), so that a mass
        outage of 10,000 devices took minutes to be marked."""
        now = self.clock()
        deadline = None if self.budget_seconds is None else self.monotonic() + self.budget_seconds
        run = str(ObjectId())  # written with each mark: tells this run's marks from any other's
        marked = 0
        while True:
            overdue, next_slice = await self.devices.overdue(now, BATCH)
            batch = 0
            for command in offline_commands(overdue):
                if deadline is not None and marked + batch and self.monotonic() >= deadline:
                    # Out of time: the next run reads this command's slice again (those marked since
                    # are offline now, so it skips them).
                    resume = command[0].due
                    await self.devices.set_scan_position(
                        OFFLINE_SCAN, resume if next_slice is None else min(resume, next_slice))
                    return marked + batch
                batch += await self._mark(command, now, run)
            marked += batch
            if next_slice is not None:
                await self.devices.set_scan_position(OFFLINE_SCAN, next_slice)
            if len(overdue) < BATCH or batch == 0:
                return marked

    async def _mark(self, command: list[OfflineMark], now: datetime, run: str) -> int:
        done = set(await self.devices.mark_offline(command, now, run))
        went = [(device_id, mark.since, {"detected_at": now})
                for mark in command for device_id in mark.device_ids if device_id in done]
        if went:
            # noticed: its own minute, however long the run (incident job)
            await self.events.record_many(device_events.OFFLINE, went, noticed=self.clock())
        for device_id, _since, _detail in went:
            for hook in self.hooks:
                hook(device_id, device_events.OFFLINE)
        return len(went)


def offline_commands(overdue: list[Document]) -> Iterator[list[OfflineMark]]:
    """The marks of ``overdue`` (in the order of their slices), as commands: one slice each, of at
    most MAX_BATCH statements, a statement naming the devices of one deadline (at most
    MARK_DEVICES). A command never spans slices, so a run out of time goes on from the slice of
    the first command it did not send."""
    for due, in_slice in itertools.groupby(overdue, key=lambda device: int(device["offline_due"])):
        by_deadline: dict[datetime, list[str]] = {}
        for device in in_slice:
            by_deadline.setdefault(device["offline_after"], []).append(str(device["_id"]))
        marks = [OfflineMark(due, since, tuple(ids[start:start + MARK_DEVICES]))
                 for since, ids in by_deadline.items() for start in range(0, len(ids), MARK_DEVICES)]
        yield from capped(marks)


class OfflineCount:
    """Job ``count_offline`` (the ``acs_devices_offline`` gauge): the devices marked offline, counted
    ``page_group`` by ``page_group`` (``{presence: offline, page_group: g}``, one indexed equality
    each), a run reading groups until its budget is spent and keeping its position and the count so
    far in ``job_state``, so the next run, in whichever process holds the lease, goes on. The count
    is published when a pass ends.

    FerretDB 1.24 decodes every document a count counts: one count of the whole fleet's offline
    devices took 23.5 s at 200,000 devices after a long stop (the offline job had marked most of
    them offline), every 60 s. With the usual 1% offline a pass is one run (64 reads of about 30
    devices); with most of the fleet offline a pass spans runs, and the gauge shows the last
    complete pass."""

    def __init__(
        self, devices: DeviceRepository, jobs: JobRepository, budget_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = devices
        self.jobs = jobs
        self.budget_seconds = budget_seconds
        self.monotonic = monotonic

    async def last(self) -> int | None:
        """The last complete pass's count (a process starting shows it at once), None before any."""
        offline = (await self.jobs.state(OFFLINE_COUNT) or {}).get("offline")
        return None if offline is None else int(offline)

    async def run(self) -> dict[str, Any]:
        state = await self.jobs.state(OFFLINE_COUNT) or {}
        counted = int(state.get("counted") or 0)
        if "bucket" in state:
            position, step = int(state["bucket"]), int(state.get("step") or search.GROUP_SIZE)
        else:  # a pass saved by a version that kept its position in groups
            position, step = int(state.get("next") or 0) * search.GROUP_SIZE, search.GROUP_SIZE
        found = [0]

        def count(_device: Any) -> None:
            found[0] += 1

        # By group, or by bucket once they are dense (every device offline after a long stop: a
        # group's count read 3,100 devices, 3.1-3.6 s a run against its 3 s budget): the partitions'
        # own rule (tasks/partitions.py), one group or bucket a run at least, so every pass ends.
        stop = await partitions.read_partitions(self.devices, position, step, ("_id",), self.budget_seconds, count,
                                                self.monotonic, match={"presence": "offline"})
        counted += found[0]
        if not stop.complete:
            await self.jobs.save_state(OFFLINE_COUNT, {"bucket": stop.position, "step": stop.step, "counted": counted})
            left = {"groups_left": (search.BUCKETS - stop.position) // search.GROUP_SIZE}
            return left if stop.step == search.GROUP_SIZE else {**left, "buckets_left": stop.left(1)}
        next_step = 1 if partitions.dense(counted // search.GROUPS) else search.GROUP_SIZE
        await self.jobs.save_state(OFFLINE_COUNT, {"bucket": 0, "step": next_step, "counted": 0, "offline": counted})
        return {"offline": counted}
