"""Tasks: create (optionally waking the device and waiting), read, list, cancel, retry."""

from __future__ import annotations

import asyncio
from datetime import datetime

from acs.api.devices import device_or_404
from acs.api.errors import ApiError
from acs.api.files import resolve_transfer
from acs.api.pagination import cursor_text, cursor_time, decode_cursor, next_cursor
from acs.api.routes import Call, Reply, Route
from acs.cwmp_server.service import LAZY_SETTLE
from acs.services import Services
from schemas.api import (
    ConnectionRequestReport,
    DeviceTasksQuery,
    Page,
    Role,
    TaskBody,
    TaskCreated,
    TaskCreateQuery,
)
from schemas.tasks import FINAL_STATUSES, SetParameterValuesTask, Task, TaskRequest
from tasks.queue import new_task_id
from tasks.records import TaskRecord
from tasks.value_types import untyped_value_problems

FINAL = frozenset(status.value for status in FINAL_STATUSES)


def task_view(call: Call, task: TaskRecord) -> Task:
    return Task.model_validate(call.api.services.queue.to_api(task))


def _status_for(task: TaskRecord) -> int:
    # 201: the task reached a final state within ``wait``; 202: accepted, still pending.
    return 201 if task["status"] in FINAL else 202


async def create_task(call: Call) -> Reply:
    device_id = call.path("device_id")
    options = call.query(TaskCreateQuery)
    request = call.body(TaskBody).root
    services = call.api.services
    device = await device_or_404(call, device_id)
    await _check_values(services, device_id, request)
    started = services.clock()
    task_id = new_task_id()
    resolved = await resolve_transfer(services, request, device, task_id)
    task, _created = await services.queue.create(device_id, resolved, call.who, task_id=task_id, as_sent=request)
    call.audit["task_ids"] = [task["_id"]]
    call.audit["kind"] = request.kind
    report = None
    if options.connection_request and task["status"] not in FINAL:
        task = await _after_current_session(services, task, deadline=max(options.wait, 1.0))
        if task["status"] == "queued":
            result = await call.api.connreq.wake(device)
            report = ConnectionRequestReport(device_id=device_id, **result.__dict__)
    remaining = options.wait - (services.clock() - started).total_seconds()
    if remaining > 0 and task["status"] not in FINAL:
        task = await services.queue.wait_final(task["_id"], remaining) or task
    shown = TaskCreated.model_validate({**services.queue.to_api(task), "connection_request": report})
    return Reply(shown, status=_status_for(task), headers={"Location": f"/api/v1/tasks/{task['_id']}"})


async def _check_values(services: Services, device_id: str, request: TaskRequest) -> None:
    """422 for a value the device's cached type cannot hold (values with a type were checked already)."""
    if not isinstance(request, SetParameterValuesTask):
        return
    problems = await untyped_value_problems(services.repositories.parameters, device_id, request.values)
    if problems:
        details = [{"loc": f"body.values.{p.index}.value", "reason": f"{p.name}: {p.reason}"} for p in problems]
        text = "; ".join(detail["reason"] for detail in details[:5])
        raise ApiError(422, "invalid_value", text, details)


async def _after_current_session(services: Services, task: TaskRecord, deadline: float) -> TaskRecord:
    """Wait (bounded) while the device is in a session; return the task as it then stands.

    TR-069 3.2.2: a CPE already in a session ignores a connection request, so waking it now
    would be lost; a task queued while that session is still sending RPCs is taken by it anyway.
    """
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    delay = 0.02
    while await _in_session(services, task["device_id"]):
        if loop.time() >= until:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
    return await services.queue.get(task["_id"]) or task


async def _in_session(services: Services, device_id: str) -> bool:
    """The device's session holds its lease, or a lazy one may still run (``acs/cwmp_server/service.py``:
    it holds no lease, and ends or takes one within ``LAZY_SETTLE`` of the Inform it began with)."""
    if await services.repositories.locks.holder(device_id, services.clock()) is not None:
        return True
    device = await services.repositories.devices.get(device_id, {"last_inform": 1})
    informed = None if device is None else device.get("last_inform")
    return isinstance(informed, datetime) and services.clock() - informed < LAZY_SETTLE


async def get_task(call: Call) -> Reply:
    task = await _task_or_404(call, call.path("task_id"))
    return Reply(task_view(call, task))


async def list_device_tasks(call: Call) -> Reply:
    device_id = call.path("device_id")
    query = call.query(DeviceTasksQuery)
    await device_or_404(call, device_id)
    position = decode_cursor(query.cursor)
    before: tuple[datetime, str] | None = None
    created_at = cursor_time(position)
    if created_at is not None:
        before = (created_at, cursor_text(position, "id") or "")
    status = query.status.value if query.status is not None else None
    found = await call.api.services.repositories.tasks.for_device(device_id, before, query.limit + 1, status)
    items = [task_view(call, task) for task in found[: query.limit]]
    cursor = next_cursor(found, query.limit, lambda t: {"at": t["created_at"], "id": t["_id"]})
    return Reply(Page[Task](items=items, next_cursor=cursor))


async def cancel_task(call: Call) -> Reply:
    task = await _task_or_404(call, call.path("task_id"))
    call.audit["device_id"] = task["device_id"]
    cancelled = await call.api.services.queue.cancel(task["_id"], call.who)
    return Reply(task_view(call, cancelled))


async def retry_task(call: Call) -> Reply:
    task = await _task_or_404(call, call.path("task_id"))
    call.audit["device_id"] = task["device_id"]
    copy = await call.api.services.queue.retry(task["_id"], call.who)
    call.audit["task_ids"] = [task["_id"], copy["_id"]]
    return Reply(task_view(call, copy), status=201, headers={"Location": f"/api/v1/tasks/{copy['_id']}"})


async def _task_or_404(call: Call, task_id: str) -> TaskRecord:
    task = await call.api.services.queue.get(task_id)
    if task is None:
        raise ApiError.not_found(f"task {task_id}")
    return task


ROUTES = [
    Route(
        "POST",
        "/api/v1/devices/{device_id}/tasks",
        create_task,
        "Queue a task for a device (201 when final within wait, 202 when pending)",
        Role.OPERATOR,
        "tasks",
        query=TaskCreateQuery,
        body=TaskBody,
        response=TaskCreated,
        status=202,
        other_statuses=(201, 400, 404, 409),  # 409: idempotency key reused with another body
    ),
    Route(
        "GET",
        "/api/v1/devices/{device_id}/tasks",
        list_device_tasks,
        "Tasks of a device, newest first",
        Role.VIEWER,
        "tasks",
        query=DeviceTasksQuery,
        response=Page[Task],
        other_statuses=(400, 404),
    ),
    Route(
        "GET",
        "/api/v1/tasks/{task_id}",
        get_task,
        "One task",
        Role.VIEWER,
        "tasks",
        response=Task,
        other_statuses=(404,),
    ),
    Route(
        "DELETE",
        "/api/v1/tasks/{task_id}",
        cancel_task,
        "Cancel a queued task",
        Role.OPERATOR,
        "tasks",
        response=Task,
        other_statuses=(404, 409),
    ),
    Route(
        "POST",
        "/api/v1/tasks/{task_id}/retry",
        retry_task,
        "Queue a copy of a finished task",
        Role.OPERATOR,
        "tasks",
        response=Task,
        status=201,
        other_statuses=(404, 409),
    ),
]
