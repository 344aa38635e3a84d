"""``health_reads``: the health reads in flight, one document per device (``_id``, the device id).

The health poll writes one when it queues a read (``HealthPoller._queue_all``) and the read's end
takes it back (``HealthPoller.on_task_final``). It says which devices have a read in flight, so a
slice read again does not queue a second one, and it is how a read whose end stored nothing (its
process stopped between the task's end and the hook) is noticed and the device read again.

It replaces a write of the device document per read queued: on FerretDB 1.24 a device write updates
every index of ``devices`` (292 of a 405 ms poll run at 200,000 devices, docs/performance.md), where
this collection holds what is in flight only (about ``max_in_flight``), so the poll reads it whole
each run (``tests/tasks/test_job_queries.py``'s in-flight collections).

Each document: ``task_id`` (the read), ``slice`` (the ``health_due`` slice it was queued from: a
device still in it long after the read's end never had its answer stored) and ``until`` (the read's
end).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tasks.store.db import Database, Delete, Document, Insert, bulk_write


class HealthReadRepository:
    def __init__(self, database: Database) -> None:
        self._reads = database.collection("health_reads")
        self._writer = database.writer("health_reads")

    async def ensure_indexes(self) -> None:
        """None besides ``_id``: read whole, written and deleted by ``_id``."""

    async def in_flight(self) -> list[Document]:
        """Every read in flight (the collection is bounded by the poll's ``max_in_flight``)."""
        return [read async for read in self._reads.find({})]

    async def add_many(self, reads: Sequence[tuple[str, str, int, datetime]]) -> None:
        """One document per ``(device_id, task_id, slice, until)``, in capped insert commands (the
        poll queues no read for a device that has one: a taken ``_id`` is an error)."""
        await bulk_write(self._reads, [Insert({"_id": device_id, "task_id": task_id, "slice": due, "until": until})
                                       for device_id, task_id, due, until in reads])

    def end_later(self, device_id: str, task_id: str) -> None:
        """The read ended and its answer is stored: its document goes with the other ends of the
        next moment (``GroupWriter.write_later``). Lost with its process at worst: the poll then
        finds it past its end and sees the device already moved on."""
        self._writer.write_later(Delete({"_id": device_id, "task_id": task_id}))

    async def end(self, device_id: str, task_id: str) -> None:
        await self._writer.write(Delete({"_id": device_id, "task_id": task_id}))
