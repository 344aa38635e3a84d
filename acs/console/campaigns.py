"""Firmware campaigns in the console (issue 15): the list, one campaign's progress with the
operator's pause / resume / abort / rollback, and, from an incident of a software version, "pause
the campaign that installed it". The same service as the API (``tasks/campaigns/service.py``), the
console user acting as ``user:<name>``; every action audited (``campaign_id`` in the entry).
"""

from __future__ import annotations

from aiohttp import web

from acs.console.web import audit, console_of, form_of, guard, refuse, user_of
from schemas.api import Role
from schemas.campaigns import CampaignAction, CampaignStatus, MemberState
from tasks.campaigns.service import CampaignError, CampaignService, progress
from tasks.store.db import Document

LISTED = 100
FAILED_SHOWN = 50
ACTIONS = {action.value: action for action in CampaignAction}


def service_of(request: web.Request) -> CampaignService:
    services = console_of(request).api.services
    repositories = services.repositories
    return CampaignService(repositories.campaigns, repositories.firmware, repositories.devices, services.clock)


@guard(Role.VIEWER)
async def campaigns_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    services = console.api.services
    found = await services.repositories.campaigns.page(None, None, LISTED)
    now = services.clock()
    rows = [{"campaign": c, "progress": await progress(services.repositories.campaigns, c, now)} for c in found]
    return console.renderer.page("campaigns.html", user_of(request), rows=rows)


async def _campaign(request: web.Request) -> Document | None:
    campaign_id = request.match_info["campaign_id"]
    if not (campaign_id.isascii() and campaign_id.isalnum()) or len(campaign_id) > 32:
        return None
    return await console_of(request).api.services.repositories.campaigns.get(campaign_id)


@guard(Role.VIEWER)
async def campaign_page(request: web.Request) -> web.StreamResponse:
    campaign = await _campaign(request)
    if campaign is None:
        return refuse(request, 404, "campaign_not_found")
    console = console_of(request)
    services = console.api.services
    repository = services.repositories.campaigns
    failed = await repository.members(campaign["_id"], MemberState.FAILED.value, limit=FAILED_SHOWN)
    degraded = await repository.members(campaign["_id"], MemberState.DEGRADED.value, limit=FAILED_SHOWN)
    return console.renderer.page("campaign.html", user_of(request), campaign=campaign,
                                 progress=await progress(repository, campaign, services.clock()),
                                 failed=failed, degraded=degraded)


@guard(Role.OPERATOR)
async def act(request: web.Request) -> web.StreamResponse:
    campaign = await _campaign(request)
    action = ACTIONS.get(request.match_info["action"])
    if campaign is None or action is None:
        return refuse(request, 404, "campaign_not_found")
    form = await form_of(request)
    reason = form.get("reason", "").strip()[:1000] or None
    user = user_of(request)
    summary = f"{action.value.capitalize()} campaign {campaign['name']}"
    try:
        await service_of(request).act(campaign["_id"], action, user.who, reason)
    except CampaignError as exc:
        await audit(request, f"{summary} refused: {exc.code}", exc.status, campaign_id=campaign["_id"])
        key = "campaign_no_previous_image" if exc.code == "no_previous_image" else "campaign_cannot"
        return refuse(request, exc.status, key, action=action.value, state=campaign["status"])
    await audit(request, summary, 200, campaign_id=campaign["_id"], action=action.value)
    back = form.get("back", "")
    raise web.HTTPSeeOther(back if back.startswith("/incidents/") and back[11:].isdigit()
                           else f"/campaigns/{campaign['_id']}")


async def installed_by(request: web.Request, incident: Document) -> list[Document]:
    """The campaigns that installed an incident's software version (the incident page's line-2 view)."""
    if incident.get("dimension") != "software_version":
        return []
    product_class, _, version = str(incident.get("value") or "").partition(" ")
    found = await service_of(request).installing(product_class, version)
    named = (incident.get("campaign") or {}).get("id")
    return sorted(found, key=lambda c: (c["_id"] != named, c["status"] != CampaignStatus.RUNNING))


ROUTES = [
    web.get("/campaigns", campaigns_page),
    web.get("/campaigns/{campaign_id}", campaign_page),
    web.post("/campaigns/{campaign_id}/{action}", act),
]
