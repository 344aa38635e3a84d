"""The task queue (queued and running tasks, filtered by device, kind and who; cancel, retry) and the
faults page (failed tasks grouped by fault code and message, with their devices, first and last
seen; retry and clear a group).

The queue is read by top-level equalities (``status`` and each filter: ``TaskRepository.listing``),
newest first, 100 a page. The faults page reads failed tasks by the ``status`` equality (at most
``FAULTS_READ``, what grouping needs only) and groups them (``tasks/faults.py``). Clearing a group
records when (``fault_clears``): its failures up to then leave the page, later ones bring it back.
Retrying a group queues again each device's newest failed task of the group (up to ``RETRY_MAX``
devices) and clears the group, so what fails again shows as new.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from acs.api.pagination import encode_cursor, time_id_before
from acs.console.render import words_for
from acs.console.web import audit, console_of, form_of, guard, refuse, user_of
from schemas.api import Role
from schemas.tasks import TaskStatus
from tasks import faults
from tasks.queue import TaskError
from tasks.records import TaskRecord
from tasks.store.fault_clears import FaultClearRepository

PAGE_SIZE = 100
FAULTS_READ = 20000
RETRY_MAX = 1000
STATUSES = tuple(status.value for status in TaskStatus)
OPEN = ("queued", "dispatched")
KINDS = ("reboot", "factory_reset", "refresh", "get_parameter_values", "set_parameter_values",
         "get_parameter_names", "add_object", "delete_object", "download", "upload", "diagnostic",
         "reprovision")


def _filters(query: dict[str, str]) -> dict[str, str]:
    return {key: query[key].strip() for key in ("device", "kind", "who", "batch") if query.get(key, "").strip()}


@guard(Role.VIEWER)
async def queue_page(request: web.Request) -> web.StreamResponse:
    """Queued and running tasks (``status``: one status, or ``open`` for both), newest first."""
    console = console_of(request)
    services = console.api.services
    query = {key: value for key, value in request.query.items() if isinstance(value, str)}
    status = query.get("status") or "open"
    if status != "open" and status not in STATUSES:
        return refuse(request, 400, "err_bad_filter")
    filters = _filters(query)
    equal: dict[str, Any] = {}
    for name, field in (("device", "device_id"), ("kind", "kind"), ("who", "created_by"), ("batch", "batch_id")):
        if name in filters:
            equal[field] = filters[name]
    before = time_id_before(query.get("cursor"))
    repository = services.repositories.tasks
    found: list[TaskRecord] = []
    # One equality query per status (FerretDB evaluates $in by reading the collection), merged.
    for each in OPEN if status == "open" else (status,):
        found += await repository.listing({**equal, "status": each}, before, PAGE_SIZE + 1)
    found.sort(key=lambda task: (task["created_at"], task["_id"]), reverse=True)
    shown = found[:PAGE_SIZE]
    next_query = None
    if len(found) > PAGE_SIZE:
        last = shown[-1]
        next_query = urlencode({**filters, "status": status,
                                "cursor": encode_cursor({"at": last["created_at"], "id": last["_id"]})})
    return console.renderer.page("tasks.html", user_of(request), tasks=shown, chosen_status=status, filters=filters,
                                 statuses=STATUSES, kinds=KINDS, next_query=next_query, quote=quote,
                                 request_query=request.query_string, now=services.clock())


async def _task_action(request: web.Request, action: str) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    task_id = request.match_info["task_id"]
    task = await services.queue.get(task_id)
    if task is None:
        return refuse(request, 404, "task_not_found")
    user = user_of(request)
    try:
        if action == "cancel":
            await services.queue.cancel(task_id, user.who)
            await audit(request, f"Cancel a queued task: {task['kind']}", 200, device_id=task["device_id"],
                        task_ids=[task_id], kind=task["kind"], cancelled=True)
        else:
            copy = await services.queue.retry(task_id, user.who)
            await audit(request, f"Retry a task: {task['kind']}", 201, device_id=task["device_id"],
                        task_ids=[task_id, copy["_id"]], kind=task["kind"])
    except TaskError:
        words = words_for(user)
        key = "err_not_queued" if action == "cancel" else "err_still_open"
        return refuse(request, 409, key, state=words.t(task["status"]))
    form = await form_of(request)
    back = form.get("back", "")
    raise web.HTTPSeeOther(back if back.startswith("/tasks") or back.startswith("/faults") else "/tasks")


@guard(Role.OPERATOR)
async def cancel_task(request: web.Request) -> web.StreamResponse:
    return await _task_action(request, "cancel")


@guard(Role.OPERATOR)
async def retry_task(request: web.Request) -> web.StreamResponse:
    return await _task_action(request, "retry")


async def _groups(request: web.Request) -> list[faults.FaultGroup]:
    services = console_of(request).api.services
    cleared = await FaultClearRepository(services.database).all()
    return faults.group(await services.repositories.tasks.failures(FAULTS_READ), cleared)


@guard(Role.VIEWER)
async def faults_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    groups = await _groups(request)
    chosen = request.query.get("group")
    opened = next((group for group in groups if group.key == chosen), None) if chosen else None
    return console.renderer.page("faults.html", user_of(request), groups=groups, opened=opened, quote=quote,
                                 read_max=FAULTS_READ, retry_max=RETRY_MAX, now=console.api.services.clock())


@guard(Role.OPERATOR)
async def fault_action(request: web.Request) -> web.StreamResponse:
    """``clear`` or ``retry`` one fault group (by its key)."""
    console = console_of(request)
    services = console.api.services
    action, key = request.match_info["action"], request.match_info["key"]
    if action not in ("clear", "retry"):
        return refuse(request, 404, "not_found")
    group = next((group for group in await _groups(request) if group.key == key), None)
    if group is None:
        return refuse(request, 404, "fault_group_not_found")
    user = user_of(request)
    retried: list[str] = []
    if action == "retry":
        for task_id in list(group.devices.values())[:RETRY_MAX]:
            try:
                copy = await services.queue.retry(task_id, user.who)
            except TaskError:
                continue
            retried.append(copy["_id"])
    await FaultClearRepository(services.database).clear(key, services.clock(), user.who)
    label = f"{group.code} {group.message}".strip()
    if action == "retry":
        await audit(request, f"Retry the failed tasks of fault {label} on {len(retried)} devices", 200,
                    task_ids=retried[:100], fault_group=key, retried=len(retried))
    else:
        await audit(request, f"Clear fault {label} ({group.failures} failures on {group.device_count} devices)",
                    200, fault_group=key)
    raise web.HTTPSeeOther("/faults")


ROUTES = [
    web.get("/tasks", queue_page),
    web.post("/tasks/{task_id}/cancel", cancel_task),
    web.post("/tasks/{task_id}/retry", retry_task),
    web.get("/faults", faults_page),
    web.post("/faults/{key}/{action}", fault_action),
]
