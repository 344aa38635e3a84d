"""Device actions from the console: the same queue, connection requests and audit as the API.

Each action answers JSON (the page's script shows the task's result when it arrives) or, for a
plain form post, redirects back to the device page.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from acs.console.device import task_json
from acs.console.render import words_for
from acs.console.web import audit, console_of, device_url, form_of, guard, json_reply, refuse, user_of, wants_json
from acs.console.words import Words
from schemas.api import TAG_PATTERN, Role
from schemas.tasks import TaskRequest
from schemas.values import INTEGER_RANGES, InvalidValue, checked_value
from tasks.queue import TaskError
from tasks.records import TaskRecord
from tasks.store.db import Document
from tasks.store.devices import due_slice

TASK_REQUEST: TypeAdapter[Any] = TypeAdapter(TaskRequest)
CONSOLE_TASK_EXPIRY = 3600  # a line-2 action that has not happened within the hour is not wanted any more
MAX_WATCH_HOURS = 72


# How long a queued task may wait for the device: an offline device's reboot should not happen hours later.
EXPIRY_CHOICES = (600, 3600, 86400)


class ActionError(Exception):
    """A refused action: ``message`` in English for the audit, ``code`` and ``params`` for the user's language."""

    def __init__(self, code: str, message: str, wording: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.wording = wording or code  # the catalog's err_<wording>
        self.params = params


def parse_value(text: str, value_type: str) -> str | int | bool:
    """A typed value from the form, checked before anything is sent (the API's check, schemas.values)."""
    try:
        return checked_value(text, value_type)
    except InvalidValue as exc:
        raise ActionError("invalid_value", str(exc), wording=_value_wording(value_type),
                          value=text, type=value_type, low=INTEGER_RANGES.get(value_type, ("", ""))[0],
                          high=INTEGER_RANGES.get(value_type, ("", ""))[1]) from None


def _value_wording(value_type: str) -> str:
    if value_type in INTEGER_RANGES:
        return "invalid_integer"
    return {"xsd:boolean": "invalid_boolean", "xsd:dateTime": "invalid_datetime"}.get(value_type, "invalid_typed")


def names_of(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,]+", text) if name]


async def _set_request(request: web.Request, device_id: str, form: dict[str, str]) -> dict[str, Any]:
    name = form.get("name", "").strip()
    cached = await console_of(request).api.services.repositories.parameters.get(device_id, name)
    parameter = cached.get(name)
    if parameter is None:
        raise ActionError("unknown_parameter", f"{name} is not in the cached tree; refresh it first", name=name)
    if parameter.writable is False:
        raise ActionError("not_writable", f"{name} is read-only on this device", name=name)
    value_type = parameter.type or "xsd:string"
    value = parse_value(form.get("value", ""), value_type)
    return {"kind": "set_parameter_values", "values": [{"name": name, "value": value, "type": value_type}]}


def _diagnostic_request(form: dict[str, str]) -> dict[str, Any]:
    test = form.get("test", "ping")
    body: dict[str, Any] = {"kind": "diagnostic", "test": test}
    target = form.get("target", "").strip()
    body["url" if test == "download" else "host"] = target
    if form.get("repetitions"):
        body["repetitions"] = form["repetitions"]
    return body


async def task_body(request: web.Request, action: str, device_id: str, form: dict[str, str]) -> dict[str, Any]:
    match action:
        case "reboot":
            return {"kind": "reboot"}
        case "factory_reset":
            if form.get("confirm") != "yes":
                raise ActionError("confirmation_needed", "a factory reset needs confirm=yes")
            return {"kind": "factory_reset"}
        case "refresh":
            return {"kind": "refresh", "path": form.get("path", "").strip()}
        case "read":
            return {"kind": "get_parameter_values", "names": names_of(form.get("names", ""))}
        case "set":
            return await _set_request(request, device_id, form)
        case "diagnostic":
            return _diagnostic_request(form)
    raise ActionError("unknown_action", f"no action {action!r}", action=action)


def expiry_of(form: dict[str, str]) -> int:
    text = form.get("expires_in", "")
    if not text:
        return CONSOLE_TASK_EXPIRY
    if not (text.isascii() and text.isdigit()) or int(text) not in EXPIRY_CHOICES:
        raise ActionError("invalid_expiry", f"expires_in must be one of {EXPIRY_CHOICES}")
    return int(text)


async def _queue(request: web.Request, device: Document, body: dict[str, Any],
                 expires_in: int) -> tuple[TaskRecord, dict[str, Any]]:
    console = console_of(request)
    services = console.api.services
    try:
        task_request = TASK_REQUEST.validate_python({**body, "expires_in": expires_in})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(map(str, first["loc"][1:] or first["loc"]))
        raise ActionError("invalid_field", f"{'.'.join(map(str, first['loc']))}: {first['msg']}", field=field) from None
    task, _created = await services.queue.create(device["_id"], task_request, user_of(request).who)
    wake = await console.api.connreq.wake(device)
    return task, {"answered": wake.answered, "via": wake.via, "error": wake.error}


@guard(Role.OPERATOR)
async def act(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    action = request.match_info["action"]
    device = await services.repositories.devices.get(request.match_info["device_id"])
    if device is None:
        return refuse(request, 404, "device_not_found")
    form = await form_of(request)
    words = words_for(user_of(request), now=services.clock())
    try:
        reply, summary, targets = await _run(request, action, device, form, words)
    except ActionError as exc:
        await audit(request, f"Console {action} refused: {exc.message}", 422, device_id=device["_id"])
        if not wants_json(request):
            return refuse(request, 422, "err_" + exc.wording, **exc.params)
        return json_reply({"error": {"code": exc.code, "message": words.error(exc.wording, exc.params)}}, 422)
    await audit(request, summary, reply.get("status_code", 200), device_id=device["_id"], **targets)
    return _answer(request, device, reply, 200)


@guard(Role.OPERATOR)
async def cancel(request: web.Request) -> web.StreamResponse:
    """Cancel a queued task of this device (one that waits for an offline device, say)."""
    console = console_of(request)
    services = console.api.services
    device_id, task_id = request.match_info["device_id"], request.match_info["task_id"]
    task = await services.queue.get(task_id)
    if task is None or task["device_id"] != device_id:
        return refuse(request, 404, "task_not_found")
    words = words_for(user_of(request), now=services.clock())
    try:
        cancelled = await services.queue.cancel(task_id, user_of(request).who)
    except TaskError:
        await audit(request, f"Cancel task {task_id} refused: it is {task['status']}", 409, device_id=device_id,
                    task_ids=[task_id])
        return refuse(request, 409, "err_not_queued", state=words.t(task["status"]))
    await audit(request, f"Cancel a queued task: {task['kind']}", 200, device_id=device_id, task_ids=[task_id],
                kind=task["kind"], cancelled=True)
    if wants_json(request):
        return json_reply({"task": task_json(cancelled, words)})
    raise web.HTTPSeeOther(device_url(device_id))


async def _run(request: web.Request, action: str, device: Document, form: dict[str, str],
               words: Words) -> tuple[dict[str, Any], str, dict[str, Any]]:
    devices = console_of(request).api.services.repositories.devices
    match action:
        case "wake":
            wake = await console_of(request).api.connreq.wake(device)
            report = {"answered": wake.answered, "via": wake.via, "error": wake.error}
            reply = {"wake": {"answered": wake.answered, "text": words.wake(report)}}
            return reply, "Wake the device now (connection request)", {"connection_request": report}
        case "reprovision":
            # Issue 14: re-apply the effective configuration now ("I reset my ONT and lost the internet").
            services = console_of(request).api.services
            await services.profiles.request_reprovision(device["_id"], user_of(request).who)
            wake = await console_of(request).api.connreq.wake(device)
            report = {"answered": wake.answered, "via": wake.via, "error": wake.error}
            reprovisioned: dict[str, Any] = {"wake": {"answered": wake.answered, "text": words.wake(report)},
                                             "text": words.t("reprovision_requested")}
            summary = "Re-provision the device (re-apply its configuration now)"
            return reprovisioned, summary, {"connection_request": report}
        case "tag" | "untag":
            tag = form.get("tag", "").strip()
            if not re.fullmatch(TAG_PATTERN, tag):
                raise ActionError("invalid_tag", f"{tag!r} is not a valid tag", tag=tag)
            change = devices.add_tags if action == "tag" else devices.remove_tags
            await change(device["_id"], [tag])
            verb = "Add tags to a device" if action == "tag" else "Remove tags from a device"
            text = words.t("tag_added" if action == "tag" else "tag_removed", tag=tag)
            return {"tags": [tag], "text": text}, verb, {"tags": [tag]}
        case "watch":
            hours = form.get("hours", "")
            if not (hours.isascii() and hours.isdigit()) or not 1 <= int(hours) <= MAX_WATCH_HOURS:
                raise ActionError("invalid_hours", f"watch for 1..{MAX_WATCH_HOURS} hours", max=MAX_WATCH_HOURS)
            services = console_of(request).api.services
            until = services.clock() + timedelta(hours=int(hours))
            # The health policy "watch" polls devices with this tag more often (tasks/health/policies.py).
            tag = services.settings.health_watch_tag
            await devices.add_tags(device["_id"], [tag])
            # ... and reads it now: its next read was due under the slower policy (tasks/health/poll.py)
            await devices.set_fields(device["_id"], {"watch_until": until, "health_due": due_slice(services.clock())})
            summary = f"Watch the device for {hours} h (frequent health polls)"
            text = words.t("watching_until", until=words.when(until))
            return {"watch_until": until, "tags": [tag], "text": text}, summary, {"tags": [tag]}
    body = await task_body(request, action, device["_id"], form)
    task, woken = await _queue(request, device, body, expiry_of(form))
    summary = f"Queue a task for a device: {body['kind']}"
    task_reply: dict[str, Any] = {"task": task_json(task, words), "status_code": 202,
                                  "wake": {"answered": woken["answered"], "text": words.wake(woken)}}
    return task_reply, summary, {"task_ids": [task["_id"]], "kind": body["kind"]}


def _answer(request: web.Request, device: Document, reply: dict[str, Any], status: int) -> web.StreamResponse:
    if wants_json(request):
        reply.pop("status_code", None)
        return json_reply(reply, status)
    raise web.HTTPSeeOther(device_url(device["_id"]))


ROUTES = [
    web.post("/devices/{device_id}/actions/{action}", act),
    web.post("/devices/{device_id}/tasks/{task_id}/cancel", cancel),
]
