"""The device page, its parameter tree, its history (and CSV), and the JSON the page polls."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from acs.console.optics import OpticalLevel, optical_levels, parent_objects
from acs.console.render import words_for
from acs.console.web import console_of, guard, json_reply, refuse, user_of
from acs.console.words import Words
from schemas.api import HistoryEntry, Role
from schemas.monitoring import Diagnosis
from schemas.tasks import FINAL_STATUSES
from tasks.device_diagnosis import diagnose
from tasks.history import ENTRY_TYPES, device_timeline, session_entry
from tasks.params import redact_result
from tasks.profiles.service import ProfileService
from tasks.records import TaskRecord
from tasks.store import device_events
from tasks.store.db import Document
from tasks.store.devices import is_online
from tasks.store.parameters import CachedParameter

HISTORY_PAGE = 100
RECENT_TASKS = 10
MAX_WAIT = 10.0
FINAL = frozenset(status.value for status in FINAL_STATUSES)
# Entry types (session, task, operator, event, health, incident), then device events by their own type.
HISTORY_TYPES = (*ENTRY_TYPES, device_events.ONLINE, device_events.OFFLINE, device_events.BOOT)
RESULT_TABLES = ("values", "results")


async def _device(request: web.Request) -> Document | None:
    services = console_of(request).api.services
    return await services.repositories.devices.get(request.match_info["device_id"])


def _not_found(request: web.Request) -> web.StreamResponse:
    return refuse(request, 404, "device_not_found")


async def _optics(request: web.Request, device: Document) -> list[OpticalLevel]:
    services = console_of(request).api.services
    profile = services.health.catalog.for_device(device)
    cached = await services.repositories.parameters.get_many(device["_id"], parent_objects(profile))
    return optical_levels(profile, services.health.thresholds, cached)


async def history_entries(request: web.Request, device_id: str, before: datetime | None,
                          limit: int) -> list[HistoryEntry]:
    """The device's time line as the API's history shows it (tasks/history.py), newest first."""
    repositories = console_of(request).api.services.repositories
    return (await device_timeline(repositories, device_id, before, limit))[:limit]


async def _diagnosis(request: web.Request, device: Document) -> Diagnosis | None:
    console = console_of(request)
    if "diagnosis" not in console.panels:
        return None
    services = console.api.services
    return await diagnose(services.repositories, device, services.clock(), services.settings.health_interval)


def task_json(task: TaskRecord, words: Words) -> dict[str, Any]:
    """A task for the page's script: its state and result as sentences; value tables stay tables."""
    result = redact_result(task.get("result")) or {}  # a read Wi-Fi key shows as ***, as in the API
    fault = task.get("fault")
    return {
        "id": task["_id"],
        "kind": task["kind"],
        "status": task["status"],
        "status_text": words.t(task["status"]),
        "final": task["status"] in FINAL,
        "text": words.task_result(task),
        "reason": words.task_reason(task),
        "fault": None if not fault else {
            "text": words.t("task_fault", code=fault.get("code"), string=fault.get("string") or ""),
            "detail": [words.t("task_fault_parameter", parameter=d.get("parameter"), code=d.get("code"),
                               string=d.get("string") or "") for d in fault.get("detail") or []],
        },
        "table": _result_table(result),
        "created_by": task.get("created_by"),
        "finished_at": words.when_ago(task.get("finished_at")) if task.get("finished_at") else None,
    }


def _result_table(result: Any) -> list[list[str]]:
    """Read values (name, value) and diagnostic results (field, value) as rows."""
    if not isinstance(result, dict):
        return []
    if isinstance(result.get("values"), list):
        return [[str(v.get("name")), str(v.get("value"))] for v in result["values"] if isinstance(v, dict)]
    if task_is_diagnostic(result):
        return [[str(key), str(value)] for key, value in result.items()
                if key not in ("requested",) and not isinstance(value, dict | list)]
    return []


def task_is_diagnostic(result: dict[str, Any]) -> bool:
    return any(key in result for key in ("DiagnosticsState", "SuccessCount", "ResponseTime", "NumberOfRouteHops",
                                         "ROMTime", "TestBytesReceived"))


@dataclass(frozen=True)
class Fact:
    """A value read from the device at some time: shown with its age, greyed while the device is offline."""

    value: Any
    at: datetime | None


def _uptime(device: Document) -> Fact:
    """The newest uptime the ACS has: the Inform's (when it carries UpTime) or the last health read's."""
    candidates = [Fact(device.get("uptime"), device.get("last_inform"))]
    health = device.get("health") or {}
    candidates.append(Fact((health.get("values") or {}).get("uptime"), health.get("at")))
    known = [(fact.at, fact) for fact in candidates if fact.value is not None and fact.at is not None]
    return max(known, key=lambda pair: pair[0])[1] if known else Fact(None, None)


async def device_view(request: web.Request, device: Document) -> dict[str, Any]:
    """Everything the device page shows (also re-rendered for the live refresh)."""
    console = console_of(request)
    services = console.api.services
    device_id = device["_id"]
    optics, history, tasks, diagnosis, queued, configuration = await asyncio.gather(
        _optics(request, device),
        history_entries(request, device_id, None, 20),
        services.repositories.tasks.for_device(device_id, None, RECENT_TASKS),
        _diagnosis(request, device),
        services.repositories.tasks.for_device(device_id, None, 50, "queued"),
        configuration_of(request, device),
    )
    now = services.clock()
    online = is_online(device, now)
    incidents = [incident for incident in (diagnosis.incidents if diagnosis else []) if incident.status == "open"]
    health = device.get("health") or {}
    return {
        "device": device, "online": online, "optics": optics, "history": history, "tasks": tasks,
        "queued": queued, "now": now, "panels": console.panels, "diagnosis": diagnosis, "incidents": incidents,
        "offline_since": None if online else device.get("offline_since") or device.get("offline_after"),
        "uptime": _uptime(device), "health_at": health.get("at"), "configuration": configuration,
        "campaigns": await _campaigns_of(request, device_id),
    }


async def configuration_of(request: web.Request, device: Document) -> dict[str, Any] | None:
    """Issue 14: the device's effective configuration (in sync, or the differing values), when some
    profile selects it or it has overrides; None otherwise (the section is not shown)."""
    services = console_of(request).api.services
    service = ProfileService(services.repositories.profiles, services.profiles, services.repositories.devices,
                             services.box, services.clock)
    view = await service.configuration(device)
    if not view["profiles"] and not view["parameters"] and not view["state"].get("status"):
        return None
    return view


async def _campaigns_of(request: web.Request, device_id: str) -> list[dict[str, Any]]:
    """The firmware campaigns the device is part of, newest first, with this device's state in each."""
    repository = console_of(request).api.services.repositories.campaigns
    shown = []
    for member in await repository.for_device(device_id, 3):
        campaign = await repository.get(member["campaign_id"])
        if campaign is not None:
            shown.append({"campaign": campaign, "member": member})
    return shown


@guard(Role.VIEWER)
async def device_page(request: web.Request) -> web.StreamResponse:
    device = await _device(request)
    if device is None:
        return _not_found(request)
    console = console_of(request)
    return console.renderer.page("device.html", user_of(request), **await device_view(request, device))


@guard(Role.VIEWER)
async def device_live(request: web.Request) -> web.StreamResponse:
    """What changed on the page: online state, last inform (formatted as on the page), the last session."""
    device = await _device(request)
    if device is None:
        return _not_found(request)
    services = console_of(request).api.services
    now = services.clock()
    words = words_for(user_of(request), now=now)
    last_session = await services.repositories.sessions.last_for_device(device["_id"])
    return json_reply({
        "online": is_online(device, now),
        "last_inform": device.get("last_inform"),
        "last_inform_text": words.when_ago(device.get("last_inform")),
        "last_session": None if last_session is None else {
            "id": last_session["_id"], "summary": words.history(session_entry(last_session)),
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
        return refuse(request, 404, "task_not_found")
    return json_reply(task_json(task, words_for(user_of(request), now=services.clock())))


def _before(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@guard(Role.VIEWER)
async def history_page(request: web.Request) -> web.StreamResponse:
    """One page of the history (``before``: older than that entry's time), filtered; a link to the next page."""
    device = await _device(request)
    if device is None:
        return _not_found(request)
    words = words_for(user_of(request))
    read = await history_entries(request, device["_id"], _before(request.query.get("before")), HISTORY_PAGE)
    entries = _filtered(read, request.query, words)
    older = read[-1].at.isoformat() if len(read) == HISTORY_PAGE else None
    template = "history_rows.html" if request.query.get("fragment") else "history.html"
    return console_of(request).renderer.page(template, user_of(request), device=device, history=entries,
                                             query=dict(request.query), types=HISTORY_TYPES, older=older)


def _filtered(entries: list[HistoryEntry], query: Any, words: Words) -> list[HistoryEntry]:
    # A type is an entry type or a device event's own type (online, offline, boot: transitions).
    kind, text = query.get("type", ""), query.get("q", "").strip().lower()
    return [entry for entry in entries
            if (not kind or kind in (entry.type, entry.detail.get("type") if entry.type == "event" else None))
            and (not text or text in entry.summary.lower() or text in words.history(entry).lower())]


CSV_ROWS = 2000  # per kind of entry (tasks/history.py reads each kind up to this)


@guard(Role.VIEWER)
async def history_csv(request: web.Request) -> web.StreamResponse:
    """The whole (filtered) history, times in the user's zone, summaries in the user's language."""
    device = await _device(request)
    if device is None:
        return _not_found(request)
    user = user_of(request)
    words = words_for(user)
    entries = _filtered(await history_entries(request, device["_id"], None, CSV_ROWS), request.query, words)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([words.t("csv_at", zone=words.zone.key), words.t("type"), "id", words.t("summary"),
                     words.t("who")])
    for entry in entries:
        who = entry.detail.get("created_by") or entry.detail.get("token_name") or ""
        kind = words.t(entry.type)
        if entry.type == "event":
            kind += ": " + words.t(str(entry.detail.get("type")))
        writer.writerow([words.when(entry.at), _csv_safe(kind), _csv_safe(str(entry.id)),
                         _csv_safe(words.history(entry)), _csv_safe(who)])
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
