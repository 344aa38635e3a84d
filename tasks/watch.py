"""Job: a "watch for N hours" ends. The console sets the watch tag and ``watch_until``; this removes both.

The health policy ``watch`` polls devices with the tag more often (``tasks/health/policies.py``), so
an expired watch left in place would keep polling the device often for ever. A watch extended
between reading and writing is left alone (the write names the ``watch_until`` it read).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tasks.store.devices import DeviceRepository

BATCH = 1000


class WatchExpiry:
    def __init__(self, devices: DeviceRepository, tag: str, clock: Callable[[], datetime]) -> None:
        self.devices = devices
        self.tag = tag
        self.clock = clock

    async def run(self) -> int:
        """End every watch past its time; how many ended."""
        ended = 0
        while True:
            due = await self.devices.watches_ended(self.clock(), BATCH, self.tag)
            for device in due:
                ended += await self.devices.end_watch(device["_id"], self.tag, device["watch_until"])
            if len(due) < BATCH:
                return ended
