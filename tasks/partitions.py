"""A pass over the fleet partition by partition, spread over job runs (issue 13).

A census of 200,000 devices reads for about a minute on FerretDB 1.24 (522 s for the fleet census
on a loaded 2-core box), far more than one run of a job may take (under 5% of its interval). So
the jobs that must see every device (the fleet census, ``tasks/fleet.py``; the incident job's group
sizes, ``tasks/incidents/sizes.py``) read the fleet by ``page_group`` (64 partitions) or, past
``GROUP_READ_MAX`` devices, by ``page_bucket`` (4,096): each partition one indexed top-level
equality (``tasks/search.py``), a few dozen to a few hundred devices. A run reads partitions until
its time budget is spent and says where it stopped; the job keeps that position and its counts
so far in the database, so whichever process holds the job's lease next goes on with the pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass

from tasks import search
from tasks.store.db import Document
from tasks.store.devices import DeviceRepository

BATCH = 5000
# A pass reads by page_group (64 reads) while the last one counted at most this many devices (about
# 500 a group), else by page_bucket (4,096 reads, 49 devices each at 200,000): one read is the unit
# a run's time budget is checked against.
GROUP_READ_MAX = 32_000
SIZE_BUCKET = 17  # the bucket a first pass counts to guess the fleet's size


def step_for(last_total: int) -> int:
    """Buckets per read for a fleet of about ``last_total`` devices."""
    return search.GROUP_SIZE if last_total <= GROUP_READ_MAX else 1


async def guess_total(devices: DeviceRepository) -> int:
    """The fleet's size from one bucket (a few dozen devices at 200,000), for a very first pass: so
    a large fleet is not read a whole group (thousands) at a time."""
    return await devices.count_query({"page_bucket": SIZE_BUCKET}) * search.BUCKETS


def partition_query(position: int, step: int) -> Document:
    """The one indexed equality that reads the partition starting at bucket ``position``."""
    if step == search.GROUP_SIZE:
        return {"page_group": position // search.GROUP_SIZE}
    return {"page_bucket": position}


@dataclass(frozen=True)
class Stop:
    position: int  # the next partition's first bucket; search.BUCKETS once the pass is complete
    read: int  # devices read by this run
    step: int = search.GROUP_SIZE  # buckets per read from ``position`` on (the pass keeps it)

    @property
    def complete(self) -> bool:
        return self.position >= search.BUCKETS

    def left(self, step: int) -> int:
        return (search.BUCKETS - self.position) // step


def dense(devices_in_group: int) -> bool:
    """A group this full is read by its buckets: the fleet is past GROUP_READ_MAX."""
    return devices_in_group * search.GROUPS > GROUP_READ_MAX


async def read_partitions(
    devices: DeviceRepository, position: int, step: int, fields: Iterable[str], budget_seconds: float,
    each: Callable[[Document], None], monotonic: Callable[[], float] = time.monotonic,
    match: Document | None = None,
) -> Stop:
    """Read partitions from ``position`` until ``budget_seconds`` are spent (at least one, so every
    pass ends), handing each device to ``each``.

    A pass by group goes on by bucket once the fleet is past GROUP_READ_MAX: its step is chosen
    when it begins, and a pass begun on a small fleet (a fresh database being filled: 3,100 devices
    a group at 200,000, 2-5.7 s a run every 15 s in the api200k catch-up) would read whole groups
    for the rest of it. So a run by group first counts the next group's first bucket (a few devices),
    and a group read that was dense switches too; the stop says the step to go on with.

    ``match``: more top-level equalities every read adds (the offline count's ``presence``)."""
    deadline = monotonic() + budget_seconds
    projection = dict.fromkeys(fields, 1)
    read = 0
    probe = step == search.GROUP_SIZE and position < search.BUCKETS
    if probe and dense(await devices.count_query({**(match or {}), "page_bucket": position}) * search.GROUP_SIZE):
        step = 1
    while position < search.BUCKETS:
        in_part = 0
        query = {**(match or {}), **partition_query(position, step)}
        async with aclosing(devices.scan(query, projection, BATCH)) as part:
            async for device in part:
                each(device)
                in_part += 1
        read += in_part
        position += step
        if step == search.GROUP_SIZE and dense(in_part):
            step = 1
        if monotonic() >= deadline:
            break
    return Stop(position, read, step)
