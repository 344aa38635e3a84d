"""The fleet at a glance (the landing page) and the OLT -> PON -> ONT view.

Both read the last fleet census (``tasks/fleet.py``: one document, counted by the ``fleet_census``
job), never the devices: a page view costs one read at any fleet size. Each number links to the
device list it counts (``/?<filter>``), whose filter is a top-level equality. The devices in an
open incident are counted from the open incidents' member lists (few documents).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from acs.console.web import console_of, guard, refuse, user_of
from schemas.api import Role
from tasks.fleet import level_status
from tasks.store.fleet import FleetSummaryRepository

TOP_ROWS = 20  # rows of each breakdown on the landing page (the OLT page lists them all)


def list_link(**filters: str) -> str:
    """The device list of these filters (the console's search form names)."""
    return "/?" + urlencode({key: value for key, value in filters.items() if value})


def summaries(request: web.Request) -> FleetSummaryRepository:
    return FleetSummaryRepository(console_of(request).api.services.database)


async def overview(request: web.Request) -> web.StreamResponse:
    """The landing page (``/`` without a search); the caller checked the login."""
    console = console_of(request)
    services = console.api.services
    summary = await summaries(request).get()
    incidents: list[dict[str, Any]] = []
    members: set[str] = set()
    if "incidents" in console.panels:
        for incident in sorted(await services.repositories.incidents.open_incidents(), key=lambda i: -i["_id"]):
            incidents.append(incident)
            members.update(incident.get("members") or [])
    return console.renderer.page("fleet.html", user_of(request), summary=summary, incidents=incidents,
                                 in_incident=len(members), link=list_link, status_of=level_status, top=TOP_ROWS,
                                 now=services.clock(), query={}, open_incidents=incidents)


@guard(Role.VIEWER)
async def olts_page(request: web.Request) -> web.StreamResponse:
    """Every OLT of the census with its status; one OLT's PON ports with theirs (``?olt=``)."""
    console = console_of(request)
    summary = await summaries(request).get()
    olts: list[dict[str, Any]] = list((summary or {}).get("by_olt") or [])
    chosen = request.query.get("olt")
    olt = next((row for row in olts if row["olt"] == chosen), None) if chosen else None
    if chosen and olt is None and summary is not None:
        return refuse(request, 404, "olt_not_found")
    pons = await summaries(request).pons_of(olt["olt"]) if olt is not None else []
    return console.renderer.page("olts.html", user_of(request), summary=summary, olts=olts, olt=olt, pons=pons,
                                 link=list_link, status_of=level_status, quote=quote,
                                 now=console.api.services.clock())


ROUTES = [web.get("/fleet/olts", olts_page)]
