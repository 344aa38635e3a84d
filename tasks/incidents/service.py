"""What operators do to incidents, shared by the API and the console: views, acknowledge, comment, resolve.

``who`` is the actor as the audit names it: an API token's name, or ``user:<name>`` from the console.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.monitoring import IncidentDetail, IncidentSummary
from tasks.store.db import Document
from tasks.store.incidents import IncidentRepository


class IncidentNotOpen(Exception):
    """Resolving an incident that is (or meanwhile became) resolved."""

    def __init__(self, incident_id: int, status: str) -> None:
        super().__init__(f"incident {incident_id} is already {status}")
        self.incident_id = incident_id


def _fields(incident: Document, model: type[IncidentSummary]) -> dict[str, Any]:
    return {name: incident[name] for name in model.model_fields if name in incident}


def summary_of(incident: Document) -> IncidentSummary:
    return IncidentSummary.model_validate({**_fields(incident, IncidentSummary), "id": incident["_id"]})


def detail_of(incident: Document) -> IncidentDetail:
    return IncidentDetail.model_validate({**_fields(incident, IncidentDetail), "id": incident["_id"]})


def trend(incident: Document) -> str:
    """``growing``, ``shrinking`` or ``steady``: affected devices now against the time line's previous count."""
    counts = [int(entry.get("affected") or 0) for entry in incident.get("timeline") or []
              if entry.get("event") in ("opened", "grew", "changed")]
    now = int(incident.get("affected_now") or 0)
    previous = counts[-2] if len(counts) >= 2 else None
    if previous is None or now == previous:
        return "steady"
    return "growing" if now > previous else "shrinking"


async def comment(repository: IncidentRepository, incident_id: int, who: str, text: str, now: datetime,
                  fields: dict[str, Any] | None = None) -> bool:
    """Append a comment (and set ``fields`` in the same write); False when there is no such incident."""
    return await repository.add_comment(incident_id, {"at": now, "by": who, "text": text},
                                        {"updated_at": now, **(fields or {})})


async def acknowledge(repository: IncidentRepository, incident: Document, who: str, comment_text: str | None,
                      now: datetime) -> None:
    await comment(repository, incident["_id"], who, comment_text or "acknowledged", now,
                  {"acknowledged": {"at": now, "by": who}})


async def resolve(repository: IncidentRepository, incident: Document, who: str, comment_text: str | None,
                  now: datetime) -> None:
    """Open -> resolved by hand; :class:`IncidentNotOpen` when it is not (or no longer) open."""
    if incident["status"] != "open":
        raise IncidentNotOpen(incident["_id"], incident["status"])
    timeline = [*(incident.get("timeline") or []),
                {"at": now, "event": "resolved", "affected": incident.get("affected_now", 0),
                 "detail": f"resolved by {who}"}]
    if await repository.resolve(incident["_id"], {"resolved_at": now, "resolved_by": who, "timeline": timeline,
                                                  "updated_at": now}) is None:
        raise IncidentNotOpen(incident["_id"], "resolved")
    await comment(repository, incident["_id"], who, comment_text or "resolved", now)
