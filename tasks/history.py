"""A device's time line: sessions, tasks, operator actions, device events, health results, incidents.

Shared by ``GET /api/v1/devices/{id}/history`` and the console's device page, history and CSV.
Entries are merged newest first from six collections, each read by its ``(device_id, time)`` index.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol

from schemas.api import HistoryEntry
from tasks.records import SessionRecord, TaskRecord
from tasks.store.audit import AuditRepository
from tasks.store.db import Document
from tasks.store.device_events import DeviceEventRepository
from tasks.store.health import HealthRepository
from tasks.store.incidents import IncidentRepository
from tasks.store.sessions import SessionRepository
from tasks.store.tasks import TaskRepository

ENTRY_TYPES = ("session", "task", "operator", "event", "health", "incident")


class Sources(Protocol):
    """The repositories a time line reads (``acs.services.Repositories`` has them all)."""

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def events(self) -> DeviceEventRepository: ...

    @property
    def health(self) -> HealthRepository: ...

    @property
    def incidents(self) -> IncidentRepository: ...


def session_entry(session: SessionRecord) -> HistoryEntry:
    events = ", ".join(session.get("events") or []) or "no events"
    outcome = session.get("outcome") or ("in progress" if session.get("live") else "unknown")
    detail: dict[str, Any] = {"events": session.get("events"), "outcome": session.get("outcome"),
                              "error": session.get("error"), "duration_ms": session.get("duration_ms"),
                              "remote_ip": session.get("remote_ip"), "cwmp_version": session.get("cwmp_version"),
                              "rpc_count": session.get("rpc_count"), "faults": session.get("faults"),
                              "ended_at": session.get("ended_at")}
    detail["rpcs"] = [rpc.get("name") for rpc in session.get("rpcs") or []]
    return HistoryEntry(at=session["started_at"], type="session", id=session["_id"],
                        summary=f"session ({events}): {outcome}", detail=detail)


def task_entry(task: TaskRecord) -> HistoryEntry:
    detail = {key: task.get(key) for key in ("kind", "status", "created_by", "fault", "reason", "finished_at",
                                              "batch_id")}
    return HistoryEntry(at=task["created_at"], type="task", id=task["_id"],
                        summary=f"task {task['kind']} by {task.get('created_by')}: {task['status']}", detail=detail)


def audit_entry(entry: Document) -> HistoryEntry:
    detail = {key: entry.get(key) for key in ("token_name", "token_id", "role", "method", "path", "remote",
                                               "status", "task_ids", "tags", "kind", "route", "summary")}
    return HistoryEntry(at=entry["at"], type="operator", id=entry["_id"],
                        summary=f"{entry.get('token_name')}: {entry.get('summary')} -> {entry.get('status')}",
                        detail={key: value for key, value in detail.items() if value is not None})


def event_entry(event: Document) -> HistoryEntry:
    """Online/offline transitions, boots, health changes and failed tasks (tasks/store/device_events.py)."""
    detail = event.get("detail") or {}
    extra = f" ({detail['from']} -> {detail['to']})" if event["type"] == "health" else ""
    if event["type"] == "campaign":  # a firmware campaign's step on this device (tasks/campaigns/job.py)
        extra = f" {detail.get('campaign')}: {detail.get('state')} ({detail.get('step')})"
    if event["type"] == "configuration":
        # Issue 14: each profile application (tasks/profiles/engine.py) with its outcome.
        extra = f" {detail.get('status')} ({', '.join(detail.get('profiles') or []) or 'overrides'})"
    return HistoryEntry(at=event["at"], type="event", id=str(event["_id"]), summary=f"{event['type']}{extra}",
                        detail={"type": event["type"], **detail})


def health_entry(result: Document) -> HistoryEntry:
    reasons = "; ".join(reason["message"] for reason in result.get("reasons") or []) or "no problem"
    return HistoryEntry(at=result["at"], type="health", id=str(result["_id"]),
                        summary=f"health {result['status']}: {reasons}",
                        detail={key: result.get(key) for key in ("status", "reasons", "values", "task_id")})


def incident_entry(incident: Document) -> HistoryEntry:
    return HistoryEntry(at=incident["opened_at"], type="incident", id=str(incident["_id"]),
                        summary=f"incident #{incident['_id']} ({incident['status']}): {incident['title']}",
                        detail={key: incident.get(key) for key in ("status", "cause", "resolved_at", "key", "dimension",
                                                                   "value", "signals", "affected_now", "member_count",
                                                                   "group_size")})


async def device_timeline(
    sources: Sources, device_id: str, before: datetime | None, limit: int
) -> list[HistoryEntry]:
    """Up to ``limit`` entries of each kind strictly before ``before``, merged newest first (not cut)."""
    sessions, tasks, audit, events, health, incidents = await asyncio.gather(
        sources.sessions.for_device(device_id, before, limit),
        sources.tasks.for_device(device_id, (before, "") if before else None, limit),
        sources.audit.for_device(device_id, before, limit),
        sources.events.for_device(device_id, before, limit),
        sources.health.for_device(device_id, before, limit),
        sources.incidents.for_device(device_id, limit),
    )
    entries = [*map(session_entry, sessions), *map(task_entry, tasks), *map(audit_entry, audit),
               *map(event_entry, events), *map(health_entry, health),
               *(incident_entry(incident) for incident in incidents
                 if before is None or incident["opened_at"] < before)]
    entries.sort(key=lambda entry: (entry.at, entry.type, entry.id), reverse=True)
    return entries
