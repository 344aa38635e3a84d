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

from collections.abc import Callable
from datetime import datetime

from tasks.registry import TransitionHook
from tasks.store import device_events
from tasks.store.device_events import DeviceEventRepository
from tasks.store.devices import DeviceRepository

BATCH = 2000


class OfflineDetector:
    def __init__(
        self,
        devices: DeviceRepository,
        events: DeviceEventRepository,
        clock: Callable[[], datetime],
        hooks: list[TransitionHook] | None = None,
    ) -> None:
        self.devices = devices
        self.events = events
        self.clock = clock
        self.hooks = hooks if hooks is not None else []

    async def run(self) -> int:
        """Mark every overdue device offline; returns how many went offline."""
        now = self.clock()
        marked = 0
        while True:
            overdue = await self.devices.overdue(now, BATCH)
            batch = 0
            for device in overdue:
                batch += await self._mark(device["_id"], device["offline_after"], now)
            marked += batch
            if len(overdue) < BATCH or batch == 0:
                return marked

    async def _mark(self, device_id: str, since: datetime, now: datetime) -> int:
        if not await self.devices.mark_offline(device_id, since, now):
            return 0
        await self.events.record(device_id, device_events.OFFLINE, since, {"detected_at": now})
        for hook in self.hooks:
            hook(device_id, device_events.OFFLINE)
        return 1
