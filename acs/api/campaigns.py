"""``/api/v1/firmware`` and ``/api/v1/campaigns`` (issue 15): firmware images, staged upgrades, their
progress, their devices, and the operator's pause / resume / abort / rollback. Every write is audited
by the route table; the work is done by ``tasks/campaigns/``."""

from __future__ import annotations

from typing import Any

from acs.api.errors import ApiError, found_or_404
from acs.api.pagination import cursor_text, decode_cursor, keyset_page, time_id_position
from acs.api.routes import Call, Reply, Route
from schemas.api import Page, PageQuery, Role
from schemas.campaigns import (
    CampaignActionBody,
    CampaignBody,
    CampaignDevice,
    CampaignDevicesQuery,
    CampaignInfo,
    CampaignProgress,
    CampaignsQuery,
    FirmwareBody,
    FirmwareInfo,
)
from tasks.campaigns.service import CampaignService, progress
from tasks.store.db import Document
from tasks.store.firmware import DuplicateImage

CAMPAIGN = "/api/v1/campaigns/{campaign_id}"


def service(call: Call) -> CampaignService:
    repositories = call.api.services.repositories
    return CampaignService(repositories.campaigns, repositories.firmware, repositories.devices,
                           call.api.services.clock)


def firmware_view(image: Document) -> FirmwareInfo:
    return FirmwareInfo(id=image["_id"], **{key: image.get(key) for key in (
        "file_id", "name", "version", "product_classes", "vendor", "sha256", "size", "added_at", "added_by")})


def campaign_view(campaign: Document) -> CampaignInfo:
    fields: dict[str, Any] = {key: campaign.get(key) for key in CampaignInfo.model_fields if key != "id"}
    return CampaignInfo(id=campaign["_id"], **fields)


def member_view(member: Document) -> CampaignDevice:
    return CampaignDevice(**{key: member.get(key) for key in CampaignDevice.model_fields})


async def add_firmware(call: Call) -> Reply:
    body = call.body(FirmwareBody)
    services = call.api.services
    stored = await services.repositories.files.get(body.file_id)
    if stored is None:
        raise ApiError(422, "validation_error", f"body.file_id: no stored file {body.file_id}")
    try:
        image = await services.repositories.firmware.add(stored, body.version, body.product_classes, body.vendor,
                                                         call.who, services.clock())
    except DuplicateImage as exc:
        raise ApiError(409, "conflict", f"file {body.file_id} is already firmware image {body.file_id}") from exc
    call.audit["firmware_id"] = image["_id"]
    return Reply(firmware_view(image), status=201, headers={"Location": f"/api/v1/firmware/{image['_id']}"})


async def list_firmware(call: Call) -> Reply:
    query = call.query(PageQuery)
    found = await call.api.services.repositories.firmware.page(time_id_position(query.cursor), query.limit + 1)
    return Reply(keyset_page(Page[FirmwareInfo], found, query.limit, firmware_view,
                             lambda image: {"at": image["added_at"], "id": image["_id"]}))


async def get_firmware(call: Call) -> Reply:
    image_id = call.path("image_id")
    image = found_or_404(await call.api.services.repositories.firmware.get(image_id), f"firmware image {image_id}")
    return Reply(firmware_view(image))


async def create_campaign(call: Call) -> Reply:
    body = call.body(CampaignBody)
    campaign = await service(call).create(body.model_dump(mode="json"), call.who)
    call.audit["campaign_id"] = campaign["_id"]
    return Reply(campaign_view(campaign), status=201, headers={"Location": f"/api/v1/campaigns/{campaign['_id']}"})


async def list_campaigns(call: Call) -> Reply:
    query = call.query(CampaignsQuery)
    status = None if query.status is None else query.status.value
    found = await call.api.services.repositories.campaigns.page(status, time_id_position(query.cursor),
                                                                 query.limit + 1)
    return Reply(keyset_page(Page[CampaignInfo], found, query.limit, campaign_view,
                             lambda campaign: {"at": campaign["created_at"], "id": campaign["_id"]}))


async def campaign_or_404(call: Call) -> Document:
    campaign_id = call.path("campaign_id")
    return found_or_404(await call.api.services.repositories.campaigns.get(campaign_id), f"campaign {campaign_id}")


async def get_campaign(call: Call) -> Reply:
    return Reply(campaign_view(await campaign_or_404(call)))


async def get_campaign_progress(call: Call) -> Reply:
    campaign = await campaign_or_404(call)
    services = call.api.services
    return Reply(CampaignProgress(**await progress(services.repositories.campaigns, campaign, services.clock())))


async def list_campaign_devices(call: Call) -> Reply:
    query = call.query(CampaignDevicesQuery)
    campaign = await campaign_or_404(call)
    after = cursor_text(decode_cursor(query.cursor), "id")
    state = None if query.state is None else query.state.value
    found = await call.api.services.repositories.campaigns.members(campaign["_id"], state, after=after,
                                                                    limit=query.limit + 1)
    return Reply(keyset_page(Page[CampaignDevice], found, query.limit, member_view,
                             lambda member: {"id": member["_id"]}))


async def act_on_campaign(call: Call) -> Reply:
    body = call.body(CampaignActionBody)
    campaign_id = call.path("campaign_id")
    call.audit["campaign_id"] = campaign_id
    call.audit["action"] = body.action.value
    return Reply(campaign_view(await service(call).act(campaign_id, body.action, call.who, body.reason)))


async def device_campaigns(call: Call) -> Reply:
    device_id = call.path("device_id")
    members = await call.api.services.repositories.campaigns.for_device(device_id)
    return Reply(Page[CampaignDevice](items=[member_view(m) for m in members], next_cursor=None))


ROUTES = [
    Route("POST", "/api/v1/firmware", add_firmware, "Describe a stored file as a firmware image", Role.OPERATOR,
          "campaigns", body=FirmwareBody, response=FirmwareInfo, status=201, other_statuses=(409,)),
    Route("GET", "/api/v1/firmware", list_firmware, "Firmware images, newest first", Role.VIEWER, "campaigns",
          query=PageQuery, response=Page[FirmwareInfo], other_statuses=(400,)),
    Route("GET", "/api/v1/firmware/{image_id}", get_firmware, "One firmware image", Role.VIEWER, "campaigns",
          response=FirmwareInfo, other_statuses=(404,)),
    Route("POST", "/api/v1/campaigns", create_campaign,
          "Start a firmware campaign (422 when an image does not fit a targeted model)", Role.OPERATOR, "campaigns",
          body=CampaignBody, response=CampaignInfo, status=201),
    Route("GET", "/api/v1/campaigns", list_campaigns, "Campaigns, newest first", Role.VIEWER, "campaigns",
          query=CampaignsQuery, response=Page[CampaignInfo], other_statuses=(400,)),
    Route("GET", CAMPAIGN, get_campaign, "One campaign", Role.VIEWER, "campaigns", response=CampaignInfo,
          other_statuses=(404,)),
    Route("GET", CAMPAIGN + "/progress", get_campaign_progress,
          "A campaign's devices by state, per wave, its rate and estimated end", Role.VIEWER, "campaigns",
          response=CampaignProgress, other_statuses=(404,)),
    Route("GET", CAMPAIGN + "/devices", list_campaign_devices, "A campaign's devices and their steps", Role.VIEWER,
          "campaigns", query=CampaignDevicesQuery, response=Page[CampaignDevice], other_statuses=(400, 404)),
    Route("POST", CAMPAIGN + "/actions", act_on_campaign, "Pause, resume, abort or roll back a campaign",
          Role.OPERATOR, "campaigns", body=CampaignActionBody, response=CampaignInfo, other_statuses=(404, 409)),
    Route("GET", "/api/v1/devices/{device_id}/campaigns", device_campaigns,
          "The campaigns a device is part of, newest first, with its steps", Role.VIEWER, "campaigns",
          response=Page[CampaignDevice]),
]
