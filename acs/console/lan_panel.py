"""The slow-internet panel of a device: Wi-Fi, LAN hosts and ports, WAN counters and PPP state.

Shown from the parameter cache with the age of each section; "Read now" queues one targeted
``get_parameter_values`` per section (tasks/lan_panel.py says which objects) and wakes the
device, and the page's script reloads the panel when the reads are final.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from acs.console.render import words_for
from acs.console.web import audit, console_of, guard, json_reply, refuse, user_of
from schemas.api import Role
from schemas.tasks import GetParameterValuesTask
from tasks.lan_panel import SECTIONS, all_paths, build_panel, reads_for
from tasks.store.db import Document

READ_EXPIRY = 600  # a panel read that has not happened within 10 minutes is not wanted any more


def _root(device: Document) -> str:
    return str(device.get("root") or "InternetGatewayDevice.")


@guard(Role.VIEWER)
async def lan_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    device = await services.repositories.devices.get(request.match_info["device_id"])
    if device is None:
        return refuse(request, 404, "device_not_found")
    root = _root(device)
    cached = await services.repositories.parameters.get_many(device["_id"], all_paths(root))
    values = {name: parameter.value for name, parameter in cached.items() if not name.endswith(".")}
    read_at: dict[str, datetime | None] = {}
    for section, paths in reads_for(root).items():
        times = [p.updated_at for name, p in cached.items() if name.startswith(paths) and p.updated_at is not None]
        read_at[section] = max(times) if times else None
    return console.renderer.page("lan.html", user_of(request), device=device, panel=build_panel(root, values),
                                 read_at=read_at, sections=SECTIONS, now=services.clock())


@guard(Role.OPERATOR)
async def lan_read(request: web.Request) -> web.StreamResponse:
    """Queue the panel's reads (one task per section) and wake the device; JSON with the task ids."""
    console = console_of(request)
    services = console.api.services
    device = await services.repositories.devices.get(request.match_info["device_id"])
    if device is None:
        return refuse(request, 404, "device_not_found")
    who = user_of(request).who
    task_ids: list[str] = []
    for paths in reads_for(_root(device)).values():
        body = GetParameterValuesTask(kind="get_parameter_values", names=list(paths), expires_in=READ_EXPIRY)
        task, _created = await services.queue.create(device["_id"], body, who)
        task_ids.append(task["_id"])
    wake = await console.api.connreq.wake(device)
    await audit(request, "Read the LAN and Wi-Fi side of a device (slow-internet panel)", 202,
                device_id=device["_id"], task_ids=task_ids, kind="get_parameter_values")
    words = words_for(user_of(request))
    reply: dict[str, Any] = {"task_ids": task_ids, "wake": {"answered": wake.answered, "text": words.wake(
        {"answered": wake.answered, "via": wake.via, "error": wake.error})}}
    return json_reply(reply, 202)


ROUTES = [
    web.get("/devices/{device_id}/lan", lan_page),
    web.post("/devices/{device_id}/lan/read", lan_read),
]
