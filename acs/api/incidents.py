"""Incidents: list with filters, one incident, acknowledge (with a comment), resolve by hand."""

from __future__ import annotations

from typing import Any

from acs.api.errors import ApiError
from acs.api.pagination import decode_cursor, next_cursor
from acs.api.routes import Call, Reply, Route
from schemas.api import Page, Role
from schemas.monitoring import IncidentActionBody, IncidentDetail, IncidentQuery, IncidentSummary
from tasks.store.db import Document

INCIDENT = "/api/v1/incidents/{incident_id}"


def summary_of(incident: Document) -> IncidentSummary:
    return IncidentSummary.model_validate({**_fields(incident, IncidentSummary), "id": incident["_id"]})


def _fields(incident: Document, model: type[IncidentSummary]) -> dict[str, Any]:
    return {name: incident[name] for name in model.model_fields if name in incident}


def _incident_id(call: Call) -> int:
    text = call.path("incident_id")
    if not text.isdigit():
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
    before = position.get("before") if position else None
    if before is not None and not isinstance(before, int):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    found = await call.api.services.repositories.incidents.page(query.status, query.dimension, query.device_id,
                                                                before, query.limit + 1)
    items = [summary_of(incident) for incident in found[: query.limit]]
    cursor = next_cursor(found, query.limit, lambda incident: {"before": incident["_id"]})
    return Reply(Page[IncidentSummary](items=items, next_cursor=cursor))


async def get_incident(call: Call) -> Reply:
    incident = await _incident_or_404(call)
    return Reply(IncidentDetail.model_validate({**_fields(incident, IncidentDetail), "id": incident["_id"]}))


async def acknowledge(call: Call) -> Reply:
    incident = await _incident_or_404(call)
    now = call.api.services.clock()
    comment = call.body(IncidentActionBody).comment
    fields = {"acknowledged": {"at": now, "by": call.who}, "updated_at": now}
    await _comment(call, incident["_id"], comment or "acknowledged", fields)
    call.audit["incident_id"] = incident["_id"]
    return await get_incident(call)


async def resolve(call: Call) -> Reply:
    incident = await _incident_or_404(call)
    now = call.api.services.clock()
    comment = call.body(IncidentActionBody).comment
    call.audit["incident_id"] = incident["_id"]
    if incident["status"] != "open":
        raise ApiError(409, "conflict", f"incident {incident['_id']} is already {incident['status']}")
    timeline = [*(incident.get("timeline") or []),
                {"at": now, "event": "resolved", "affected": incident.get("affected_now", 0),
                 "detail": f"resolved by {call.who}"}]
    repository = call.api.services.repositories.incidents
    if await repository.resolve(incident["_id"], {"resolved_at": now, "resolved_by": call.who,
                                                  "timeline": timeline, "updated_at": now}) is None:
        raise ApiError(409, "conflict", f"incident {incident['_id']} was resolved meanwhile")
    await _comment(call, incident["_id"], comment or "resolved", {})
    return await get_incident(call)


async def _comment(call: Call, incident_id: int, text: str, fields: dict[str, Any]) -> None:
    entry = {"at": call.api.services.clock(), "by": call.who, "text": text}
    await call.api.services.repositories.incidents.add_comment(incident_id, entry, fields)


ROUTES = [
    Route("GET", "/api/v1/incidents", list_incidents, "Incidents, newest first", Role.VIEWER, "incidents",
          query=IncidentQuery, response=Page[IncidentSummary], other_statuses=(400,)),
    Route("GET", INCIDENT, get_incident, "One incident: members, time line, comments", Role.VIEWER, "incidents",
          response=IncidentDetail, other_statuses=(404,)),
    Route("POST", INCIDENT + "/ack", acknowledge, "Acknowledge an incident, with an optional comment",
          Role.OPERATOR, "incidents", body=IncidentActionBody, response=IncidentDetail, other_statuses=(400, 404)),
    Route("POST", INCIDENT + "/resolve", resolve, "Resolve an incident by hand, with an optional comment",
          Role.OPERATOR, "incidents", body=IncidentActionBody, response=IncidentDetail,
          other_statuses=(400, 404, 409)),
]
