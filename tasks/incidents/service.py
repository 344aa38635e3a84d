"""What operators do to incidents, shared by the API and the console: views, acknowledge, comment, resolve.

``who`` is the actor as the audit names it: an API token's name, or ``user:<name>`` from the console.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas.monitoring import IncidentDetail, IncidentSummary
from tasks.store.db import Document
from tasks.store.incidents import IncidentRepository

RESOLVED_BY_JOB = "system"  # ``resolved_by`` of an incident whose devices recovered
COUNTED_EVENTS = ("opened", "grew", "changed", "scope", "reopened")


class IncidentNotOpen(Exception):
    """Resolving an incident that is (or meanwhile became) resolved."""

    def __init__(self, incident_id: int, status: str) -> None:
        super().__init__(f"incident {incident_id} is already {status}")
        self.incident_id = incident_id


class ReasonRequired(Exception):
    """Resolving an incident by hand without saying why."""

    def __init__(self, incident_id: int) -> None:
        super().__init__(f"resolving incident {incident_id} needs a reason")
        self.incident_id = incident_id


def _fields(incident: Document, model: type[IncidentSummary]) -> dict[str, Any]:
    return {name: incident[name] for name in model.model_fields if name in incident}


def summary_of(incident: Document) -> IncidentSummary:
    return IncidentSummary.model_validate({**_fields(incident, IncidentSummary), "id": incident["_id"]})


def detail_of(incident: Document) -> IncidentDetail:
    return IncidentDetail.model_validate({**_fields(incident, IncidentDetail), "id": incident["_id"]})


TREND_SPAN = timedelta(minutes=5)


def trend(incident: Document, now: datetime, span: timedelta = TREND_SPAN) -> str:
    """``growing``, ``shrinking`` or ``steady``: affected devices now against ``span`` ago.

    The count ``span`` ago is the time line's last count at or before then (the opening count for
    a younger incident): an outage that stopped growing reads steady once ``span`` has passed.
    """
    counted = sorted(((entry["at"], int(entry.get("affected") or 0)) for entry in incident.get("timeline") or []
                      if entry.get("event") in COUNTED_EVENTS and entry.get("at") is not None),
                     key=lambda pair: pair[0])
    if not counted:
        return "steady"
    then = counted[0][1]
    for at, affected in counted:
        if at > now - span:
            break
        then = affected
    affected_now = int(incident.get("affected_now") or 0)
    if affected_now == then:
        return "steady"
    return "growing" if affected_now > then else "shrinking"


async def comment(repository: IncidentRepository, incident_id: int, who: str, text: str, now: datetime,
                  fields: dict[str, Any] | None = None) -> bool:
    """Append a comment (and set ``fields`` in the same write); False when there is no such incident."""
    return await repository.add_comment(incident_id, {"at": now, "by": who, "text": text},
                                        {"updated_at": now, **(fields or {})})


async def acknowledge(repository: IncidentRepository, incident: Document, who: str, comment_text: str | None,
                      now: datetime) -> None:
    await comment(repository, incident["_id"], who, comment_text or "acknowledged", now,
                  {"acknowledged": {"at": now, "by": who}})


async def resolve(repository: IncidentRepository, incident: Document, who: str, reason: str,
                  now: datetime) -> None:
    """Open -> resolved by hand, for ``reason`` (required: :class:`ReasonRequired` without one).

    :class:`IncidentNotOpen` when it is not (or no longer) open. If its devices are still affected
    at the next detection run, the job opens a new incident that follows this one.
    """
    if incident["status"] != "open":
        raise IncidentNotOpen(incident["_id"], incident["status"])
    reason = reason.strip()
    if not reason:
        raise ReasonRequired(incident["_id"])
    timeline = [*(incident.get("timeline") or []),
                {"at": now, "event": "resolved", "affected": incident.get("affected_now", 0),
                 "detail": f"resolved by {who}: {reason}"}]
    if await repository.resolve(incident["_id"], {"resolved_at": now, "resolved_by": who, "resolve_reason": reason,
                                                  "timeline": timeline, "updated_at": now}) is None:
        raise IncidentNotOpen(incident["_id"], "resolved")
    await comment(repository, incident["_id"], who, f"resolved: {reason}", now)
