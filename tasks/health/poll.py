"""The health poll job and what happens when a health read comes back.

Each run, per policy (shortest interval first), online devices whose last health read is older
than the policy's interval get a ``get_parameter_values`` task for their family's parameters
(``checks.json``), at most ``max_in_flight`` unanswered at once. A device whose periodic Inform
is due within ``ride_window`` just waits for it (the task goes out in that session); the others
are woken by a connection request, ``concurrency`` at a time.

When the task finishes (``Dispatcher.final_hooks``), the answer is judged (pure, ``evaluate``),
kept in the device's bounded time series, summarised on the device (``health``, and the OLT /
PON identifiers the incident job groups by), and a change of status becomes a device event.

A read that fails (the device crash-loops, or cannot be reached) is ``unknown``: the summary says
so, and keeps the last definite read (ok / warn / critical) in ``health.last_definite``, which is
what the incident job judges: a failed read is no news, not a recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cwmp.logtext import loggable
from schemas.tasks import GetParameterValuesTask, TaskStatus
from tasks.health.catalog import Catalog
from tasks.health.evaluate import HealthResult, Level, Reason, Thresholds, evaluate, summary_fields
from tasks.health.policies import Policy
from tasks.queue import TaskQueue
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository
from tasks.store.health import HealthRepository

log = logging.getLogger("acs.health")
HEALTH_USER = "system:health"
Wake = Callable[[Document], Awaitable[bool]]
TOPOLOGY = ("olt_id", "pon_port")


@dataclass(frozen=True)
class PollLimits:
    concurrency: int = 20
    max_in_flight: int = 500
    ride_window: float = 300.0
    results_kept: int = 48
    default_interval: int = 300  # periodic inform interval of a device that never said


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
        wake: Wake | None = None,
    ) -> None:
        self.queue = queue
        self.devices = devices
        self.events = events
        self.results = results
        self.policies = policies
        self.catalog = catalog
        self.thresholds = thresholds
        self.limits = limits
        self.clock = clock
        self.wake = wake
        # Called with (device, stored result) after each read is stored: the trends (tasks/trends.py).
        self.stored_hooks: list[Callable[[Document, Document], Awaitable[None]]] = []

    # -- the job -----------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        now = self.clock()
        room = self.limits.max_in_flight - await self.devices.count_query({"health_task_until": {"$gt": now}})
        queued: list[Document] = []
        for policy in self.policies:
            if room - len(queued) <= 0:
                break
            due = await self.devices.find(self._due(policy, now), None, room - len(queued))
            queued += await self._bounded([self._queue(device, policy, now) for device in due])
        to_wake = [device for device in queued if not self._informs_soon(device, now)]
        woken = await self._wake_all(to_wake)
        return {"queued": len(queued), "woken": woken, "riding": len(queued) - len(to_wake)}

    async def _bounded(self, calls: list[Awaitable[Document | None]]) -> list[Document]:
        """Run the calls ``concurrency`` at a time: under load each write waits on the database."""
        slots = asyncio.Semaphore(self.limits.concurrency)

        async def one(call: Awaitable[Document | None]) -> Document | None:
            async with slots:
                return await call

        return [done for done in await asyncio.gather(*(one(call) for call in calls)) if done is not None]

    def _due(self, policy: Policy, now: datetime) -> Document:
        older = now - timedelta(seconds=policy.interval)
        return {
            "$and": [
                policy.device_filter.to_query(now),
                {"presence": "online"},
                {"$or": [{"health_polled_at": None}, {"health_polled_at": {"$lte": older}}]},
                {"$or": [{"health_task_until": None}, {"health_task_until": {"$lte": now}}]},
            ]
        }

    async def _queue(self, device: Document, policy: Policy, now: datetime) -> Document | None:
        profile = self.catalog.for_device(device)
        names = profile.names(policy.checks)
        if not names:
            return None
        # The read is worth little once the next one is due: expire it by then.
        lifetime = max(60, min(policy.interval, int(self.limits.ride_window + self._interval(device) * 2)))
        request = GetParameterValuesTask(kind="get_parameter_values", names=names, expires_in=lifetime)
        task, _ = await self.queue.create(device["_id"], request, HEALTH_USER)
        fields = {
            "health_polled_at": now,
            "health_task": task["_id"],
            "health_task_until": now + timedelta(seconds=lifetime),
            "health_policy": policy.name,
        }
        await self.devices.set_fields(device["_id"], fields)
        return device

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

    async def on_task_final(self, task: Document) -> None:
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
        if device is None:
            return
        now = self.clock()
        result = await self._judge(task, device, now)
        await self._store(device, task, result, now)

    async def _judge(self, task: Document, device: Document, now: datetime) -> HealthResult:
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

    async def _store(self, device: Document, task: Document, result: HealthResult, now: datetime) -> None:
        device_id = device["_id"]
        reasons = [reason.as_document() for reason in result.reasons]
        seq = int(device.get("health_seq") or 0)
        document = {
            "at": now,
            "status": result.status,
            "reasons": reasons,
            "values": result.values,
            "task_id": task["_id"],
            "policy": device.get("health_policy"),
        }
        await self.results.record(device_id, seq, self.limits.results_kept, document)
        for hook in self.stored_hooks:
            try:
                await hook(device, document)
            except Exception:  # a trend point lost must not lose the health summary below
                log.exception("health result hook failed for %s", loggable(device_id))
        previous = device.get("health") or {}
        changed = previous.get("status") != result.status
        fields: Document = {
            **summary_fields(previous, result, now),
            "health_seq": seq + 1,
            "health_task_until": None,
        }
        fields.update({key: result.values[key] for key in TOPOLOGY if result.values.get(key)})
        await self.devices.set_fields(device_id, fields)
        if changed:
            await self.events.record(
                device_id,
                device_events.HEALTH,
                now,
                {
                    "from": previous.get("status"),
                    "to": result.status,
                    "reasons": [reason["message"] for reason in reasons],
                },
            )
