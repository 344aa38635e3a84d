"""Bulk tasks: one task for every device matching the filters of ``GET /api/v1/devices``.

``POST /api/v1/tasks/bulk`` stores the batch and answers at once; a background asyncio task of
this process then walks the matching devices in pages, queues one task per device (tagged with
``batch_id``) and wakes the devices by connection request at ``wake_rate`` per second (at most
``MAX_WAKES_IN_FLIGHT`` at a time, since an unreachable device holds a request for
timeout x attempts). A SetParameterValues value given without a type is checked per device against
the type that device reported (as ``POST /api/v1/devices/{id}/tasks`` does): a device whose cached
type cannot hold it gets no task, is counted as ``refused`` and listed (the first
``REFUSALS_KEPT``) with the reason. If the process stops mid-batch, the tasks already queued still run when
their devices next inform; the batch stays ``running`` and can be cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from bson import ObjectId

from acs.api.errors import ApiError
from acs.api.files import resolve_bulk_transfer
from acs.api.routes import Call, Reply, Route
from acs.connreq import ConnectionRequester
from acs.services import Services
from schemas.api import BulkBody, BulkStatus, Role
from schemas.tasks import SetParameterValuesTask, TaskRequest
from tasks.queue import TaskError
from tasks.stopping import cancel_and_wait
from tasks.store.batches import CANCELLED, RUNNING
from tasks.store.db import Document
from tasks.store.devices import DeviceFilter
from tasks.value_types import untyped_value_problems

log = logging.getLogger("acs.bulk")
PAGE = 200
MAX_WAKES_IN_FLIGHT = 50
CANCEL_CHECK_EVERY = 5  # devices woken between two looks at the batch's state
REFUSALS_KEPT = 20


class BulkRunner:
    def __init__(self, services: Services, connreq: ConnectionRequester) -> None:
        self.services = services
        self.connreq = connreq
        self._running: dict[str, asyncio.Task[None]] = {}

    async def start(self, body: BulkBody, created_by: str) -> Document:
        repositories = self.services.repositories
        now = self.services.clock()
        selector = body.devices.model_dump()
        if selector.get("device_ids") is not None:
            selector["device_ids"] = tuple(selector["device_ids"])
        device_filter = DeviceFilter(**selector)
        matched = await repositories.devices.count(device_filter, now)
        if matched > body.max_devices:
            raise ApiError(422, "too_many_devices", f"the filter matches {matched} devices, more than "
                                                    f"max_devices={body.max_devices}")
        batch: Document = {
            "_id": str(ObjectId()),
            "state": RUNNING,
            "created_at": now,
            "created_by": created_by,
            "kind": body.task.kind,
            "devices": body.devices.model_dump(exclude_none=True),
            "matched": matched,
            "progress": {"created": 0, "woken": 0, "wake_failed": 0},
            "connection_request": body.connection_request,
            "wake_rate": body.wake_rate,
        }
        await repositories.batches.insert(batch)
        run = asyncio.create_task(self._run(batch["_id"], device_filter, body.task, body, created_by))
        self._running[batch["_id"]] = run
        run.add_done_callback(lambda _done: self._running.pop(batch["_id"], None))
        return batch

    async def wait(self, batch_id: str) -> None:
        """Until this process's runner of the batch is done (tests, shutdown)."""
        run = self._running.get(batch_id)
        if run is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(run)

    async def close(self) -> None:
        await asyncio.gather(*(cancel_and_wait(run, "a bulk request's run") for run in list(self._running.values())))

    async def _run(self, batch_id: str, device_filter: DeviceFilter, request: TaskRequest, body: BulkBody,
                   created_by: str) -> None:
        try:
            await self._walk(batch_id, device_filter, request, body, created_by)
            if not await self.services.repositories.batches.finish(batch_id, {"finished_at": self.services.clock()}):
                await self._cancel_queued(batch_id, created_by)  # cancelled while we were adding tasks
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bulk batch %s stopped", batch_id)

    async def _walk(self, batch_id: str, device_filter: DeviceFilter, request: TaskRequest, body: BulkBody,
                    created_by: str) -> None:
        pacer = Pacer(body.wake_rate)
        refusals: list[dict[str, str]] = []
        # Partition by partition (``page_group`` equalities), not pages sorted by device id: on
        # FerretDB each sorted page of a large match would read and sort all of it again.
        async with contextlib.aclosing(self._pages(device_filter)) as pages:
            async for devices in pages:
                if await self._cancelled(batch_id):
                    return
                await self._queue_page(batch_id, devices, request, body, created_by, pacer, refusals)

    async def _pages(self, device_filter: DeviceFilter) -> AsyncGenerator[list[Document], None]:
        page: list[Document] = []
        async for device in self.services.repositories.devices.stream_partitions(device_filter, None):
            page.append(device)
            if len(page) == PAGE:
                yield page
                page = []
        if page:
            yield page

    async def _queue_page(self, batch_id: str, devices: list[Document], request: TaskRequest, body: BulkBody,
                          created_by: str, pacer: Pacer, refusals: list[dict[str, str]]) -> None:
        repositories = self.services.repositories
        created, refused = [], 0
        for device in devices:
            reason = await self._refusal(device["_id"], request)
            if reason is not None:
                refused += 1
                if len(refusals) < REFUSALS_KEPT:
                    refusals.append({"device_id": device["_id"], "reason": reason})
                continue
            await self.services.queue.create(device["_id"], request, created_by, batch_id)
            created.append(device)
        counts = {"created": len(created), **({"refused": refused} if refused else {})}
        await repositories.batches.add_progress(batch_id, counts, {"refusals": refusals} if refused else {})
        if body.connection_request:
            await self._wake(batch_id, created, pacer)

    async def _refusal(self, device_id: str, request: TaskRequest) -> str | None:
        """Why this device gets no task of the batch: a value its cached type cannot hold; else None."""
        if not isinstance(request, SetParameterValuesTask):
            return None
        problems = await untyped_value_problems(self.services.repositories.parameters, device_id, request.values)
        return "; ".join(f"{problem.name}: {problem.reason}" for problem in problems) or None

    async def _cancelled(self, batch_id: str) -> bool:
        batch = await self.services.repositories.batches.get(batch_id)
        return batch is None or batch["state"] == CANCELLED

    async def _wake(self, batch_id: str, devices: list[Document], pacer: Pacer) -> None:
        limit = asyncio.Semaphore(MAX_WAKES_IN_FLIGHT)
        counts = {"woken": 0, "wake_failed": 0}

        async def wake(device: Document) -> None:
            async with limit:
                result = await self.connreq.wake(device)
            counts["wake_failed" if result.answered is False else "woken"] += 1

        wakes = []
        for number, device in enumerate(devices):
            if number % CANCEL_CHECK_EVERY == 0 and await self._cancelled(batch_id):
                break
            await pacer.next()
            wakes.append(asyncio.create_task(wake(device)))
        await asyncio.gather(*wakes)
        await self.services.repositories.batches.add_progress(batch_id, counts, {})

    async def cancel(self, batch_id: str, by: str) -> Document:
        batch = await self.services.repositories.batches.cancel(batch_id, {"cancelled_at": self.services.clock(),
                                                                          "cancelled_by": by})
        if batch is None:
            if await self.services.repositories.batches.get(batch_id) is None:
                raise ApiError.not_found(f"batch {batch_id}")
            raise ApiError(409, "conflict", f"batch {batch_id} is already cancelled")
        await self._cancel_queued(batch_id, by)
        return batch

    async def _cancel_queued(self, batch_id: str, by: str) -> None:
        while queued := await self.services.repositories.tasks.queued_in_batch(batch_id, 500):
            for task in queued:
                with contextlib.suppress(TaskError):  # dispatched meanwhile: it runs to its end
                    await self.services.queue.cancel(task["_id"], by)

    async def status(self, batch_id: str) -> BulkStatus:
        batch = await self.services.repositories.batches.get(batch_id)
        if batch is None:
            raise ApiError.not_found(f"batch {batch_id}")
        counts = await self.services.repositories.tasks.count_by_status(batch_id)
        return BulkStatus.model_validate({**batch, "batch_id": batch["_id"], "tasks": counts})


class Pacer:
    """Spaces events ``1 / rate`` seconds apart without drifting."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next: float | None = None

    async def next(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._next is None or self._next < now:
            self._next = now
        delay = self._next - now
        self._next += self.interval
        if delay > 0:
            await asyncio.sleep(delay)


async def create_bulk(call: Call) -> Reply:
    body = await resolve_bulk_transfer(call.api.services, call.body(BulkBody))
    batch = await call.api.bulk.start(body, call.who)
    call.audit["batch_id"] = batch["_id"]
    call.audit["kind"] = batch["kind"]
    status = await call.api.bulk.status(batch["_id"])
    return Reply(status, status=202, headers={"Location": f"/api/v1/tasks/bulk/{batch['_id']}"})


async def get_bulk(call: Call) -> Reply:
    return Reply(await call.api.bulk.status(call.path("batch_id")))


async def cancel_bulk(call: Call) -> Reply:
    batch_id = call.path("batch_id")
    call.audit["batch_id"] = batch_id
    await call.api.bulk.cancel(batch_id, call.who)
    return Reply(await call.api.bulk.status(batch_id))


ROUTES = [
    Route("POST", "/api/v1/tasks/bulk", create_bulk,
          "Queue one task on every device matching a filter, waking them at a bounded rate", Role.OPERATOR,
          "bulk", body=BulkBody, response=BulkStatus, status=202, other_statuses=(400,)),
    Route("GET", "/api/v1/tasks/bulk/{batch_id}", get_bulk, "Progress of a bulk task", Role.VIEWER, "bulk",
          response=BulkStatus, other_statuses=(404,)),
    Route("DELETE", "/api/v1/tasks/bulk/{batch_id}", cancel_bulk, "Cancel a bulk task's queued tasks",
          Role.OPERATOR, "bulk", response=BulkStatus, other_statuses=(404, 409)),
]
