"""The health poll job and what happens when a health read comes back.

Each run, online devices whose next health read is due get a ``get_parameter_values`` task for
their family's parameters (``checks.json``) under the first policy (shortest interval first) that
selects them, at most ``max_in_flight`` unanswered at once. They are found by the 5 s slice of
that moment (``health_due``: the last read plus the interval of the shortest policy selecting the
device), read slice by slice by equality: FerretDB 1.24 serves that from an index, where a range
over ``health_polled_at`` read the whole fleet every run. A device whose periodic Inform
is due within ``ride_window`` just waits for it (the task goes out in that session); the others
are woken by a connection request, ``concurrency`` at a time.

A read queued is noted in ``health_reads`` (``tasks/store/health_reads.py``), not on the device:
the device stays in its slice until the read's end moves it to its next one, and a slice read
again skips the devices whose read is in flight. A read that ended without its answer stored (its
process stopped first) is found there past its end, and the device is read again.

When the task finishes (``Dispatcher.final_hooks``), the answer is judged (pure, ``evaluate``),
kept in the device's bounded time series, summarised on the device (``health``, and the OLT /
PON identifiers the incident job groups by), and a change of status becomes a device event.

A read that fails (the device crash-loops, or cannot be reached) is ``unknown``: the summary says
so, and keeps the last definite read (ok / warn / critical) in ``health.last_definite``, which is
what the incident job judges: a failed read is no news, not a recovery.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cwmp.logtext import loggable
from schemas.tasks import GetParameterValuesTask, TaskRequest, TaskStatus
from tasks import search
from tasks.health.catalog import Catalog
from tasks.health.evaluate import HealthResult, Level, Reason, Thresholds, evaluate, summary_fields
from tasks.health.policies import Policy
from tasks.queue import TaskQueue, new_task_id
from tasks.records import TaskRecord
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import HEALTH_SCAN, SETTLE_SLICES, DeviceRepository, due_slice
from tasks.store.health import HealthRepository
from tasks.store.health_reads import HealthReadRepository
from tasks.store.tasks import OPEN

log = logging.getLogger("acs.health")
HEALTH_USER = "system:health"
Wake = Callable[[Document], Awaitable[bool]]
TOPOLOGY = ("olt_id", "pon_port")
LOOKBACK_SLICES = 120  # the very first run reads the last 10 minutes of due slices
SLICES_PER_RUN = 720  # a scan far behind (the job stopped for hours) catches up over runs
# A read still noted this long after its end ended without its answer stored: the expiry job ends a
# queued read within its 15 s interval of its end and the end's hook takes the note back at once.
LOST_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class PollLimits:
    concurrency: int = 20
    max_in_flight: int = 500
    ride_window: float = 300.0
    results_kept: int = 48
    default_interval: int = 300  # periodic inform interval of a device that never said
    # Reads queued by one run: 16 a second is a quarter more than 200,000 devices on a 6-hour policy
    # with 0.5% watched fall due at (about 12.6), which is what a catch-up gains a second; a run of
    # 160 took 2.4-3.1 ms a read at 200,000 devices on FerretDB 1.24 while each wrote its device, 0.9 ms
    # since the note of a read in flight moved to ``health_reads`` (docs/performance.md).
    max_per_run: int = 160


class HealthPoller:
    def __init__(
        self,
        queue: TaskQueue,
        devices: DeviceRepository,
        events: DeviceEventRepository,
        results: HealthRepository,
        policies: list[Policy],
        catalog: Catalog,
        thresholds: Thresholds,
        limits: PollLimits,
        clock: Callable[[], datetime],
        reads: HealthReadRepository,
        wake: Wake | None = None,
    ) -> None:
        self.queue = queue
        self.devices = devices
        self.reads = reads
        self.events = events
        self.results = results
        self.policies = policies
        self.catalog = catalog
        self.thresholds = thresholds
        self.limits = limits
        self.clock = clock
        self.wake = wake
        # Called with the (device, stored result) of the reads just stored (one, or the reads an expiry
        # run ended): the trends (tasks/trends.py).
        self.stored_hooks: list[Callable[[list[tuple[Document, Document]]], Awaitable[None]]] = []

    # -- the job -----------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Queue the reads that fell due since the last run, slice by slice (``health_due``).

        Each device carries the 5 s slice of its next read (``health_due``, written when a read is
        queued or answered, for a new device, and for one back from offline): one indexed equality
        per slice, from where the last run stopped, instead of a range over the fleet. A slice is
        passed once every device in it was handled and it has settled (``SETTLE_SLICES``: a write
        naming it may commit seconds after its ``now``); one that ``max_in_flight`` cut short, or not
        yet settled, is read again by the next run (the devices queued have moved out of it). A run
        queues at most ``max_per_run`` (a catch-up spreads over runs, each a short one).
        """
        now = self.clock()
        room = min(self.limits.max_in_flight - await self.queue.repository.count_open_by(HEALTH_USER),
                   self.limits.max_per_run)
        flight = {read["_id"]: read for read in await self.reads.in_flight()}
        lost = [read for read in flight.values() if read["until"] + LOST_AFTER <= now]
        for device_id in await self._read_lost_again(lost, now):
            del flight[device_id]
        now_slice = due_slice(now)
        start = await self.devices.scan_position(HEALTH_SCAN)
        start = now_slice - LOOKBACK_SLICES if start is None else min(start, now_slice)
        queued: list[Document] = []
        deferred = 0
        done = start - 1
        for due in range(start, min(now_slice, start + SLICES_PER_RUN - 1) + 1):
            if room - len(queued) <= 0:
                break
            # A device whose read is in flight: that read's end moves it (also one back from offline
            # meanwhile, which ``clear_offline`` put in the slice of its return).
            found = [device for device in await self.devices.in_health_slice(due) if device["_id"] not in flight]
            picked: list[tuple[Document, Policy]] = []
            for device in found:
                policy = self._policy_for(device, now)
                if policy is not None:
                    picked.append((device, policy))
            take = picked[: room - len(queued)]
            queued += await self._queue_all(take, now, due)
            chosen = {device["_id"] for device, _ in picked}
            deferred += await self._defer_the_rest([device for device in found if device["_id"] not in chosen], now)
            if len(take) < len(picked):
                break  # out of room: the rest of this slice waits for the next run
            if due < now_slice - SETTLE_SLICES:
                done = due  # a slice not yet settled may still gain devices: read again next run
        if done >= start:
            await self.devices.set_scan_position(HEALTH_SCAN, done + 1)
        to_wake = [device for device in queued if not self._informs_soon(device, now)]
        woken = await self._wake_all(to_wake)
        return {"queued": len(queued), "woken": woken, "riding": len(queued) - len(to_wake), "deferred": deferred}

    async def _read_lost_again(self, lost: list[Document], now: datetime) -> list[str]:
        """Reads noted in flight ``LOST_AFTER`` past their end; the devices whose notes went. A read
        whose task is still open is left (a session holds it). For the others the end's hook did not
        finish: a device still in the slice its read was queued from is due again now, one that moved
        on had its answer stored (only the note's removal was lost)."""
        again: list[tuple[str, Mapping[str, Any]]] = []
        ended: list[Document] = []
        for read in lost:
            task = await self.queue.repository.get(read["task_id"])
            if task is not None and task["status"] in OPEN:
                continue
            device = await self.devices.get(read["_id"])
            if device is not None and device.get("health_due") == read["slice"]:
                log.warning("health read %s of %s ended without its answer stored: read again",
                            read["task_id"], loggable(read["_id"]))
                again.append((read["_id"], {"health_due": due_slice(now)}))
            ended.append(read)
        await self.devices.set_fields_many(again)
        await asyncio.gather(*(self.reads.end(read["_id"], read["task_id"]) for read in ended))
        return [read["_id"] for read in ended]

    def _policy_for(self, device: Document, now: datetime) -> Policy | None:
        """The policy (shortest interval first) a device in a due slice is read under now, if any."""
        if device.get("presence") != "online":
            return None  # read again when it comes back (``DeviceRepository.clear_offline``)
        until = device.get("health_task_until")
        if until is not None and until > now:
            # A read in flight noted on the device (before ``health_reads``): ``_defer_the_rest``
            # moves it after that read's end.
            return None
        return next((policy for policy in self.policies if policy.device_filter.matches(device)), None)

    def _policy_name(self, device: Document) -> str | None:
        """The policy a read counts under: the first selecting the device (presence aside) as its
        answer is stored, the one it was queued under unless its tags or model changed meanwhile."""
        chosen = next((policy for policy in self.policies
                       if dataclasses.replace(policy.device_filter, online=None).matches(device)), None)
        return device.get("health_policy") if chosen is None else chosen.name

    async def _defer_the_rest(self, passed: list[Document], now: datetime) -> int:
        """Online devices of a due slice that no policy picked move out of it: a read in flight to
        its end, a device no policy selects to a check after the longest interval (a tag or a version
        may have changed by then). Offline devices stay: their return brings them back."""
        moves: list[tuple[str, Mapping[str, Any]]] = []
        longest = max((policy.interval for policy in self.policies), default=self.limits.default_interval)
        for device in passed:
            if device.get("presence") != "online":
                continue
            until = device.get("health_task_until")
            if until is not None and until > now:
                moves.append((device["_id"], {"health_due": due_slice(until) + 1}))
            elif not any(policy.device_filter.matches(device) for policy in self.policies):
                moves.append((device["_id"], {"health_due": due_slice(now + timedelta(seconds=longest))}))
        await self.devices.set_fields_many(moves)
        return len(moves)

    def _next_due(self, device: Document, polled_at: datetime, now: datetime) -> int:
        """The slice of a device's next read: its last read plus the shortest interval of the policies
        that select it (presence aside: it may be offline now), never before ``now``."""
        intervals = [policy.interval for policy in self.policies
                     if dataclasses.replace(policy.device_filter, online=None).matches(device)]
        longest = max((policy.interval for policy in self.policies), default=self.limits.default_interval)
        interval = min(intervals, default=longest)
        return due_slice(max(polled_at + timedelta(seconds=interval), now))

    async def _queue_all(self, picked: list[tuple[Document, Policy]], now: datetime, due: int) -> list[Document]:
        """One read per device of slice ``due``, under its policy: each noted in ``health_reads``,
        then the tasks, each in capped commands. The devices are not written: each stays in the
        slice until its read's end moves it, and a slice read again skips it meanwhile. A device
        write updates every index of ``devices`` on FerretDB 1.24 (1.6-1.8 ms a device at 200,000
        devices, 72% of a run). A device no read can be made of (nothing in its family's checks)
        moves on by one update per distinct next slice, by the slice's equality and the devices' ids."""
        requests: list[tuple[str, TaskRequest]] = []
        queued: list[tuple[Document, Policy, int]] = []
        changes: list[tuple[str, Mapping[str, Any]]] = []
        for device, policy in picked:
            names = self.catalog.for_device(device).names(policy.checks)
            if not names:
                # nothing this family can be read for: checked again after the policy's interval
                changes.append((device["_id"], {"health_due": self._next_due(device, now, now)}))
                continue
            # The read is worth little once the next one is due: expire it by then.
            lifetime = max(60, min(policy.interval, int(self.limits.ride_window + self._interval(device) * 2)))
            request = GetParameterValuesTask(kind="get_parameter_values", names=names, expires_in=lifetime)
            requests.append((device["_id"], request))
            queued.append((device, policy, lifetime))
        # The device's session finds the read by querying its tasks (``TaskRepository.open_for_device``):
        # nothing on the device document has to move for it, and a concurrent device write that
        # FerretDB lets win cannot hide the read. The notes first: a task with no note could be queued
        # again from a slice read again; a note with no task (the process stopped in between) is a
        # read lost, made again (``_read_lost_again``).
        task_ids = [new_task_id() for _ in requests]
        await self.reads.add_many(
            # the read's end (its task expires a few ms later: created after ``now``)
            [(device["_id"], task_id, due, now + timedelta(seconds=lifetime))
             for (device, _, lifetime), task_id in zip(queued, task_ids, strict=True)]
        )
        await self.queue.create_many(requests, HEALTH_USER, task_ids)
        sharing: dict[tuple[tuple[str, Any], ...], list[str]] = {}
        for device_id, fields in changes:
            sharing.setdefault(tuple(sorted(fields.items())), []).append(device_id)
        for fields_shared, device_ids in sharing.items():
            await self.devices.set_fields_in_health_slice(due, device_ids, dict(fields_shared))
        return [device for device, _, _ in queued]

    def _interval(self, device: Document) -> int:
        return int(device.get("periodic_inform_interval") or self.limits.default_interval)

    def _informs_soon(self, device: Document, now: datetime) -> bool:
        last = device.get("last_inform")
        if last is None:
            return False
        next_inform: datetime = last + timedelta(seconds=self._interval(device))
        return (next_inform - now).total_seconds() <= self.limits.ride_window

    async def _wake_all(self, devices: list[Document]) -> int:
        if self.wake is None or not devices:
            return 0
        slots = asyncio.Semaphore(self.limits.concurrency)
        wake = self.wake

        async def one(device: Document) -> bool:
            async with slots:
                try:
                    return await wake(device)
                except Exception:  # one unreachable device must not stop the others
                    log.exception("connection request to %s failed", device["_id"])
                    return False

        return sum(await asyncio.gather(*(one(device) for device in devices)))

    # -- the answer ----------------------------------------------------------------------------------

    async def on_task_final(self, task: TaskRecord) -> None:
        if task.get("created_by") != HEALTH_USER:
            if task["status"] == TaskStatus.FAILED.value:
                await self.events.record(
                    task["device_id"],
                    device_events.TASK_FAILED,
                    task.get("finished_at") or self.clock(),
                    {"task_id": task["_id"], "kind": task["kind"], "reason": task.get("reason")},
                )
            return
        device = await self.devices.get(task["device_id"])
        if device is not None:
            now = self.clock()
            result = await self._judge(task, device, now)
            await self._store(device, task, result, now)
        # Its note goes with the other ends of the next moment: the device has moved on by now.
        self.reads.end_later(task["device_id"], task["_id"])

    async def _judge(self, task: TaskRecord, device: Document, now: datetime) -> HealthResult:
        if task["status"] != TaskStatus.DONE.value:
            why = task.get("reason") or (task.get("fault") or {}).get("string") or task["status"]
            return HealthResult(
                Level.UNKNOWN, [Reason("device", Level.UNKNOWN, f"health read {task['status']}: {why}", "read_failed",
                                       {"status": task["status"], "why": why})]
            )
        profile = self.catalog.for_device(device)
        readings = profile.readings((task.get("result") or {}).get("values") or [])
        reboots = await self.events.reboots_since(device["_id"], now - timedelta(hours=24))
        return evaluate(readings, profile, self.thresholds, reboots)

    async def on_tasks_final(self, tasks: list[TaskRecord]) -> None:
        """``on_task_final`` for tasks ended together (``TaskQueue.final_hooks_many``: the health reads
        one expiry run ended). Each read's device is read and the read judged, then the results, trend
        hours, device updates and health events of all of them are written in capped commands (one read
        cost 5 commands one after the other, besides its end). A device's second read in ``tasks`` (if
        any) is handled after, by itself, on the device as the first left it."""
        firsts: dict[str, TaskRecord] = {}
        later: list[TaskRecord] = []
        for task in tasks:
            if task.get("created_by") != HEALTH_USER or task["device_id"] in firsts:
                later.append(task)
            else:
                firsts[task["device_id"]] = task
        now = self.clock()
        stored: list[_Stored] = []
        for task in firsts.values():
            device = await self.devices.get(task["device_id"])
            if device is not None:
                stored.append(self._stored(device, task, await self._judge(task, device, now), now))
        await self._write_many(stored, now)
        # An expired read's device is due again now: its note goes before the next poll run reads it.
        await asyncio.gather(*(self.reads.end(task["device_id"], task["_id"]) for task in firsts.values()))
        for task in later:
            await self.on_task_final(task)

    def _stored(self, device: Document, task: TaskRecord, result: HealthResult, now: datetime) -> _Stored:
        """What storing one judged read writes (pure)."""
        device_id = device["_id"]
        reasons = [reason.as_document() for reason in result.reasons]
        seq = int(device.get("health_seq") or 0)
        policy = self._policy_name(device)
        document = {
            "at": now,
            "status": result.status,
            "reasons": reasons,
            "values": result.values,
            "task_id": task["_id"],
            "policy": policy,
        }
        previous = device.get("health") or {}
        polled_at = task.get("created_at") or now  # when the poll queued it
        # The next read counts from this one, under the policies that select the device now. A read
        # that expired was never reached (the device came after its end: a session claimed it too
        # late): no news about its health, so it is read again at once (the new read rides the
        # device's next Inform), not a policy interval later.
        expired = task["status"] == TaskStatus.EXPIRED.value
        due = due_slice(now) if expired else self._next_due(device, polled_at, now)
        fields: Document = {
            **summary_fields(previous, result, now),
            "health_seq": seq + 1,
            "health_polled_at": polled_at,
            "health_policy": policy,
            "health_task_until": None,  # a read in flight noted on the device (before ``health_reads``)
            "health_due": due,
        }
        fields.update({key: result.values[key] for key in TOPOLOGY if result.values.get(key)})
        if "olt_id" in fields and fields["olt_id"] != device.get("olt_id"):
            # The OLT-named slices of the device's last inform move with it (``tasks/search.py``).
            fields.update(search.olt_inform_slices(device_id, fields["olt_id"], device.get("last_inform")))
        event = None
        if previous.get("status") != result.status:
            event = {"from": previous.get("status"), "to": result.status,
                     "reasons": [reason["message"] for reason in reasons]}
        return _Stored(device, seq, document, fields, event)

    async def _store(self, device: Document, task: TaskRecord, result: HealthResult, now: datetime) -> None:
        stored = self._stored(device, task, result, now)
        device_id = device["_id"]
        await self.results.record(device_id, stored.seq, self.limits.results_kept, stored.document)
        await self._stored_hooks([stored])
        await self.devices.set_fields(device_id, stored.fields)
        if stored.event is not None:
            await self.events.record(device_id, device_events.HEALTH, now, stored.event)

    async def _write_many(self, stored: list[_Stored], now: datetime) -> None:
        if not stored:
            return
        await self.results.record_many([(read.device["_id"], read.seq, read.document) for read in stored],
                                       self.limits.results_kept)
        await self._stored_hooks(stored)
        plain = [(read.device["_id"], read.fields) for read in stored if "olt_id" not in read.fields]
        await self.devices.set_fields_many(plain)
        for read in stored:
            if "olt_id" in read.fields:  # a new OLT: the process's note of it too (``set_fields``)
                await self.devices.set_fields(read.device["_id"], read.fields)
        changed = [(read.device["_id"], now, read.event) for read in stored if read.event is not None]
        if changed:
            await self.events.record_many(device_events.HEALTH, changed, noticed=now)

    async def _stored_hooks(self, stored: list[_Stored]) -> None:
        for hook in self.stored_hooks:
            try:
                await hook([(read.device, read.document) for read in stored])
            except Exception:  # a trend point lost must not lose the health summary below
                log.exception("health result hook failed for %s",
                              ", ".join(loggable(read.device["_id"]) for read in stored[:5]))


@dataclass(frozen=True)
class _Stored:
    """One judged read as stored: its slot's sequence, the ``health_results`` entry, the device's
    update, and the ``health`` event's detail when the status changed (None otherwise)."""

    device: Document
    seq: int
    document: Document
    fields: Document
    event: Document | None
