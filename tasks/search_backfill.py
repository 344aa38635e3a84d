"""Job: devices stored before their search fields (``tasks/search.py``), or before a new token
version, get them. One pass over ``devices`` per version, partition by partition (``page_group``,
or ``page_bucket`` past ``partitions.GROUP_READ_MAX`` devices: ``tasks/partitions.py``), each
partition one indexed equality streamed in bounded batches. A run stops once its time budget is
spent and keeps where it stopped in ``job_state`` (the version it is passing, the next partition),
so the next run, in whichever process holds the lease, goes on from there instead of reading the
fleet from its start again; afterwards a run is one read.

Every device stored since the first version has ``page_bucket`` (an Inform writes the search fields
with the device), so once any pass has completed a pass reads by partition alone. Before that, the
devices with no ``page_bucket`` are read first by that absence (an index on MongoDB, a scan on
FerretDB 1.24): each one written leaves the match set, so a cut run's successor goes on too.

Informs keep the fields current from then on (``DeviceRepository.record_inform``), so the pass
is needed once per version, not per process start.
"""

from __future__ import annotations

import time
from typing import Any

from tasks import partitions, search
from tasks.store.db import Document
from tasks.store.devices import SEARCH_BACKFILL, DeviceRepository
from tasks.store.jobs import JobRepository

NAME = SEARCH_BACKFILL
BATCH = 1000
UNPARTITIONED: Document = {"page_bucket": None}  # stored before the first version: no partition yet


class SearchBackfill:
    def __init__(self, devices: DeviceRepository, jobs: JobRepository, budget_seconds: float) -> None:
        self.devices = devices
        self.jobs = jobs
        self.budget_seconds = budget_seconds  # stays under the job's lease

    async def run(self) -> dict[str, Any]:
        state = await self.jobs.state(NAME) or {}
        if state.get("version") == search.VERSION:
            return {"devices_written": 0, "done_before": True}
        deadline = time.monotonic() + self.budget_seconds

        def budget() -> bool:
            return time.monotonic() < deadline

        written = 0
        if state.get("passing") == search.VERSION:
            position, step = int(state["next"]), int(state["step"])
        else:
            if state.get("version") is None:
                written, complete = await self.devices.backfill_search(UNPARTITIONED, BATCH, budget)
                if not complete:
                    return {"devices_written": written, "complete": False}
            position, step = 0, partitions.step_for(await partitions.guess_total(self.devices))
        while position < search.BUCKETS:  # at least one partition a run, so every pass ends
            count, complete = await self.devices.backfill_search(
                partitions.partition_query(position, step), BATCH, budget
            )
            written += count
            if not complete:  # cut inside a partition: the next run reads it again (what is written stays)
                break
            position += step
            await self.jobs.save_state(NAME, {"passing": search.VERSION, "next": position, "step": step})
            if not budget():
                break
        if position >= search.BUCKETS:
            await self.jobs.save_state(NAME, {"version": search.VERSION})
        return {"devices_written": written, "complete": position >= search.BUCKETS, "next": position}
