"""Devices: list with filters, one device, its cached parameters, its tags, waking it up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from acs.api.errors import ApiError
from acs.api.pagination import cursor_text, decode_cursor, encode_cursor
from acs.api.routes import Call, Reply, Route
from schemas.api import (
    ConnectionRequestQuery,
    ConnectionRequestReport,
    CpeCredentials,
    CpeCredentialsBody,
    DeviceDetail,
    DevicePage,
    DeviceQuery,
    DeviceSummary,
    LastSession,
    Parameters,
    ParametersQuery,
    ParameterView,
    RevealedSecret,
    RevealSecretBody,
    Role,
    Tags,
    TagsBody,
)
from tasks.records import SessionRecord
from tasks.store.db import Document
from tasks.store.devices import DeviceFilter, is_online

SUMMARY_FIELDS = tuple(name for name in DeviceSummary.model_fields if name not in ("device_id", "online", "tags"))
DETAIL_FIELDS = tuple(
    name
    for name in DeviceDetail.model_fields
    if name not in DeviceSummary.model_fields and name not in ("events", "connection_request_credentials",
                                                                "last_session")
)
# Never shown: secrets, and the provisioner's bookkeeping.
HIDDEN = ("cpe_password", "connection_request_password", "pending_connection_request")


def summary_of(device: Document, now: datetime) -> DeviceSummary:
    fields = {name: device.get(name) for name in SUMMARY_FIELDS}
    return DeviceSummary(device_id=device["_id"], online=is_online(device, now), tags=device.get("tags") or [],
                         **fields)


def detail_of(device: Document, now: datetime, last_session: SessionRecord | None) -> DeviceDetail:
    summary = summary_of(device, now).model_dump()
    fields: dict[str, Any] = {name: device.get(name) for name in DETAIL_FIELDS}
    session = None
    if last_session is not None:
        session = LastSession(id=last_session["_id"], started_at=last_session["started_at"],
                              ended_at=last_session.get("ended_at"), outcome=last_session.get("outcome"),
                              events=last_session.get("events") or [])
    return DeviceDetail(
        **summary,
        **fields,
        events=device.get("last_events") or [],
        connection_request_credentials=bool(device.get("connection_request_password")),
        last_session=session,
    )


async def device_or_404(call: Call, device_id: str) -> Document:
    device = await call.api.services.repositories.devices.get(device_id)
    if device is None:
        raise ApiError.not_found(f"device {device_id}")
    return device


async def list_devices(call: Call) -> Reply:
    query = call.query(DeviceQuery)
    services = call.api.services
    now = services.clock()
    device_filter = DeviceFilter(query.q, query.oui, query.product_class, query.software_version, query.tag,
                                 query.online)
    position = decode_cursor(query.cursor)
    if position is not None:
        cursor_text(position, "after")  # every cursor of this listing names the last device given
    try:
        page = await services.repositories.devices.search_page(device_filter, position, query.limit)
    except (TypeError, ValueError) as exc:  # a cursor whose fields are not ours
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    items = [summary_of(device, now) for device in page.devices]
    following = encode_cursor(page.next_position) if page.next_position is not None else None
    return Reply(DevicePage(items=items, next_cursor=following, total=page.total,
                            total_exact=page.total_exact))


async def get_device(call: Call) -> Reply:
    device = await device_or_404(call, call.path("device_id"))
    last_session = await call.api.services.repositories.sessions.last_for_device(device["_id"])
    return Reply(detail_of(device, call.api.services.clock(), last_session))


async def get_parameters(call: Call) -> Reply:
    device_id = call.path("device_id")
    prefix = call.query(ParametersQuery).prefix
    await device_or_404(call, device_id)
    cached = await call.api.services.repositories.parameters.get(device_id, prefix)
    return Reply(Parameters({name: ParameterView(**parameter.as_api()) for name, parameter in cached.items()}))


async def add_tags(call: Call) -> Reply:
    device_id = call.path("device_id")
    tags = call.body(TagsBody).tags
    if not await call.api.services.repositories.devices.add_tags(device_id, tags):
        raise ApiError.not_found(f"device {device_id}")
    call.audit["tags"] = tags
    return await _tags(call, device_id)


async def set_cpe_credentials(call: Call) -> Reply:
    device_id = call.path("device_id")
    body = call.body(CpeCredentialsBody)
    services = call.api.services
    encrypted = services.box.encrypt(body.password)  # never stored or echoed in clear
    fields = {"cpe_username": body.username, "cpe_password": encrypted}
    if not await services.repositories.devices.set_fields(device_id, fields):
        raise ApiError.not_found(f"device {device_id}")
    call.audit["cpe_username"] = body.username
    return Reply(CpeCredentials(device_id=device_id, username=body.username, password_set=True))


async def reveal_secret(call: Call) -> Reply:
    """A secret parameter in clear: only on purpose (a POST, admins), and the audit log says who."""
    device_id = call.path("device_id")
    name = call.body(RevealSecretBody).name
    await device_or_404(call, device_id)
    call.audit["parameter"] = name
    value = await call.api.services.repositories.parameters.reveal(device_id, name)
    if value is None:
        raise ApiError.not_found(f"parameter {name} of device {device_id}")
    return Reply(RevealedSecret(device_id=device_id, name=name, value=value))


async def remove_tags(call: Call) -> Reply:
    device_id = call.path("device_id")
    tags = call.body(TagsBody).tags
    if not await call.api.services.repositories.devices.remove_tags(device_id, tags):
        raise ApiError.not_found(f"device {device_id}")
    call.audit["tags"] = tags
    return await _tags(call, device_id)


async def _tags(call: Call, device_id: str) -> Reply:
    device = await call.api.services.repositories.devices.get(device_id, {"tags": 1})
    if device is None:
        raise ApiError.not_found(f"device {device_id}")
    return Reply(Tags(device_id=device_id, tags=device.get("tags") or []))


async def connection_request(call: Call) -> Reply:
    device = await device_or_404(call, call.path("device_id"))
    result = await call.api.connreq.wake(device, call.query(ConnectionRequestQuery).via)
    call.audit["connection_request"] = {"via": result.via, "answered": result.answered, "status": result.http_status}
    return Reply(ConnectionRequestReport(device_id=device["_id"], **result.__dict__))


DEVICE = "/api/v1/devices/{device_id}"
ROUTES = [
    Route("GET", "/api/v1/devices", list_devices, "List devices", Role.VIEWER, "devices",
          query=DeviceQuery, response=DevicePage, other_statuses=(400,)),
    Route("GET", DEVICE, get_device, "One device", Role.VIEWER, "devices", response=DeviceDetail,
          other_statuses=(404,)),
    Route("GET", DEVICE + "/parameters", get_parameters, "Cached parameters of a device", Role.VIEWER,
          "devices", query=ParametersQuery, response=Parameters, other_statuses=(404,)),
    Route("POST", DEVICE + "/tags", add_tags, "Add tags to a device", Role.OPERATOR, "devices",
          body=TagsBody, response=Tags, other_statuses=(400, 404)),
    Route("DELETE", DEVICE + "/tags", remove_tags, "Remove tags from a device", Role.OPERATOR, "devices",
          body=TagsBody, response=Tags, other_statuses=(400, 404)),
    Route("PUT", DEVICE + "/cpe-credentials", set_cpe_credentials,
          "Set the credentials this device must use to authenticate to the CWMP endpoint", Role.ADMIN, "devices",
          body=CpeCredentialsBody, response=CpeCredentials, other_statuses=(400, 404)),
    Route("POST", DEVICE + "/parameters/reveal", reveal_secret,
          "Show one cached secret parameter (password, Wi-Fi key) in clear; audited", Role.ADMIN, "devices",
          body=RevealSecretBody, response=RevealedSecret, other_statuses=(400, 404)),
    Route("POST", DEVICE + "/connection-request", connection_request,
          "Wake the device now (connection request); reports whether it answered", Role.OPERATOR, "devices",
          query=ConnectionRequestQuery, response=ConnectionRequestReport, other_statuses=(404,)),
]
