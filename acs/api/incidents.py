"""Incidents: list with filters, one incident, acknowledge (with a comment), resolve by hand."""

from __future__ import annotations

from acs.api.errors import ApiError
from acs.api.pagination import cursor_int, decode_cursor, next_cursor
from acs.api.routes import Call, Reply, Route
from schemas.api import Page, Role
from schemas.monitoring import (
    IncidentActionBody,
    IncidentCommentBody,
    IncidentDetail,
    IncidentQuery,
    IncidentResolveBody,
    IncidentSummary,
)
from tasks.incidents import service
from tasks.incidents.service import IncidentNotOpen, summary_of
from tasks.store.db import Document

INCIDENT = "/api/v1/incidents/{incident_id}"
MAX_INCIDENT_ID = 2**63 - 1


def _incident_id(call: Call) -> int:
    text = call.path("incident_id")
    # Incident ids are small integers; anything beyond a BSON int64 cannot name one.
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_INCIDENT_ID:  # "¹".isdigit() is True
        raise ApiError.not_found(f"incident {text}")
    return int(text)


async def _incident_or_404(call: Call) -> Document:
    incident_id = _incident_id(call)
    incident = await call.api.services.repositories.incidents.get(incident_id)
    if incident is None:
        raise ApiError.not_found(f"incident {incident_id}")
    return incident


async def list_incidents(call: Call) -> Reply:
    query = call.query(IncidentQuery)
    position = decode_cursor(query.cursor)
    before = cursor_int(position, "before")
    found = await call.api.services.repositories.incidents.page(query.status, query.dimension, query.device_id,
                                                                before, query.limit + 1)
    items = [summary_of(incident) for incident in found[: query.limit]]
    cursor = next_cursor(found, query.limit, lambda incident: {"before": incident["_id"]})
    return Reply(Page[IncidentSummary](items=items, next_cursor=cursor))


async def get_incident(call: Call) -> Reply:
    incident = await _incident_or_404(call)
    return Reply(service.detail_of(incident))


async def acknowledge(call: Call) -> Reply:
    incident = await _incident_or_404(call)
    comment = call.body(IncidentActionBody).comment
    await service.acknowledge(call.api.services.repositories.incidents, incident, call.who, comment,
                              call.api.services.clock())
    call.audit["incident_id"] = incident["_id"]
    return await get_incident(call)


async def add_comment(call: Call) -> Reply:
    incident = await _incident_or_404(call)
    text = call.body(IncidentCommentBody).comment
    await service.comment(call.api.services.repositories.incidents, incident["_id"], call.who, text,
                          call.api.services.clock())
    call.audit["incident_id"] = incident["_id"]
    return await get_incident(call)


async def resolve(call: Call) -> Reply:
    incident = await _incident_or_404(call)
    reason = call.body(IncidentResolveBody).reason
    call.audit["incident_id"] = incident["_id"]
    try:
        await service.resolve(call.api.services.repositories.incidents, incident, call.who, reason,
                              call.api.services.clock())
    except IncidentNotOpen as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return await get_incident(call)


ROUTES = [
    Route("GET", "/api/v1/incidents", list_incidents, "Incidents, newest first", Role.VIEWER, "incidents",
          query=IncidentQuery, response=Page[IncidentSummary], other_statuses=(400,)),
    Route("GET", INCIDENT, get_incident, "One incident: members, time line, comments", Role.VIEWER, "incidents",
          response=IncidentDetail, other_statuses=(404,)),
    Route("POST", INCIDENT + "/ack", acknowledge, "Acknowledge an incident, with an optional comment",
          Role.OPERATOR, "incidents", body=IncidentActionBody, response=IncidentDetail, other_statuses=(400, 404)),
    Route("POST", INCIDENT + "/comments", add_comment, "Add a comment to an incident", Role.OPERATOR,
          "incidents", body=IncidentCommentBody, response=IncidentDetail, other_statuses=(400, 404)),
    Route("POST", INCIDENT + "/resolve", resolve, "Resolve an incident by hand, saying why (reopens if it persists)",
          Role.OPERATOR, "incidents", body=IncidentResolveBody, response=IncidentDetail,
          other_statuses=(400, 404, 409)),
]
