"""The device page, its parameter tree, its history (and CSV), and the JSON the page polls."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from acs.console.optics import SOURCES, optical_levels
from acs.console.web import console_of, guard, json_reply, refuse, user_of
from schemas.api import HistoryEntry, Role
from schemas.monitoring import Diagnosis
from schemas.tasks import FINAL_STATUSES
from tasks.device_diagnosis import diagnose
from tasks.history import ENTRY_TYPES, device_timeline, session_entry
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.devices import is_online
from tasks.store.parameters import CachedParameter

HISTORY_LIMIT = 300
RECENT_TASKS = 10
MAX_WAIT = 10.0
FINAL = frozenset(status.value for status in FINAL_STATUSES)
# Entry types (session, task, operator, event, health, incident), then device events by their own type.
HISTORY_TYPES = (*ENTRY_TYPES, device_events.ONLINE, device_events.OFFLINE, device_events.BOOT)


async def _device(request: web.Request) -> Document | None:
    services = console_of(request).api.services
    return await services.repositories.devices.get(request.match_info["device_id"])


def _not_found(request: web.Request) -> web.StreamResponse:
    return refuse(request, 404, "device_not_found")


async def _optics(request: web.Request, device_id: str) -> Any:
    parameters = console_of(request).api.services.repositories.parameters
    return optical_levels(await parameters.get_many(device_id, (source.obj for source in SOURCES)))


async def history_entries(request: web.Request, device_id: str, limit: int) -> list[HistoryEntry]:
    """The device's time line as the API's history shows it (tasks/history.py), newest first."""
    repositories = console_of(request).api.services.repositories
    return (await device_timeline(repositories, device_id, None, limit))[:limit]


async def _diagnosis(request: web.Request, device: Document) -> Diagnosis | None:
    console = console_of(request)
    if "diagnosis" not in console.panels:
        return None
    services = console.api.services
    return await diagnose(services.repositories, device, services.clock(), services.settings.health_interval)


def task_json(task: Document, when: Any = None) -> dict[str, Any]:
    return {
        "id": task["_id"],
        "kind": task["kind"],
        "status": task["status"],
        "final": task["status"] in FINAL,
        "result": task.get("result"),
        "fault": task.get("fault"),
        "reason": task.get("reason"),
        "created_by": task.get("created_by"),
        "finished_at": task.get("finished_at"),
    }


@guard(Role.VIEWER)
async def device_page(request: web.Request) -> web.StreamResponse:
    device = await _device(request)
    if device is None:
        return _not_found(request)
    console = console_of(request)
    services = console.api.services
    device_id = device["_id"]
    optics, history, tasks, diagnosis = await asyncio.gather(
        _optics(request, device_id),
        history_entries(request, device_id, 20),
        services.repositories.tasks.for_device(device_id, None, RECENT_TASKS),
        _diagnosis(request, device),
    )
    now = services.clock()
    incidents = [incident for incident in (diagnosis.incidents if diagnosis else []) if incident.status == "open"]
    return console.renderer.page(
        "device.html", user_of(request), device=device, online=is_online(device, now), optics=optics,
        history=history, tasks=tasks, now=now, panels=console.panels, diagnosis=diagnosis, incidents=incidents,
    )


@guard(Role.VIEWER)
async def device_live(request: web.Request) -> web.StreamResponse:
    """What changed on the page: online state, last inform, the last session, open tasks."""
    device = await _device(request)
    if device is None:
        return _not_found(request)
    services = console_of(request).api.services
    last_session = await services.repositories.sessions.last_for_device(device["_id"])
    return json_reply({
        "online": is_online(device, services.clock()),
        "last_inform": device.get("last_inform"),
        "last_session": None if last_session is None else {
            "id": last_session["_id"], "summary": session_entry(last_session).summary,
        },
    })


@guard(Role.VIEWER)
async def task_state(request: web.Request) -> web.StreamResponse:
    """A task as JSON; with ``wait`` (seconds) it answers when the task is final or the time is up."""
    services = console_of(request).api.services
    task_id = request.match_info["task_id"]
    try:
        wait = min(max(float(request.query.get("wait", "0")), 0.0), MAX_WAIT)
    except ValueError:
        wait = 0.0
    task = await services.queue.wait_final(task_id, wait) if wait else await services.queue.get(task_id)
    if task is None:
        return json_reply({"error": {"code": "not_found", "message": f"no task {task_id}"}}, 404)
    return json_reply(task_json(task))


@guard(Role.VIEWER)
async def history_page(request: web.Request) -> web.StreamResponse:
    device = await _device(request)
    if device is None:
        return _not_found(request)
    entries = _filtered(await history_entries(request, device["_id"], HISTORY_LIMIT), request.query)
    template = "history_rows.html" if request.query.get("fragment") else "history.html"
    return console_of(request).renderer.page(template, user_of(request), device=device, history=entries,
                                             query=dict(request.query), types=HISTORY_TYPES)


def _filtered(entries: list[HistoryEntry], query: Any) -> list[HistoryEntry]:
    # A type is an entry type or a device event's own type (online, offline, boot: transitions).
    kind, text = query.get("type", ""), query.get("q", "").strip().lower()
    return [entry for entry in entries
            if (not kind or kind in (entry.type, entry.detail.get("type") if entry.type == "event" else None))
            and (not text or text in entry.summary.lower())]


@guard(Role.VIEWER)
async def history_csv(request: web.Request) -> web.StreamResponse:
    device = await _device(request)
    if device is None:
        return _not_found(request)
    entries = _filtered(await history_entries(request, device["_id"], HISTORY_LIMIT), request.query)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at_utc", "type", "id", "summary", "who"])
    for entry in entries:
        who = entry.detail.get("created_by") or entry.detail.get("token_name") or ""
        kind = f"event:{entry.detail.get('type')}" if entry.type == "event" else entry.type
        writer.writerow([entry.at.isoformat(), _csv_safe(kind), _csv_safe(str(entry.id)), _csv_safe(entry.summary),
                         _csv_safe(who)])
    filename = f"history-{device.get('serial_number') or 'device'}.csv"
    return web.Response(text=out.getvalue(), content_type="text/csv",
                        headers={"Content-Disposition": attachment(filename)})


# A cell starting with one of these is a formula in spreadsheets (CSV injection, OWASP); a leading
# tab or CR hides one from a naive check and is stripped by some importers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def attachment(filename: str) -> str:
    """A Content-Disposition for a download named from device data (RFC 6266).

    The serial number comes from the device: ``filename`` gets an ASCII stand-in (no quote,
    backslash or control character can end the header or the parameter), ``filename*`` the
    name itself, percent-encoded UTF-8 (RFC 8187), control characters dropped.
    """
    visible = "".join(char for char in filename if char.isprintable())
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", visible)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(visible, safe='')}"


@dataclass
class TreeNode:
    name: str
    path: str
    children: dict[str, TreeNode] = field(default_factory=dict)
    leaf: CachedParameter | None = None
    writable: bool | None = None

    def count(self) -> int:
        return (1 if self.leaf else 0) + sum(child.count() for child in self.children.values())


def build_tree(parameters: dict[str, CachedParameter]) -> TreeNode:
    root = TreeNode("", "")
    for name in sorted(parameters):
        parameter = parameters[name]
        parts = name.rstrip(".").split(".")
        node = root
        for depth, part in enumerate(parts):
            path = ".".join(parts[: depth + 1]) + "."
            node = node.children.setdefault(part, TreeNode(part, path))
        if name.endswith("."):
            node.writable = parameter.writable
        else:
            node.path, node.leaf = name, parameter
    return root


@guard(Role.VIEWER)
async def parameters_page(request: web.Request) -> web.StreamResponse:
    device = await _device(request)
    if device is None:
        return _not_found(request)
    console = console_of(request)
    services = console.api.services
    prefix = request.query.get("prefix", "")
    text = request.query.get("q", "").strip().lower()
    cached = await services.repositories.parameters.get(device["_id"], prefix)
    matches = None
    if text:
        matches = [p for name, p in sorted(cached.items())
                   if text in name.lower() or text in str(p.value or "").lower()][:500]
    return console.renderer.page(
        "parameters.html", user_of(request), device=device, tree=build_tree(cached), matches=matches,
        query=dict(request.query), total=sum(1 for name in cached if not name.endswith(".")),
        now=services.clock(), age=_age,
    )


def _age(updated_at: datetime | None, now: datetime) -> int | None:
    return None if updated_at is None else int((now - updated_at).total_seconds())


ROUTES = [
    web.get("/devices/{device_id}", device_page),
    web.get("/devices/{device_id}/live.json", device_live),
    web.get("/devices/{device_id}/parameters", parameters_page),
    web.get("/devices/{device_id}/history", history_page),
    web.get("/devices/{device_id}/history.csv", history_csv),
    web.get("/tasks/{task_id}.json", task_state),
]
