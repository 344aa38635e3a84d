"""What happened: a device's history (sessions, tasks, operator actions), sessions, job runs.

History merges three collections newest first. The cursor is a time: each page holds every
entry strictly before it, and a page never ends in the middle of a group of entries with the
same timestamp (unless one millisecond holds more entries than ``limit``), so nothing is
skipped between pages.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId

from acs.api.devices import device_or_404
from acs.api.errors import ApiError
from acs.api.pagination import cursor_text, cursor_time, decode_cursor, encode_cursor, next_cursor
from acs.api.routes import Call, Reply, Route
from schemas.api import HistoryEntry, JobRun, JobRunsQuery, Page, PageQuery, Role, SessionView
from tasks.store.db import Document


def session_entry(session: Document) -> HistoryEntry:
    events = ", ".join(session.get("events") or []) or "no events"
    outcome = session.get("outcome") or ("in progress" if session.get("live") else "unknown")
    detail = {key: session.get(key) for key in ("events", "outcome", "error", "duration_ms", "remote_ip",
                                                  "cwmp_version", "rpc_count", "faults", "ended_at")}
    detail["rpcs"] = [rpc.get("name") for rpc in session.get("rpcs") or []]
    return HistoryEntry(at=session["started_at"], type="session", id=session["_id"],
                        summary=f"session ({events}): {outcome}", detail=detail)


def task_entry(task: Document) -> HistoryEntry:
    detail = {key: task.get(key) for key in ("kind", "status", "created_by", "fault", "reason", "finished_at",
                                              "batch_id")}
    return HistoryEntry(at=task["created_at"], type="task", id=task["_id"],
                        summary=f"task {task['kind']} by {task.get('created_by')}: {task['status']}", detail=detail)


def audit_entry(entry: Document) -> HistoryEntry:
    detail = {key: entry.get(key) for key in ("token_name", "token_id", "role", "method", "path", "remote",
                                               "status", "task_ids", "tags", "kind")}
    return HistoryEntry(at=entry["at"], type="operator", id=entry["_id"],
                        summary=f"{entry.get('token_name')}: {entry.get('summary')} -> {entry.get('status')}",
                        detail={key: value for key, value in detail.items() if value is not None})


def event_entry(event: Document) -> HistoryEntry:
    """Online/offline transitions, boots, health changes and failed tasks (tasks/store/device_events.py)."""
    detail = event.get("detail") or {}
    extra = f" ({detail['from']} -> {detail['to']})" if event["type"] == "health" else ""
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
                        detail={key: incident.get(key) for key in ("status", "cause", "resolved_at", "key")})


def cut_page(entries: list[HistoryEntry], limit: int) -> tuple[list[HistoryEntry], datetime | None]:
    """The first ``limit`` entries, shortened so the next page can start strictly before the last."""
    if len(entries) <= limit:
        return entries, None
    page = entries[:limit]
    boundary = entries[limit].at
    trimmed = [entry for entry in page if entry.at != boundary]
    if trimmed:
        page = trimmed
    return page, page[-1].at


async def device_history(call: Call) -> Reply:
    device_id = call.path("device_id")
    query = call.query(PageQuery)
    await device_or_404(call, device_id)
    before = cursor_time(decode_cursor(query.cursor))
    repositories = call.api.services.repositories
    fetch = query.limit + 1
    sessions = await repositories.sessions.for_device(device_id, before, fetch)
    tasks = await repositories.tasks.for_device(device_id, (before, "") if before else None, fetch)
    audit = await repositories.audit.for_device(device_id, before, fetch)
    events = await repositories.events.for_device(device_id, before, fetch)
    health = await repositories.health.for_device(device_id, before, fetch)
    incidents = [incident for incident in await repositories.incidents.for_device(device_id, fetch)
                 if before is None or incident["opened_at"] < before]
    entries = [*map(session_entry, sessions), *map(task_entry, tasks), *map(audit_entry, audit),
               *map(event_entry, events), *map(health_entry, health), *map(incident_entry, incidents)]
    entries.sort(key=lambda entry: (entry.at, entry.type, entry.id), reverse=True)
    page, last = cut_page(entries, query.limit)
    cursor = encode_cursor({"at": last}) if last is not None else None
    return Reply(Page[HistoryEntry](items=page, next_cursor=cursor))


async def get_session(call: Call) -> Reply:
    session_id = call.path("session_id")
    session = await call.api.services.repositories.sessions.get(session_id)
    if session is None:
        raise ApiError.not_found(f"session {session_id}")
    return Reply(SessionView.model_validate({**session, "id": session["_id"]}))


async def job_runs(call: Call) -> Reply:
    query = call.query(JobRunsQuery)
    position = decode_cursor(query.cursor)
    started = cursor_time(position)
    run_id = cursor_text(position, "id") if started is not None else None
    before = (started, ObjectId(run_id) if run_id and ObjectId.is_valid(run_id) else run_id) if started else None
    found = await call.api.services.repositories.jobs.runs(query.job, query.limit + 1, before)
    items = [JobRun.model_validate({**run, "id": str(run["_id"])}) for run in found[: query.limit]]
    cursor = next_cursor(found, query.limit, lambda run: {"at": run["started_at"], "id": str(run["_id"])})
    return Reply(Page[JobRun](items=items, next_cursor=cursor))


ROUTES = [
    Route("GET", "/api/v1/devices/{device_id}/history", device_history,
          "Sessions, tasks, operator actions, online/offline and health changes, incidents of a device",
          Role.VIEWER, "history",
          query=PageQuery, response=Page[HistoryEntry], other_statuses=(400, 404)),
    Route("GET", "/api/v1/sessions/{session_id}", get_session, "One CWMP session", Role.VIEWER, "history",
          response=SessionView, other_statuses=(404,)),
    Route("GET", "/api/v1/jobs/runs", job_runs, "Runs of the scheduled jobs, newest first", Role.VIEWER,
          "history", query=JobRunsQuery, response=Page[JobRun], other_statuses=(400,)),
]
