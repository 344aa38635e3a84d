"""Job: devices stored before their search fields (``tasks/search.py``), or before a new token
version, get them. One streamed pass over ``devices`` in bounded batches, at start-up and then
until it has reached the end once for the current version; afterwards a run is one read.

Informs keep the fields current from then on (``DeviceRepository.record_inform``), so the pass
is needed once per version, not per process start.
"""

from __future__ import annotations

import time
from typing import Any

from tasks import search
from tasks.store.devices import SEARCH_BACKFILL, DeviceRepository
from tasks.store.jobs import JobRepository

NAME = SEARCH_BACKFILL
BATCH = 1000


class SearchBackfill:
    def __init__(self, devices: DeviceRepository, jobs: JobRepository, budget_seconds: float) -> None:
        self.devices = devices
        self.jobs = jobs
        self.budget_seconds = budget_seconds  # stays under the job's lease

    async def run(self) -> dict[str, Any]:
        state = await self.jobs.state(NAME)
        if state is not None and state.get("version") == search.VERSION:
            return {"devices_written": 0, "done_before": True}
        deadline = time.monotonic() + self.budget_seconds
        written, complete = await self.devices.backfill_search(BATCH, lambda: time.monotonic() < deadline)
        if complete:
            await self.jobs.save_state(NAME, {"version": search.VERSION})
        return {"devices_written": written, "complete": complete}
