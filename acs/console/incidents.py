"""Incidents in the console: the dashboard of open incidents, one incident, acknowledge, comment, resolve.

The same service functions as the API (``tasks/incidents/service.py``), the console user acting as
``user:<name>``; every action audited like the API's (``incident_id`` in the entry).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from acs.console import campaigns
from acs.console.web import audit, console_of, form_of, guard, json_reply, refuse, user_of, wants_json
from schemas.api import Role
from tasks.incidents import service
from tasks.incidents.service import IncidentNotOpen, ReasonRequired
from tasks.store.db import Document
from tasks.store.devices import DeviceFilter, is_online

DASHBOARD_LIMIT = 200
RECENTLY_RESOLVED = 20
MAX_COMMENT = 2000
MEMBERS_SHOWN = 500


def incident_url(incident_id: int) -> str:
    return f"/incidents/{incident_id}"


def _row(incident: Document, now: datetime) -> dict[str, object]:
    return {"incident": incident, "trend": service.trend(incident, now)}


@guard(Role.VIEWER)
async def dashboard(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    incidents = console.api.services.repositories.incidents
    open_ones = await incidents.open_with_timeline(DASHBOARD_LIMIT)
    resolved = await incidents.page("resolved", None, None, None, RECENTLY_RESOLVED)
    now = console.api.services.clock()
    if wants_json(request):
        return json_reply({"open": [{**service.summary_of(i).model_dump(mode="json"), "trend": service.trend(i, now)}
                                    for i in open_ones]})
    template = "incident_rows.html" if request.query.get("fragment") else "incidents.html"
    return console.renderer.page(template, user_of(request), rows=[_row(i, now) for i in open_ones],
                                 resolved=resolved)


async def _incident(request: web.Request) -> Document | None:
    text = request.match_info["incident_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return await console_of(request).api.services.repositories.incidents.get(int(text))


@guard(Role.VIEWER)
async def incident_page(request: web.Request) -> web.StreamResponse:
    incident = await _incident(request)
    if incident is None:
        return refuse(request, 404, "incident_not_found")
    console = console_of(request)
    members = list(incident.get("members") or [])[:MEMBERS_SHOWN]
    now = console.api.services.clock()
    devices = await console.api.services.repositories.devices.page(
        DeviceFilter(device_ids=tuple(members)), now, None, max(len(members), 1)) if members else []
    installed_by = await campaigns.installed_by(request, incident)
    return console.renderer.page("incident.html", user_of(request), incident=incident, installed_by=installed_by,
                                 trend=service.trend(incident, now),
                                 devices=devices, now=now, is_online=is_online,
                                 more_members=max(int(incident.get("member_count") or 0) - len(members), 0))


@guard(Role.OPERATOR)
async def act(request: web.Request) -> web.StreamResponse:
    incident = await _incident(request)
    if incident is None:
        return refuse(request, 404, "incident_not_found")
    services = console_of(request).api.services
    repository = services.repositories.incidents
    who, now = user_of(request).who, services.clock()
    action = request.match_info["action"]
    text = (await form_of(request)).get("comment", "").strip()
    if len(text) > MAX_COMMENT:
        return refuse(request, 422, "comment_too_long")
    number = incident["_id"]
    match action:
        case "ack":
            await service.acknowledge(repository, incident, who, text or None, now)
            summary = f"Acknowledge incident #{number}"
        case "comment":
            if not text:
                return refuse(request, 422, "comment_empty")
            await service.comment(repository, number, who, text, now)
            summary = f"Comment on incident #{number}"
        case "resolve":
            try:
                await service.resolve(repository, incident, who, text, now)
            except ReasonRequired:
                return refuse(request, 422, "resolve_reason_required")
            except IncidentNotOpen:
                await audit(request, f"Resolve incident #{number} refused: not open", 409, incident_id=number)
                return refuse(request, 409, "incident_not_open")
            summary = f"Resolve incident #{number}"
        case _:
            return refuse(request, 404, "not_found")
    await audit(request, summary, 200, incident_id=number)
    if wants_json(request):
        updated = await repository.get(number)
        assert updated is not None
        return json_reply(service.detail_of(updated).model_dump(mode="json"))
    raise web.HTTPSeeOther(incident_url(number))


ROUTES = [
    web.get("/incidents", dashboard),
    web.get("/incidents/{incident_id}", incident_page),
    web.post("/incidents/{incident_id}/{action}", act),
]
