"""Bulk actions from the console: on a selection of the device list, on a whole search result, or on
an open incident's members. Reboot, refresh a subtree, set values, firmware upgrade (a Download of a
stored firmware image, for the image's model), re-provision, and tag/untag.

``/bulk?<source>`` shows how many devices the source holds and the action forms; the operator ticks
the count to confirm. A task action goes through the bulk API's runner (``acs/api/bulk.py``: one
task per device, devices woken at a bounded rate, refusals listed); tagging has no task, so
``DeviceRun`` walks the same devices partition by partition and records its progress in the same
``task_batches`` document shape (kind ``tag``). Re-provisioning (the profiles engine re-applies a
device's configuration in its next session: ``ProfileEngine.request_reprovision`` (a ``reprovision``
task each), optionally
waking it) runs the same way. ``/bulk/{id}`` follows the progress (tasks per status) and cancels:
queued tasks are cancelled, a run without tasks stops after its current page.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from bson import ObjectId
from pydantic import ValidationError

from acs.api.errors import ApiError
from acs.api.files import resolve_bulk_transfer
from acs.console import devices_list
from acs.console.actions import TASK_REQUEST
from acs.console.web import CONSOLE, audit, console_of, form_of, guard, json_reply, refuse, user_of
from schemas.api import TAG_PATTERN, BulkBody, DeviceSelector, Role
from tasks.stopping import cancel_and_wait
from tasks.store.batches import CANCELLED, RUNNING
from tasks.store.db import Document
from tasks.store.devices import DeviceFilter

log = logging.getLogger("acs.console.bulk")
ACTIONS = ("reboot", "refresh", "set", "firmware", "tag", "untag", "reprovision")
RUNS = ("tag", "untag", "reprovision")  # actions without tasks: a DeviceRun
MAX_DEVICES = 100_000  # the bulk API's own ceiling
SELECTION_MAX = 10_000
RUN_PAGE = 200
STEPS_AT_ONCE = 10  # devices written (or woken) at once by a run without tasks
FIRMWARE_FILE_TYPE = "1 Firmware Upgrade Image"  # TR-069 A.3.2.8
IMAGES_SHOWN = 100
SELECTOR_FIELDS = {"q": "q", "model": "product_class", "version": "software_version", "tag": "tag",
                   "olt": "olt_id", "pon": "pon_port", "health": "health"}


class BulkRefused(Exception):
    def __init__(self, key: str, status: int = 422, **params: Any) -> None:
        super().__init__(key)
        self.key, self.status, self.params = key, status, params


async def _source(
    request: web.Request, query: Mapping[str, str], picked: list[str]
) -> tuple[DeviceFilter, dict[str, Any]]:
    """The devices: a selection (``device``, repeated), an incident's members, or the list's filters."""
    if picked:
        if len(picked) > SELECTION_MAX:
            raise BulkRefused("bulk_selection_too_large", max=SELECTION_MAX)
        return DeviceFilter(device_ids=tuple(sorted(set(picked)))), {"device_ids": sorted(set(picked))}
    incident, _open = await devices_list._members(request, query)
    device_filter = devices_list.search_filter(query, incident)
    selector: dict[str, Any] = {}
    for field in SELECTOR_FIELDS.values():
        value = getattr(device_filter, field)
        if value is not None:
            selector[field] = value
    if device_filter.online is not None:
        selector["online"] = device_filter.online
    if incident is not None:
        members = incident.get("members") or []
        if not members:
            raise BulkRefused("bulk_no_devices")
        selector["device_ids"] = sorted(set(members))
    if not selector and not query.get("all"):
        raise BulkRefused("bulk_no_source")
    return device_filter, selector


def _source_fields(query: Mapping[str, str], picked: list[str]) -> list[tuple[str, str]]:
    """The hidden fields that carry the source from the preview to the action."""
    if picked:
        return [("device", device_id) for device_id in picked]
    return [(key, value) for key, value in query.items() if key in (*devices_list.FILTERS, "all") and value]


def _request_of(request: web.Request) -> tuple[dict[str, str], list[str]]:
    query = {key: value for key, value in request.query.items() if isinstance(value, str) and key != "device"}
    return query, [value for value in request.query.getall("device", []) if isinstance(value, str)]


@guard(Role.OPERATOR)
async def bulk_page(request: web.Request) -> web.StreamResponse:
    """The preview: how many devices, and the action forms."""
    console = console_of(request)
    services = console.api.services
    query, picked = _request_of(request)
    try:
        device_filter, selector = await _source(request, query, picked)
    except BulkRefused as refused:
        return refuse(request, refused.status, "err_" + refused.key, **refused.params)
    page = await services.repositories.devices.search_page(device_filter, None, 1)
    images = await services.repositories.firmware.page(None, IMAGES_SHOWN)
    return console.renderer.page("bulk.html", user_of(request), count=page.total, exact=page.total_exact,
                                 selector=selector, fields=_source_fields(query, picked), images=images,
                                 back="/?" + urlencode(_source_fields(query, picked)), max_devices=MAX_DEVICES)


@guard(Role.OPERATOR)
async def start_bulk(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await request.post()
    fields = {key: value for key, value in form.items() if isinstance(value, str) and key != "device"}
    picked = [value for value in form.getall("device", []) if isinstance(value, str)]
    action = fields.get("action", "")
    user = user_of(request)
    try:
        if action not in ACTIONS:
            raise BulkRefused("bulk_unknown_action")
        if fields.get("confirm") != "yes":
            raise BulkRefused("bulk_confirm")
        device_filter, selector = await _source(request, fields, picked)
        if action in RUNS:
            batch = await _start_run(request, action, fields, device_filter, selector)
        else:
            body = await _task_body(request, action, fields, selector)
            batch = await console.api.bulk.start(body, user.who)
            await audit(request, f"Bulk task on devices: {body.task.kind}", 202, batch_id=batch["_id"],
                        kind=body.task.kind, matched=batch["matched"])
    except BulkRefused as refused:
        return refuse(request, refused.status, "err_" + refused.key, **refused.params)
    except ApiError as error:
        log.info("bulk action refused: %s", error)
        return refuse(request, error.status, "err_bulk_refused", reason=str(error))
    raise web.HTTPSeeOther(f"/bulk/{batch['_id']}")


async def _start_run(request: web.Request, action: str, fields: Mapping[str, str], device_filter: DeviceFilter,
                     selector: dict[str, Any]) -> Document:
    console = console_of(request)
    services = console.api.services
    who = user_of(request).who
    if action == "reprovision":
        wake = fields.get("wake") == "yes"

        async def reprovision(device_id: str) -> None:
            # The profiles engine re-applies the device's configuration in its next session.
            if await services.profiles.request_reprovision(device_id, who) is not None and wake:
                device = await services.repositories.devices.get(device_id)
                if device is not None:
                    await console.api.connreq.wake(device)

        batch = await DeviceRun.start(request.app, device_filter, selector, "reprovision", {"wake": wake},
                                      reprovision, who)
        await audit(request, "Bulk re-provision devices (profiles)", 202, batch_id=batch["_id"], kind=action,
                    matched=batch["matched"])
        return batch
    tag = fields.get("new_tag", "").strip()  # not "tag": that is the list's tag filter
    if not re.fullmatch(TAG_PATTERN, tag):
        raise BulkRefused("invalid_tag", tag=tag)
    change = services.repositories.devices.add_tags if action == "tag" else services.repositories.devices.remove_tags

    async def tag_one(device_id: str) -> None:
        await change(device_id, [tag])

    batch = await DeviceRun.start(request.app, device_filter, selector, action, {"tag": tag}, tag_one, who)
    await audit(request, f"Bulk {action} devices: {tag}", 202, batch_id=batch["_id"], kind=action, tags=[tag],
                matched=batch["matched"])
    return batch


async def _task_body(
    request: web.Request, action: str, form: Mapping[str, str], selector: dict[str, Any]
) -> BulkBody:
    services = console_of(request).api.services
    task: dict[str, Any]
    match action:
        case "reboot":
            task = {"kind": "reboot"}
        case "refresh":
            task = {"kind": "refresh", "path": form.get("path", "").strip()}
        case "set":
            value = form.get("value", "")
            setting: dict[str, Any] = {"name": form.get("name", "").strip(), "value": value}
            if form.get("type"):
                setting["type"] = form["type"]
            task = {"kind": "set_parameter_values", "values": [setting]}
        case _:  # firmware: a Download of the image's file, for the image's model only
            image = await services.repositories.firmware.get(form.get("image", ""))
            if image is None:
                raise BulkRefused("bulk_no_image")
            model = form.get("image_model") or (image.get("product_classes") or [None])[0]
            if model not in (image.get("product_classes") or []):
                raise BulkRefused("bulk_image_model", model=model or "")
            if selector.get("product_class") not in (None, model):
                raise BulkRefused("bulk_image_model", model=selector["product_class"])
            selector = {**selector, "product_class": model}
            task = {"kind": "download", "file_type": FIRMWARE_FILE_TYPE, "file_id": image["file_id"]}
    try:
        body = BulkBody(devices=DeviceSelector(**selector), task=TASK_REQUEST.validate_python(task),
                        max_devices=MAX_DEVICES)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise BulkRefused("invalid_field", field=".".join(map(str, first["loc"]))) from None
    return await resolve_bulk_transfer(services, body)


DeviceStep = Callable[[str], Awaitable[object]]


class DeviceRun:
    """A bulk action without tasks (tag, untag, re-provision): ``step`` on every device of a filter,
    in the background, recorded as a ``task_batches`` document (``progress.created``: devices done)."""

    KEY: web.AppKey[dict[str, asyncio.Task[None]]] = web.AppKey("console_device_runs", dict)

    @classmethod
    async def start(cls, app: web.Application, device_filter: DeviceFilter, selector: dict[str, Any], kind: str,
                    fields: dict[str, Any], step: DeviceStep, who: str) -> Document:
        services = app[CONSOLE].api.services
        matched = (await services.repositories.devices.search_page(device_filter, None, 1)).total
        batch: Document = {
            "_id": str(ObjectId()), "state": RUNNING, "created_at": services.clock(), "created_by": who,
            "kind": kind, **fields, "devices": selector, "matched": matched, "progress": {"created": 0},
            "connection_request": False,
        }
        await services.repositories.batches.insert(batch)
        runs = app[cls.KEY]
        run = asyncio.create_task(cls._run(app, batch["_id"], device_filter, step))
        runs[batch["_id"]] = run
        run.add_done_callback(lambda _done: runs.pop(batch["_id"], None))
        return batch

    @staticmethod
    async def _run(app: web.Application, batch_id: str, device_filter: DeviceFilter, step: DeviceStep) -> None:
        services = app[CONSOLE].api.services
        devices, batches = services.repositories.devices, services.repositories.batches
        limit = asyncio.Semaphore(STEPS_AT_ONCE)

        async def one(device_id: str) -> None:
            async with limit:
                await step(device_id)

        async def apply(page: list[str]) -> bool:
            if not await _still_running(batches, batch_id):
                return False
            await asyncio.gather(*(one(device_id) for device_id in page))
            await batches.add_progress(batch_id, {"created": len(page)}, {})
            return True

        try:
            page: list[str] = []
            async for device in devices.stream_partitions(device_filter, {"_id": 1}):
                page.append(device["_id"])
                if len(page) == RUN_PAGE:
                    if not await apply(page):
                        return
                    page = []
            if page and not await apply(page):
                return
            await batches.finish(batch_id, {"finished_at": services.clock()})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bulk %s stopped", batch_id)

    @classmethod
    async def close(cls, app: web.Application) -> None:
        runs = list(app[cls.KEY].values())
        await asyncio.gather(*(cancel_and_wait(run, "a console bulk action's run") for run in runs))


async def _still_running(batches: Any, batch_id: str) -> bool:
    batch = await batches.get(batch_id)
    return batch is not None and batch["state"] != CANCELLED


async def _status(request: web.Request) -> tuple[Document | None, dict[str, int]]:
    services = console_of(request).api.services
    batch_id = request.match_info["batch_id"]
    if not re.fullmatch(r"[0-9a-f]{24}", batch_id):
        return None, {}
    batch = await services.repositories.batches.get(batch_id)
    if batch is None or batch["kind"] in RUNS:
        return batch, {}
    return batch, await services.repositories.tasks.count_by_status(batch_id)


def _settled(batch: Document, tasks: Mapping[str, int]) -> int:
    if batch["kind"] in RUNS:
        return int(batch["progress"].get("created", 0))
    return sum(tasks.get(status, 0) for status in ("done", "failed", "cancelled", "expired"))


@guard(Role.VIEWER)
async def progress_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    batch, tasks = await _status(request)
    if batch is None:
        return refuse(request, 404, "err_bulk_not_found")
    context: dict[str, Any] = {"batch": batch, "tasks": tasks, "settled": _settled(batch, tasks), "quote": quote}
    if request.path.endswith(".json"):
        html = console.renderer.render("bulk_status.html", user_of(request), **context)
        return json_reply({"state": batch["state"], "html": html})
    return console.renderer.page("bulk_progress.html", user_of(request), **context)


@guard(Role.OPERATOR)
async def cancel_bulk(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    batch, _tasks = await _status(request)
    if batch is None:
        return refuse(request, 404, "err_bulk_not_found")
    user = user_of(request)
    await form_of(request)
    if batch["kind"] in RUNS:
        cancelled = await console.api.services.repositories.batches.cancel(
            batch["_id"], {"cancelled_at": console.api.services.clock(), "cancelled_by": user.who})
        if cancelled is None:
            return refuse(request, 409, "err_bulk_cancelled")
    else:
        try:
            await console.api.bulk.cancel(batch["_id"], user.who)
        except ApiError:
            return refuse(request, 409, "err_bulk_cancelled")
    await audit(request, f"Cancel a bulk action: {batch['kind']}", 200, batch_id=batch["_id"], kind=batch["kind"])
    raise web.HTTPSeeOther(f"/bulk/{batch['_id']}")


def setup(app: web.Application) -> None:
    app[DeviceRun.KEY] = {}
    app.on_cleanup.append(DeviceRun.close)
    app.router.add_routes(ROUTES)


ROUTES = [
    web.get("/bulk", bulk_page),
    web.post("/bulk", start_bulk),
    web.get("/bulk/{batch_id}.json", progress_page),
    web.get("/bulk/{batch_id}", progress_page),
    web.post("/bulk/{batch_id}/cancel", cancel_bulk),
]
